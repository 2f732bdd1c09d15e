"""``kmeans.json``, the typed file between the k-means stages: what ``kmeans learn`` wrote and everything that
reads labels (pretraining, ``kmeans eval``, the recipe) reads through :class:`KMeansSpec`.

A file of another schema or missing a field is one error naming the file and the field, never a ``KeyError``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Union

from ..errors import InputError, MissingInputError
from ..utils.readers import reading

SPEC_FILE = "kmeans.json"
SCHEMA = 1  # files written before the field existed are read as schema 1


@dataclass(frozen=True)
class KMeansSpec:
    """A k-means model's description: ``k`` centroids of ``dim`` dimensions, learnt on ``source``'s features
    (``source["frame_rate"]``: the label rate in Hz). ``raw`` keeps every other field as written."""

    k: int
    dim: int
    frame_rate: float
    source: Dict[str, Any] = field(default_factory=dict)
    raw: Dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_dict(cls, data: Dict[str, Any], where: str = SPEC_FILE) -> KMeansSpec:
        schema = data.get("schema", SCHEMA)
        if schema != SCHEMA:
            raise InputError(
                f"{where}: k-means spec of schema {schema!r}; this speechssl reads schema {SCHEMA} "
                "(relearn with `speechssl kmeans learn`)"
            )
        source = data.get("source")
        if not isinstance(source, dict) or "frame_rate" not in source:
            raise InputError(
                f"{where}: no source.frame_rate (the label rate); not a file `speechssl kmeans learn` wrote"
            )
        try:
            return cls(
                k=int(data["k"]),
                dim=int(data.get("dim", 0)),
                frame_rate=float(source["frame_rate"]),
                source=dict(source),
                raw=dict(data),
            )
        except KeyError as e:
            raise InputError(f"{where}: no {e.args[0]!r} field") from None
        except (TypeError, ValueError) as e:
            raise InputError(f"{where}: a field is not a number ({e})") from None

    @classmethod
    def read(cls, path: Union[str, Path]) -> KMeansSpec:
        """From a k-means or labels folder (``DIR/kmeans.json``) or the file itself."""
        p = Path(path)
        f = p / SPEC_FILE if p.is_dir() else p
        if not f.is_file():
            raise MissingInputError(
                f"{f}: missing (made by `speechssl kmeans learn` and copied beside the labels by `kmeans assign`)"
            )
        with reading(f, "k-means spec (JSON)"):
            data = json.loads(f.read_text())
        if not isinstance(data, dict):
            raise InputError(f"{f}: expected a JSON object")
        return cls.from_dict(data, str(f))

    def to_dict(self) -> Dict[str, Any]:
        return {**self.raw, "schema": SCHEMA, "k": self.k, "dim": self.dim, "source": self.source}


__all__ = ["KMeansSpec", "SCHEMA", "SPEC_FILE"]
