"""Duration-bucketed batch sampler that is deterministic, distributed and resumable.

Batches are cut from the length-sorted utterance list so that the *padded* audio of a global
batch stays under ``world_size x batch_seconds``; their order is shuffled per epoch from
``seed + epoch``. Every global batch is split across ranks by interleaving (rank ``r`` takes
utterances ``r, r + W, ...``), so the global batch is the same whether it runs on one process
or many: a 2-process run with ``batch_seconds = S`` sees exactly the batches of a 1-process
run with ``2 S``. ``state_dict`` records the epoch and the batches consumed, so a resumed run
continues the epoch where it stopped instead of replaying it.
"""

from __future__ import annotations

from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import InputError
from .batching import duration_batches, padding_ratio


class BucketBatchSampler:
    def __init__(
        self,
        utts: Sequence[str],
        durations: Dict[str, float],
        batch_seconds: float,
        max_utts: Optional[int] = None,
        shuffle: bool = True,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
    ):
        if batch_seconds <= 0:
            raise InputError(f"batch_seconds must be positive, got {batch_seconds}")
        self.shuffle, self.seed, self.num_replicas, self.rank = shuffle, seed, num_replicas, rank
        self.durations = durations
        global_max = None if max_utts is None else max_utts * num_replicas
        batches = duration_batches(list(utts), durations, batch_seconds * num_replicas, global_max)
        # A global batch needs at least one utterance per rank; merge the odd short tail.
        self.global_batches: List[List[str]] = []
        for b in batches:
            if len(b) < num_replicas and self.global_batches:
                self.global_batches[-1].extend(b)
            else:
                self.global_batches.append(b)
        if self.global_batches and len(self.global_batches[0]) < num_replicas:
            raise InputError(f"only {len(utts)} utterances for {num_replicas} processes")
        self.epoch = 0
        self._skip = 0  # batches of self.epoch already consumed (set on resume)

    @property
    def padding_ratio(self) -> float:
        return padding_ratio(self.global_batches, self.durations)

    @property
    def sampler(self) -> BucketBatchSampler:
        """Itself: Lightning advances the epoch through ``loader.batch_sampler.sampler.set_epoch`` (it never
        looks at the batch sampler's own ``set_epoch``), so without this every epoch replayed epoch 0's
        order, crops and masks, and a resumed run (which restores the true epoch) diverged from a straight one."""
        return self

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self._skip = 0
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.global_batches)

    def order(self, epoch: int) -> List[int]:
        idx = np.arange(len(self.global_batches))
        if self.shuffle:
            np.random.default_rng(self.seed + epoch).shuffle(idx)
        return idx.tolist()

    def __iter__(self) -> Iterator[List[Tuple[str, int]]]:
        """This rank's share of each global batch, as ``(utt, epoch)`` keys for the dataset."""
        order = self.order(self.epoch)
        skip, self._skip = self._skip, 0
        for i in order[skip:]:
            yield [(u, self.epoch) for u in self.global_batches[i][self.rank :: self.num_replicas]]

    def state_dict(self, consumed: int) -> dict:
        return {"epoch": self.epoch, "consumed": consumed}

    def load_state_dict(self, state: dict) -> None:
        self.epoch = int(state["epoch"])
        self._skip = int(state["consumed"])
