"""A label set on disk, the typed folder between `speechssl kmeans assign` and everything that trains or scores
on its labels: ``labels.txt`` (``utt l1 l2 ...``, one line per utterance) beside the ``kmeans.json``
(:class:`~speechssl.clustering.spec.KMeansSpec`) of the model that made them, which gives the label rate, ``k``
and the schema. Read through :func:`read_label_set`, written through :func:`write_label_set`."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping, Optional, Sequence, Union

import numpy as np

from ..data.dataset import LabelSet
from ..utils.atomic import write_json, write_text
from .kmeans import check_label_range, format_label_line, read_labels
from .spec import SPEC_FILE, KMeansSpec

LABELS_FILE = "labels.txt"


def read_label_set(path: Union[str, Path], keep: Optional[Iterable[str]] = None) -> LabelSet:
    """A labels folder (or its ``labels.txt``) -> :class:`LabelSet`: labels, rate and ``k`` from its
    ``kmeans.json`` (schema checked), every label checked in ``[0, k)``. ``keep``: the utterance ids in use (the
    others are skipped unread and counted)."""
    p = Path(path)
    folder = p if p.is_dir() else p.parent
    spec = KMeansSpec.read(folder)
    labels = read_labels(p, keep)
    check_label_range(labels, spec.k, p)
    return LabelSet(labels, spec.frame_rate, spec.k, str(folder))


def write_label_set(
    folder: Union[str, Path], labels: Mapping[str, Union[np.ndarray, Sequence[int]]], spec: KMeansSpec
) -> Path:
    """``folder/kmeans.json`` then ``folder/labels.txt`` (sorted by utterance), each atomically: the folder is a
    label set once ``labels.txt`` exists, as after `speechssl kmeans assign`. Labels outside ``[0, k)`` are
    refused before anything is written."""
    folder = Path(folder)
    arrays = {u: np.asarray(v, dtype=np.int64) for u, v in labels.items()}
    check_label_range(arrays, spec.k, folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / SPEC_FILE, spec.to_dict())
    return write_text(folder / LABELS_FILE, "".join(format_label_line(u, arrays[u]) for u in sorted(arrays)))


__all__ = ["LABELS_FILE", "read_label_set", "write_label_set"]
