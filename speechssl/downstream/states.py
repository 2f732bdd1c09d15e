"""Where SUPERB heads get an upstream's hidden states, batch by batch, without holding a corpus of them.

* :class:`DiskStates`: the cache written by :func:`~speechssl.downstream.cache.load_cached_states` (float16
  ``.npy`` chunks, one file per layer and part), read on demand with positioned reads: only an index of
  (file, first row, frames) per utterance stays in memory, and no page of the cache stays mapped.
* :class:`OnlineStates`: the frozen upstream run on each batch's audio (no disk, recomputed every epoch).

Both give ``batch(keys, crop, generator) -> (states [L+1, B, T, D] float32, lengths [B])``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..constants import SAMPLE_RATE


def _crop(x: torch.Tensor, crop: Optional[int], generator: Optional[torch.Generator]) -> torch.Tensor:
    """``[L+1, T, D]`` -> at most ``crop`` frames from a random start."""
    T = x.shape[1]
    if crop and T > crop:
        start = int(torch.randint(0, T - crop + 1, (1,), generator=generator))
        x = x[:, start : start + crop]
    return x


def pad_states(states: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
    """``[L+1, T_i, D]`` tensors -> ``([L+1, B, T, D] float32, lengths [B])``."""
    lengths = torch.tensor([s.shape[1] for s in states])
    L_, D = states[0].shape[0], states[0].shape[2]
    x = torch.zeros(L_, len(states), int(lengths.max()), D)
    for i, s in enumerate(states):
        x[:, i, : s.shape[1]] = s.float()
    return x, lengths


class _NpyRows:
    """Rows of a 2-D ``.npy`` file by positioned reads (header parsed once)."""

    def __init__(self, path: Path):
        self.path = str(path)
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read(f)
            self.offset = f.tell()
        if fortran or len(shape) != 2:
            raise ValueError(f"{path}: expected a C-order 2-D array, got shape {shape}")
        self.dtype, self.dim = np.dtype(dtype), int(shape[1])

    def rows(self, start: int, count: int) -> np.ndarray:
        nbytes = count * self.dim * self.dtype.itemsize
        fd = os.open(self.path, os.O_RDONLY)
        try:
            buf = os.pread(fd, nbytes, self.offset + start * self.dim * self.dtype.itemsize)
        finally:
            os.close(fd)
        return np.frombuffer(buf, dtype=self.dtype).reshape(count, self.dim)


class DiskStates:
    """Hidden states of cached utterances read on demand. ``index``: key -> (one file per state, row, frames)."""

    def __init__(self, index: Dict[str, Tuple[List[Path], int, int]], frame_rate: float):
        self.index, self.frame_rate = index, frame_rate
        self._files: Dict[str, _NpyRows] = {}
        files, _, _ = next(iter(index.values()))
        self.num_states, self.dim = len(files), self._file(files[0]).dim

    def _file(self, path: Path) -> _NpyRows:
        key = str(path)
        if key not in self._files:
            self._files[key] = _NpyRows(path)
        return self._files[key]

    def frames(self, key: str) -> int:
        return self.index[key][2]

    def get(self, key: str) -> torch.Tensor:
        """``[L+1, T, D]`` float16 of one utterance."""
        files, start, count = self.index[key]
        return torch.from_numpy(np.stack([self._file(f).rows(start, count) for f in files]))

    def batch(
        self, keys: Sequence[str], crop: Optional[int] = None, generator: Optional[torch.Generator] = None
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        return pad_states([_crop(self.get(k), crop, generator) for k in keys])


class OnlineStates:
    """The frozen upstream on each batch: ``sources`` maps a key to ``load() -> waveform``."""

    def __init__(self, load_upstream: Callable, sources: Dict[str, Callable[[], np.ndarray]], device: str = "auto"):
        from ..utils.device import resolve_device

        self._load, self.sources, self.device = load_upstream, sources, resolve_device(device)
        self._model = None

    @property
    def model(self):
        if self._model is None:
            self._model = self._load().eval().to(self.device)
        return self._model

    @property
    def num_states(self) -> int:
        return self.model.num_layers + 1

    @property
    def dim(self) -> int:
        return self.model.hidden_size

    @property
    def frame_rate(self) -> float:
        return SAMPLE_RATE / self.model.downsample_rate

    @torch.no_grad()
    def batch(
        self, keys: Sequence[str], crop: Optional[int] = None, generator: Optional[torch.Generator] = None
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        wavs = [torch.from_numpy(np.asarray(self.sources[k](), np.float32)) for k in keys]
        lengths = torch.tensor([len(w) for w in wavs])
        padded = torch.nn.utils.rnn.pad_sequence(wavs, batch_first=True)
        out = self.model(padded.to(self.device), lengths.to(self.device))
        stacked = torch.stack([h.float().cpu() for h in out.hidden_states])  # [L+1, B, T, D]
        return pad_states([_crop(stacked[:, i, :n], crop, generator) for i, n in enumerate(out.lengths.tolist())])


__all__ = ["DiskStates", "OnlineStates", "pad_states"]
