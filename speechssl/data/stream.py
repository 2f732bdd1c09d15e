"""Streaming, duration-bucketed batches from shards (:mod:`.shards`), split across ranks and loader
workers, resumable exactly.

Every (rank, worker) pair streams its own shards: each epoch the shard list is shuffled with
``seed + epoch``, rank ``r`` of ``R`` takes every R-th shard and loader worker ``w`` of ``W`` every W-th of
those. Batches are planned from the shards' listings alone (utterance ids and durations, no audio): a
window of ``window`` consecutive utterances is sorted by duration, cut into batches whose padded audio
stays under ``batch_seconds`` (and ``max_utts``), and the batches of the window are shuffled. Only the
window being served is held in memory (its samples still encoded), so memory does not grow with the
corpus; labels come from the shards, never from a whole label file.

The stream is endless (epochs follow each other; ``max_steps`` ends training), so ranks with different
shard sizes never wait on each other at an epoch boundary. Resume needs one number, the batches this
rank has consumed: the DataLoader takes batch ``j`` from worker ``j % W``, so each worker knows how many
of its batches went by and skips them in its plan (without reading their audio), then continues with
exactly the batch that would have come next. Crops use the same per-utterance, per-epoch seed as the
Kaldi-dir path.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..constants import SAMPLE_RATE
from ..errors import InputError
from .batching import duration_batches
from .dataset import collate_audio_labels, utterance_seed
from .shards import decode_sample, iter_shard, read_index, read_listing

log = logging.getLogger(__name__)

Entry = Tuple[str, str, str, float]  # (shard, key, utterance id, training seconds)


@dataclass
class PlannedBatch:
    window: int
    entries: List[Entry]


def consumed_by_worker(batches: int, worker: int, workers: int) -> int:
    """Batches worker ``worker`` produced when the loader has handed out ``batches`` (round robin)."""
    return max(0, (batches - worker + workers - 1) // workers)


class ShardStream(torch.utils.data.IterableDataset):
    """Endless batches (dicts as :func:`~speechssl.data.dataset.collate_audio_labels` makes) from a shard folder.

    Args:
        folder: written by ``speechssl data shard``.
        batch_seconds: padded audio per batch (per device). max_utts: utterances per batch at most.
        crop_seconds: random crop (aligned to the label frames), min_seconds: shorter utterances are left out.
        window: utterances planned together (bucketing quality against memory: one window's encoded audio).
        rank, world: this process among ``world``. start_batch: batches this rank already consumed (resume).
    """

    def __init__(
        self,
        folder,
        batch_seconds: float,
        crop_seconds: Optional[float] = None,
        min_seconds: float = 0.0,
        max_utts: Optional[int] = None,
        normalize: bool = False,
        seed: int = 0,
        window: int = 1000,
        rank: int = 0,
        world: int = 1,
        start_batch: int = 0,
    ):
        super().__init__()
        if batch_seconds <= 0:
            raise InputError(f"batch_seconds must be positive, got {batch_seconds}")
        self.folder = str(folder)
        index = read_index(folder)
        self.shards = [s["name"] for s in index["shards"]]
        self.label_sets = index["label_sets"]
        self.batch_seconds, self.crop_seconds, self.min_seconds = batch_seconds, crop_seconds, min_seconds
        self.max_utts, self.normalize, self.seed, self.window = max_utts, normalize, seed, window
        self.rank, self.world, self.start_batch = rank, world, start_batch
        if len(self.shards) < world:
            raise InputError(
                f"{folder}: {len(self.shards)} shards for {world} processes; write smaller shards "
                f"(speechssl data shard --shard-hours)"
            )
        rates = [ls["rate"] for ls in self.label_sets]
        self._align = int(np.lcm.reduce([int(round(SAMPLE_RATE / r)) for r in rates] or [1]))

    # -- planning: listings only ----------------------------------------------------------------
    def shards_for(self, epoch: int, worker: int, workers: int) -> List[str]:
        order = list(self.shards)
        random.Random(self.seed * 1_000_003 + epoch).shuffle(order)
        return order[self.rank :: self.world][worker::workers]

    def windows(self, epoch: int, worker: int = 0, workers: int = 1) -> Iterator[List[PlannedBatch]]:
        """This (rank, worker)'s batches of ``epoch``, a window at a time, in the order they are served.
        Listings are read one shard at a time: memory holds one window, not the epoch."""
        cap = self.crop_seconds or float("inf")
        chunk: List[Entry] = []
        w = 0
        for shard in self.shards_for(epoch, worker, workers):
            for key, utt, sec in read_listing(self.folder, shard):
                if float(sec) >= self.min_seconds:
                    chunk.append((shard, key, utt, min(float(sec), cap)))
                if len(chunk) == self.window:
                    yield self._bucket(chunk, epoch, worker, w)
                    chunk, w = [], w + 1
        if chunk:
            yield self._bucket(chunk, epoch, worker, w)

    def _bucket(self, chunk: List[Entry], epoch: int, worker: int, w: int) -> List[PlannedBatch]:
        by_id = {f"{e[0]}/{e[1]}": e for e in chunk}
        cut = duration_batches(list(by_id), {i: e[3] for i, e in by_id.items()}, self.batch_seconds, self.max_utts)
        random.Random(f"{self.seed}/{epoch}/{self.rank}/{worker}/{w}").shuffle(cut)
        return [PlannedBatch(w, [by_id[i] for i in b]) for b in cut]

    def plan(self, epoch: int, worker: int = 0, workers: int = 1) -> List[PlannedBatch]:
        """The whole epoch's batches (for inspection and tests; serving goes window by window)."""
        return [b for window in self.windows(epoch, worker, workers) for b in window]

    # -- serving ---------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[dict]:
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        if len(self.shards) < self.world * workers:
            raise InputError(
                f"{self.folder}: {len(self.shards)} shards for {self.world} processes x {workers} "
                f"loader workers: some would get none; write smaller shards or use fewer workers"
            )
        # the loader starts its round robin at worker 0 again after a resume: loader worker w serves the role
        # of the worker whose batch comes next
        role = (worker + self.start_batch) % workers
        skip = consumed_by_worker(self.start_batch, role, workers)
        epoch = 0
        while True:
            served = False
            for window in self.windows(epoch, role, workers):
                served = True
                if skip >= len(window):  # consumed before the resume: not even read
                    skip -= len(window)
                    continue
                yield from self._serve(window[skip:], epoch)
                skip = 0
            if not served:
                raise InputError(
                    f"{self.folder}: no utterances for rank {self.rank} worker {role} "
                    f"(all shorter than min_seconds {self.min_seconds}?)"
                )
            epoch += 1

    def _serve(self, batches: Sequence[PlannedBatch], epoch: int) -> Iterator[dict]:
        i = 0
        while i < len(batches):
            window = batches[i].window
            group = []
            while i < len(batches) and batches[i].window == window:
                group.append(batches[i])
                i += 1
            wanted = {}
            for b in group:
                for shard, key, _, _ in b.entries:
                    wanted.setdefault(shard, set()).add(key)
            held = {
                (shard, key): members
                for shard, keys in wanted.items()
                for key, members in iter_shard(self.folder, shard, keys)
            }
            for b in group:
                yield collate_audio_labels([self._item(held[(s, k)], epoch) for s, k, _, _ in b.entries])

    def _item(self, members, epoch: int) -> dict:
        wav, meta, labels, _ = decode_sample(members, len(self.label_sets))
        utt = meta["utt"]
        seed = utterance_seed(self.seed, epoch, utt)
        crop = int(self.crop_seconds * SAMPLE_RATE) if self.crop_seconds else None
        start = 0
        if crop and len(wav) > crop:
            rng = np.random.default_rng(seed)
            start = int(rng.integers(0, (len(wav) - crop) // self._align + 1)) * self._align
            wav = wav[start : start + crop]
        if self.normalize:
            wav = (wav - wav.mean()) / max(float(wav.std()), 1e-5)
        out_labels = []
        for ls, lab in zip(self.label_sets, labels):
            hop = int(round(SAMPLE_RATE / ls["rate"]))
            out_labels.append(torch.from_numpy(lab[start // hop :]))
        return {
            "utt": utt,
            "wav": torch.from_numpy(np.ascontiguousarray(wav)),
            "labels": out_labels,
            "seed": seed,
            "start": start,
        }


__all__ = ["ShardStream", "consumed_by_worker"]
