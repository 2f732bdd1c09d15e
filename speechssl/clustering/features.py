"""Where k-means reads its features from, streamed one utterance at a time.

A *feature source* is one of:

- a Kaldi ``.scp`` file, or a folder written by ``speechssl features`` (its ``feats.scp``);
- a folder written by ``speechssl extract`` plus a layer (``exp/feats/m/train`` with ``layer=6``,
  or the spelling ``exp/feats/m/train:6``).

Each source knows its frame rate (100 Hz for Kaldi MFCC/fbank, ``16000 / downsample_rate`` for a
model layer), the data dir it was computed from when recorded, and its dimension.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional, Tuple

import numpy as np

from ..errors import InputError, MissingInputError
from ..pipelines.extract import read_features
from ..pipelines.outputs import read_scp
from ..utils.artifacts import FeatureSpec


@dataclass
class FeatureSource:
    path: Path
    layer: Optional[int] = None
    spec: dict = field(default_factory=dict)

    @classmethod
    def open(cls, spec: str, layer: Optional[int] = None) -> FeatureSource:
        """Parse ``path``, ``path:layer`` or (``path``, ``layer``) and check that it exists."""
        text = str(spec)
        if layer is None and ":" in text and not Path(text).exists():
            text, _, tail = text.rpartition(":")
            if not tail.isdigit():
                raise InputError(f"feature source {spec!r}: expected PATH or PATH:LAYER")
            layer = int(tail)
        path = Path(text)
        if not path.exists():
            raise MissingInputError(f"feature source {path}: no such file or folder")
        meta = {}
        if path.is_dir():
            if (path / FeatureSpec.FILE).exists():
                meta = FeatureSpec.read(path).fields
            if "layers" in meta:  # speechssl extract output
                if layer is None:
                    raise InputError(
                        f"{path} holds layers {meta['layers']} of {meta.get('model')}: name one as {path}:LAYER"
                    )
                if layer not in meta["layers"]:
                    raise InputError(f"{path}: layer {layer} was not extracted (have {meta['layers']})")
                if (
                    not (path / f"layer{layer}" / "feats.scp").exists()
                    and meta["format"] == "ark"
                    and not any((path / f"layer{layer}").glob("chunk.*"))
                ):
                    raise MissingInputError(f"{path}/layer{layer}: no features yet (extraction not run?)")
            elif not (path / "feats.scp").exists():
                raise MissingInputError(
                    f"{path}: no feats.scp (all shards of `speechssl features` done?) "
                    "and no spec.json of `speechssl extract`"
                )
        elif layer is not None:
            raise InputError(f"{path} is a single scp file: it has no layers")
        return cls(path, layer, meta)

    @property
    def is_extract(self) -> bool:
        return "layers" in self.spec

    @property
    def frame_rate(self) -> float:
        """Frames per second (100 for Kaldi features unless their spec says otherwise)."""
        return float(self.spec.get("frame_rate", 100.0))

    @property
    def data_dir(self) -> Optional[str]:
        return self.spec.get("data")

    def describe(self) -> dict:
        """What the centroids were learnt on, stored next to them."""
        d = {"path": str(self.path.resolve()), "frame_rate": self.frame_rate}
        if self.layer is not None:
            d["layer"] = self.layer
        for k in ("model", "kind", "deltas", "cmvn", "data"):
            if k in self.spec:
                d[k] = self.spec[k]
        return d

    def _scp(self) -> Optional[Path]:
        if self.is_extract:
            merged = self.path / f"layer{self.layer}" / "feats.scp"
            return merged if merged.exists() else None
        return self.path / "feats.scp" if self.path.is_dir() else self.path

    def utt_ids(self) -> list:
        """All utterance ids, sorted."""
        scp = self._scp()
        if scp is not None:
            return sorted(line.split(maxsplit=1)[0] for line in scp.read_text().splitlines() if line.strip())
        return sorted(u for u, _ in self)

    def subset(self, utts) -> Iterator[Tuple[str, np.ndarray]]:
        """``(utt, feats)`` for the given ids only (storage order for npy), reading only those."""
        return _one_dim(self._subset(utts), self.spec_path)

    def __iter__(self) -> Iterator[Tuple[str, np.ndarray]]:
        """``(utt, [frames, dim] float32)`` in storage order."""
        return _one_dim(self._all(), self.spec_path)

    @property
    def spec_path(self) -> str:
        """What the messages name: the features' scp or folder (and layer)."""
        scp = self._scp()
        where = str(scp) if scp is not None else str(self.path)
        return where + (f" (layer {self.layer})" if self.is_extract and scp is None else "")

    def _subset(self, utts) -> Iterator[Tuple[str, np.ndarray]]:
        scp = self._scp()
        if scp is not None and not (self.is_extract and self.spec.get("format") == "npy"):
            for u, a in read_scp(scp, utts):
                yield u, np.asarray(a, dtype=np.float32)
            return
        wanted = set(utts)  # npy chunks are memory-mapped: skipping costs nothing
        for u, a in self._all():
            if u in wanted:
                yield u, a

    def _all(self) -> Iterator[Tuple[str, np.ndarray]]:
        if self.is_extract:
            for utt, a in read_features(self.path, self.layer):
                yield utt, np.asarray(a, dtype=np.float32)
            return
        scp = self.path / "feats.scp" if self.path.is_dir() else self.path
        for utt, a in read_scp(scp):
            yield utt, np.asarray(a, dtype=np.float32)


def _one_dim(items: Iterator[Tuple[str, np.ndarray]], where: str) -> Iterator[Tuple[str, np.ndarray]]:
    """Pass ``(utt, [frames, dim])`` through, refusing a second dimension (a ``feats.scp`` mixing MFCC and fbank)."""
    dim = first = None
    for utt, a in items:
        if a.ndim != 2:
            raise InputError(f"{where}: utterance {utt} has features of shape {tuple(a.shape)}, expected [frames, dim]")
        if dim is None:
            dim, first = a.shape[1], utt
        elif a.shape[1] != dim:
            raise InputError(
                f"{where}: utterance {utt} has {a.shape[1]}-dimensional features, {first} has {dim}: "
                "one feature type per set (were two feature folders combined?)"
            )
        yield utt, a
