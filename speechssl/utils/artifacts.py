"""The JSON files handed between stages, typed: each kind names its file, its schema version, the fields every
reader relies on, and what writes it. Writers go through :meth:`Artifact.write` (the schema stamped, the fields
checked, the file written atomically); readers through :meth:`Artifact.read`, which turns a file of another
schema, a missing field or a broken file into one error naming the file, never a ``KeyError`` further on.

Files written before the schema field existed read as schema 1. The k-means model has its own typed reader
(:class:`speechssl.clustering.spec.KMeansSpec`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Dict, Tuple, TypeVar, Union

from ..errors import InputError, MissingInputError
from .atomic import write_json
from .readers import reading

A = TypeVar("A", bound="Artifact")


@dataclass(frozen=True)
class Artifact:
    """A typed JSON file: ``fields`` holds everything written (the typed properties of a kind read from it)."""

    fields: Dict[str, Any] = field(default_factory=dict)
    path: str = ""

    FILE: ClassVar[str] = ""
    KIND: ClassVar[str] = ""
    SCHEMA: ClassVar[int] = 1
    REQUIRED: ClassVar[Tuple[str, ...]] = ()
    WRITER: ClassVar[str] = ""

    @classmethod
    def from_dict(cls: type[A], data: Any, where: str) -> A:
        if not isinstance(data, dict):
            raise InputError(f"{where}: a {cls.KIND} must be a JSON object")
        schema = data.get("schema", 1)
        if schema != cls.SCHEMA:
            raise InputError(
                f"{where}: {cls.KIND} of schema {schema!r}; this speechssl reads schema {cls.SCHEMA} "
                f"(made again by {cls.WRITER})"
            )
        missing = [k for k in cls.REQUIRED if k not in data]
        if missing:
            raise InputError(f"{where}: {cls.KIND} without {', '.join(missing)}; not a file {cls.WRITER} wrote")
        return cls(fields=dict(data), path=where)

    @classmethod
    def read(cls: type[A], path: Union[str, Path]) -> A:
        """From the file or the folder holding it."""
        p = Path(path)
        f = p / cls.FILE if p.is_dir() else p
        if not f.is_file():
            raise MissingInputError(f"{f}: missing (written by {cls.WRITER})")
        with reading(f, f"{cls.KIND} (JSON)"):
            data = json.loads(f.read_text())
        return cls.from_dict(data, str(f))

    @classmethod
    def write(cls, path: Union[str, Path], data: Dict[str, Any]) -> Path:
        """``data`` with the schema stamped, to ``path`` (a file, or a folder for :attr:`FILE`), atomically. A
        missing required field is a programming error here, not a reader's surprise later."""
        missing = [k for k in cls.REQUIRED if k not in data]
        if missing:
            raise ValueError(f"{cls.KIND} written without {', '.join(missing)}")
        p = Path(path)
        f = p / cls.FILE if p.suffix != ".json" else p
        return write_json(f, {"schema": cls.SCHEMA, **data})

    def __getitem__(self, key: str) -> Any:
        return self.fields[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.fields.get(key, default)


@dataclass(frozen=True)
class SuperbResult(Artifact):
    """``<out>/<upstream>/<task>/result.json``: one SUPERB task's test metric (written last: the task's done
    marker), its dev curve, layer weights and the settings that made it."""

    FILE: ClassVar[str] = "result.json"
    KIND: ClassVar[str] = "SUPERB result"
    REQUIRED: ClassVar[Tuple[str, ...]] = ("task", "upstream", "metric", "value")
    WRITER: ClassVar[str] = "`speechssl superb`"

    @property
    def value(self) -> float:
        return float(self.fields["value"])


@dataclass(frozen=True)
class RunSummary(Artifact):
    """``<run>/summary.json``: a training run's steps, epochs, time, precision, last metrics and export folder."""

    FILE: ClassVar[str] = "summary.json"
    KIND: ClassVar[str] = "run summary"
    REQUIRED: ClassVar[Tuple[str, ...]] = ()  # the report reads what is there (a cut run may lack fields)
    WRITER: ClassVar[str] = "a training command (`speechssl pretrain`, `distill`, `finetune`, ...)"


@dataclass(frozen=True)
class DecodeResult(Artifact):
    """``decode_<split>_<decoder>/results.json``: WER and CER (letters, words) or PER (phones), each with its
    rate and counts, of one decode of a data dir."""

    FILE: ClassVar[str] = "results.json"
    KIND: ClassVar[str] = "decode result"
    WRITER: ClassVar[str] = "`speechssl decode` / `speechssl score`"


@dataclass(frozen=True)
class FeatureSpec(Artifact):
    """``<features>/spec.json``: the settings a feature folder was made with (`speechssl extract`: model, layers,
    format, dims; `speechssl features`: MFCC / fbank options), its frame rate and shard count. Written once by
    :func:`speechssl.pipelines.outputs.claim_output`, which refuses a rerun with other settings."""

    FILE: ClassVar[str] = "spec.json"
    KIND: ClassVar[str] = "feature folder spec"
    REQUIRED: ClassVar[Tuple[str, ...]] = ("frame_rate", "nshard")
    WRITER: ClassVar[str] = "`speechssl extract` / `speechssl features`"

    @property
    def frame_rate(self) -> float:
        return float(self.fields["frame_rate"])

    @property
    def layers(self) -> list:
        """The extracted layers (empty for MFCC / fbank folders)."""
        return list(self.fields.get("layers") or [])

    @property
    def nshard(self) -> int:
        return int(self.fields["nshard"])


__all__ = ["Artifact", "DecodeResult", "FeatureSpec", "RunSummary", "SuperbResult"]
