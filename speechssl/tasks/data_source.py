"""Which data module a pretraining config asks for: streamed shards (``data.shards``) or Kaldi data dirs."""

from __future__ import annotations

from typing import Sequence

from .audio_data import AudioDataModule
from .common import AudioDataConfig
from .shard_data import ShardDataModule


def audio_data_module(cfg: AudioDataConfig, train_labels: Sequence[str] = (), valid_labels: Sequence[str] = ()):
    if cfg.shards:
        return ShardDataModule(cfg, valid_labels=valid_labels)
    return AudioDataModule(cfg, train_labels, valid_labels)


__all__ = ["audio_data_module"]
