"""The data module of every audio pretraining task: data dirs + optional frame-label sets ->
duration-bucketed, distributed, resumable batches."""

from __future__ import annotations

import logging
from typing import List, Optional, Sequence

import lightning as L
import torch

from ..clustering.label_set import read_label_set
from ..data.dataset import AudioLabelDataset, LabelSet, collate_audio_labels
from ..data.kaldi_dir import DataDir
from ..data.sampler import BucketBatchSampler
from ..errors import InputError
from .common import AudioDataConfig

log = logging.getLogger(__name__)


class AudioDataModule(L.LightningDataModule):
    """``train`` / ``valid`` data dirs with their label sets (``train_labels[i]`` pairs with
    ``valid_labels[i]``). The batch sampler's position is saved in checkpoints."""

    def __init__(self, cfg: AudioDataConfig, train_labels: Sequence[str] = (), valid_labels: Sequence[str] = ()):
        super().__init__()
        self.cfg = cfg
        if valid_labels and len(valid_labels) != len(train_labels):
            raise InputError(f"{len(train_labels)} train label sets but {len(valid_labels)} valid ones")
        self.train_label_paths, self.valid_label_paths = list(train_labels), list(valid_labels)
        self.train_set: Optional[AudioLabelDataset] = None
        self.valid_set: Optional[AudioLabelDataset] = None
        self.sampler: Optional[BucketBatchSampler] = None
        self._pending_state: Optional[dict] = None
        self.consumed = 0  # batches of the current epoch handed to training (counted by the task)
        self._resumed_consumed: Optional[int] = None

    def label_sets(self, paths, data_dir: Optional[str] = None) -> List[LabelSet]:
        """The label sets at ``paths``, read only for the utterances of ``data_dir`` when given."""
        keep = DataDir.read(data_dir).utt_ids if data_dir and paths else None
        return [read_label_set(p, keep) for p in paths]

    def make_dataset(self, data_dir: str, label_paths: Sequence[str], train: bool):
        """The dataset of one split; tasks with other targets (transcripts) override this."""
        return AudioLabelDataset(
            data_dir,
            self.label_sets(label_paths, data_dir),
            self.cfg.crop_seconds,
            self.cfg.min_seconds if train else 0.0,
            normalize=self.cfg.normalize,
        )

    collate_fn = staticmethod(collate_audio_labels)

    def setup(self, stage: Optional[str] = None) -> None:
        if self.train_set is None:
            self.train_set = self.make_dataset(self.cfg.train, self.train_label_paths, train=True)
            self.train_set.seed = self.cfg.seed
            if self.cfg.valid:
                if self.train_label_paths and not self.valid_label_paths:
                    log.warning("no valid_labels: validation skipped")
                else:
                    self.valid_set = self.make_dataset(self.cfg.valid, self.valid_label_paths, train=False)

    @property
    def num_classes(self) -> List[int]:
        return [ls.num_classes for ls in self.train_set.label_sets]

    @property
    def label_rates(self) -> List[float]:
        return [ls.rate for ls in self.train_set.label_sets]

    def loader_options(self) -> dict:
        """Workers, pinning and persistence from the config (pinning only when training on a GPU)."""
        cfg = self.cfg
        on_gpu = bool(self.trainer is not None and self.trainer.strategy.root_device.type == "cuda")
        return dict(
            num_workers=cfg.num_workers,
            pin_memory=on_gpu if cfg.pin_memory is None else cfg.pin_memory,
            persistent_workers=bool(cfg.persistent_workers and cfg.num_workers > 0),
        )

    def _loader(self, dataset, sampler):
        return torch.utils.data.DataLoader(
            dataset, batch_sampler=sampler, collate_fn=self.collate_fn, **self.loader_options()
        )

    def train_dataloader(self):
        trainer = self.trainer
        world, rank = (trainer.world_size, trainer.global_rank) if trainer else (1, 0)
        self.sampler = BucketBatchSampler(
            self.train_set.utts,
            self.train_set.seconds,
            self.cfg.batch_seconds,
            self.cfg.max_utts,
            shuffle=True,
            seed=self.cfg.seed,
            num_replicas=world,
            rank=rank,
        )
        if self._pending_state:
            self.sampler.load_state_dict(self._pending_state)
            log.info(
                "resuming epoch %d after %d of %d batches",
                self._pending_state["epoch"],
                self._pending_state["consumed"],
                len(self.sampler),
            )
            self._pending_state = None
        log.info(
            "train: %d utterances, %.2f h, %d global batches of <= %.0f s, padding %.1f%%",
            len(self.train_set),
            sum(self.train_set.seconds.values()) / 3600,
            len(self.sampler),
            self.cfg.batch_seconds * world,
            100 * self.sampler.padding_ratio,
        )
        return self._loader(self.train_set, self.sampler)

    def val_dataloader(self):
        if self.valid_set is None:
            return []
        trainer = self.trainer
        world, rank = (trainer.world_size, trainer.global_rank) if trainer else (1, 0)
        sampler = BucketBatchSampler(
            self.valid_set.utts,
            self.valid_set.seconds,
            self.cfg.batch_seconds,
            self.cfg.max_utts,
            shuffle=False,
            num_replicas=world,
            rank=rank,
        )
        return self._loader(self.valid_set, sampler)

    def state_dict(self) -> dict:
        epoch = self.trainer.current_epoch if self.trainer else 0
        return {"epoch": epoch, "consumed": self.consumed}

    def load_state_dict(self, state: dict) -> None:
        self._pending_state = dict(state)
        self._resumed_consumed = int(state["consumed"])
