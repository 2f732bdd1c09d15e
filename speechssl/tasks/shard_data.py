"""The pretraining data module over shards (:mod:`speechssl.data.stream`): the training set streams from
``data.shards``; validation stays a (small) Kaldi data dir with its label files. The position saved in
checkpoints is the number of batches this rank consumed: enough to resume exactly."""

from __future__ import annotations

import logging
from typing import List, Optional, Sequence

import torch

from ..data.shards import read_index
from ..data.stream import ShardStream
from ..errors import InputError
from .audio_data import AudioDataModule
from .common import AudioDataConfig

log = logging.getLogger(__name__)


class ShardDataModule(AudioDataModule):
    def __init__(self, cfg: AudioDataConfig, valid_labels: Sequence[str] = ()):
        super().__init__(cfg, (), ())
        self.index = read_index(cfg.shards)
        if valid_labels and len(valid_labels) != len(self.index["label_sets"]):
            raise InputError(
                f"{cfg.shards}: the shards hold {len(self.index['label_sets'])} label sets but "
                f"{len(valid_labels)} valid label sets are given"
            )
        self.valid_label_paths = list(valid_labels)
        self.stream: Optional[ShardStream] = None

    def setup(self, stage: Optional[str] = None) -> None:
        if self.cfg.valid and self.valid_set is None:
            if self.index["label_sets"] and not self.valid_label_paths:
                log.warning("no valid_labels: validation skipped")
            else:
                self.valid_set = self.make_dataset(self.cfg.valid, self.valid_label_paths, train=False)
        self.train_set = None  # streamed

    @property
    def num_classes(self) -> List[int]:
        return [int(ls["k"]) for ls in self.index["label_sets"]]

    @property
    def label_rates(self) -> List[float]:
        return [float(ls["rate"]) for ls in self.index["label_sets"]]

    def train_dataloader(self):
        trainer = self.trainer
        world, rank = (trainer.world_size, trainer.global_rank) if trainer else (1, 0)
        start = int(self._pending_state.get("batches", 0)) if self._pending_state else 0
        self._pending_state = None
        cfg = self.cfg
        self.stream = ShardStream(
            cfg.shards,
            cfg.batch_seconds,
            cfg.crop_seconds,
            cfg.min_seconds,
            cfg.max_utts,
            cfg.normalize,
            cfg.seed,
            cfg.shard_window,
            rank,
            world,
            start_batch=start,
        )
        log.info(
            "train: %d shards, %.2f h (streamed; %d processes), resuming after %d batches",
            len(self.index["shards"]),
            self.index["seconds"] / 3600,
            world,
            start,
        )
        return torch.utils.data.DataLoader(self.stream, batch_size=None, **self.loader_options())

    def state_dict(self) -> dict:
        return {"batches": self.consumed, "epoch": 0, "consumed": self.consumed}

    def load_state_dict(self, state: dict) -> None:
        self._pending_state = {"batches": int(state.get("batches", state.get("consumed", 0)))}
        self._resumed_consumed = self._pending_state["batches"]
