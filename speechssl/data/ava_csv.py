"""AVA-ActiveSpeaker / UniTalk CSV files: the face boxes, labels and ids of every face-frame."""

from __future__ import annotations

import csv
from typing import Dict, List

from ..errors import InputError

BOX = ("entity_box_x1", "entity_box_y1", "entity_box_x2", "entity_box_y2")
COLUMNS = ("video_id", "frame_timestamp", *BOX, "label", "entity_id", "label_id", "instance_id", "score")


def read_ava_csv(path) -> List[Dict[str, str]]:
    """An AVA / UniTalk CSV (with or without a header row) -> rows as dicts of strings."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise InputError(f"{path}: empty CSV")
    header = rows[0] if "frame_timestamp" in rows[0] else None
    names = header or list(COLUMNS)
    out = []
    for n, r in enumerate(rows[1:] if header else rows, start=2 if header else 1):
        if len(r) < 8:
            raise InputError(f"{path}:{n}: {len(r)} columns, an AVA row has at least 8")
        out.append(dict(zip(names, r)))
    return out
