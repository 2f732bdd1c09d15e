"""Writing SUPERB task dirs: one split's data dir from rows, ``task.json``, and the missing-file check that
names what was expected. Shared by the layout preparers (:mod:`.superb_prep`, :mod:`.superb_prep_sf_sd_qbe`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, List

from ..data.kaldi_dir import DataDir, DataDirError
from ..errors import MissingInputError
from ..utils.atomic import write_text

# the row field each label table is written from
TABLE_FIELDS = {
    "utt2label": "label",
    "text": "text",
    "text.phone": "phones",
    "text.slot": "slots",
    "utt2terms": "terms",
}


def write_split(out: Path, rows: List[dict], tables: Iterable[str] = ()) -> DataDir:
    """Rows ``{utt, wav, spk, [rec, start, end], <label fields>}`` -> a data dir at ``out``; ``tables``: the
    label files to write (``TABLE_FIELDS`` names the row field of each)."""
    if not rows:
        raise DataDirError(f"{out}: no utterances for this split")
    seen = set()
    for r in rows:
        if r["utt"] in seen:
            raise DataDirError(f"{out}: utterance id {r['utt']} occurs twice")
        seen.add(r["utt"])
    d = DataDir()
    segmented = any("start" in r for r in rows)
    if segmented:
        d.segments = {}
    for r in rows:
        rec = r.get("rec", r["utt"])
        d.wav_scp[rec] = r["wav"]
        d.utt2spk[r["utt"]] = r["spk"]
        if segmented:
            d.segments[r["utt"]] = (rec, r.get("start", 0.0), r["end"] if "end" in r else seconds(r["wav"]))
    for name in tables:
        table = {r["utt"]: r[TABLE_FIELDS[name]] for r in rows}
        if name == "text":
            d.text = table
        else:
            d.extra[name] = table
    d.write(out)
    return d


def seconds(path: str) -> float:
    import soundfile

    return soundfile.info(path).duration


def task_json(out: Path, **info) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "task.json", json.dumps(info, indent=1))


def need(path: Path, what: str) -> Path:
    if not path.exists():
        raise MissingInputError(f"{path}: missing ({what})")
    return path


__all__ = ["TABLE_FIELDS", "need", "seconds", "task_json", "write_split"]
