"""Average precision for active speaker detection, computed as the official AVA-ActiveSpeaker evaluation does.

The official script (``get_ava_active_speaker_performance.py``) matches ground-truth and prediction rows on
``uid = str(frame_timestamp) + ":" + entity_id`` (one-to-one, same boxes), sorts the rows by score, descending,
counts a true positive where the ground truth is ``SPEAKING_AUDIBLE``, takes precision ``tp / rank`` and
recall ``tp / positives`` at every row, and integrates the VOC-style interpolated envelope: precision made
non-increasing from the right, summed over the steps of recall. Every face-frame is one row, so long
tracks weigh more than short ones. Ties in score keep the input order here (a stable sort); the official
script's pandas sort does not promise an order for ties.
"""

from __future__ import annotations

from typing import Dict, Iterable, Mapping, Sequence, Tuple

import numpy as np

from ..data.ava_csv import BOX, read_ava_csv  # noqa: F401  (read_ava_csv: re-exported for callers)
from ..errors import InputError

SPEAKING = "SPEAKING_AUDIBLE"


def interpolated_average_precision(precision: np.ndarray, recall: np.ndarray) -> float:
    """VOC AP: area under the precision envelope (precision made non-increasing), over recall steps."""
    precision, recall = np.asarray(precision, np.float64), np.asarray(recall, np.float64)
    if precision.shape != recall.shape:
        raise InputError("precision and recall must have the same length")
    if precision.size == 0:
        return 0.0
    if np.any(np.diff(recall) < 0):
        raise InputError("recall must be non-decreasing")
    r = np.concatenate([[0.0], recall, [1.0]])
    p = np.concatenate([[0.0], precision, [0.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]
    steps = np.nonzero(r[1:] != r[:-1])[0] + 1
    return float(np.sum((r[steps] - r[steps - 1]) * p[steps]))


def uid(row: Mapping) -> str:
    return f"{row['frame_timestamp']}:{row['entity_id']}"


def precision_recall(labels: Sequence[bool], scores: Sequence[float]) -> Tuple[np.ndarray, np.ndarray]:
    """Rows sorted by score (descending, stable) -> precision and recall at every row."""
    labels = np.asarray(labels, bool)
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    tp = np.cumsum(labels[order])
    positives = int(labels.sum())
    if positives == 0:
        raise InputError("the ground truth has no SPEAKING_AUDIBLE rows: average precision is undefined")
    return tp / np.arange(1, len(tp) + 1), tp / positives


def ava_average_precision(
    ground_truth: Iterable[Mapping], predictions: Iterable[Mapping], box_tolerance: float = 1e-9
) -> float:
    """AP (0-1) over all face-frames; rows are dicts with the AVA CSV columns (predictions also ``score``).

    Raises, naming the row, where the official script refuses: unequal row counts, a duplicate or unmatched
    uid, a prediction labelled other than SPEAKING_AUDIBLE, a missing score, or boxes that differ.
    """
    gt: Dict[str, Mapping] = {}
    for row in ground_truth:
        k = uid(row)
        if k in gt:
            raise InputError(f"ground truth: duplicate row for {k}")
        gt[k] = row
    pred: Dict[str, Mapping] = {}
    for row in predictions:
        k = uid(row)
        if k in pred:
            raise InputError(f"predictions: duplicate row for {k}")
        if row.get("label", SPEAKING) != SPEAKING:
            raise InputError(
                f"predictions: row {k} is labelled {row['label']!r}; predictions carry {SPEAKING} and a score"
            )
        if row.get("score") in (None, ""):
            raise InputError(f"predictions: row {k} has no score")
        pred[k] = row
    if len(gt) != len(pred):
        raise InputError(f"ground truth has {len(gt)} rows and predictions {len(pred)}: they must match one to one")
    labels, scores = [], []
    for k, g in gt.items():
        if k not in pred:
            raise InputError(f"predictions: no row for {k}")
        p = pred[k]
        if all(b in g and b in p for b in BOX) and any(abs(float(g[b]) - float(p[b])) > box_tolerance for b in BOX):
            raise InputError(f"predictions: the box of {k} differs from the ground truth's")
        labels.append(g["label"] == SPEAKING)
        scores.append(float(p["score"]))
    precision, recall = precision_recall(labels, scores)
    return interpolated_average_precision(precision, recall)
