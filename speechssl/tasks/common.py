"""What the tasks that train on audio share: the audio data section, the pretraining model section (a
registered architecture, overrides, a warm start), the masked-prediction step's start, and pretraining's
fit-and-export (the untrained control ``OUT/init`` before the first step)."""

from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional

import torch

from ..config import MISSING
from ..errors import InputError
from ..models import available_models, load_model, model_config, save_model
from ..models.encoder import EncoderConfig
from ..nn.utils import GradMultiply, lengths_to_mask
from ..training import TrainingTask, fit_and_export

log = logging.getLogger(__name__)


@dataclass
class AudioDataConfig:
    train: str = "data/train"
    valid: Optional[str] = "data/dev"
    batch_seconds: float = 87.5  # padded audio per device and micro-batch (fairseq: 1.4M samples)
    max_utts: Optional[int] = None
    crop_seconds: Optional[float] = 15.625  # fairseq max_sample_size 250k samples
    min_seconds: float = 0.0
    normalize: bool = False  # per-utterance zero mean / unit variance waveform
    num_workers: int = 2  # loader processes (results do not depend on it: batches are planned)
    pin_memory: Optional[bool] = None  # page-locked batches for GPU copies (None: when training on a GPU)
    persistent_workers: bool = True  # keep loader processes across epochs and validation
    shards: Optional[str] = None  # train from a `speechssl data shard` folder (streamed) instead of `train`
    shard_window: int = 1000  # utterances bucketed together when streaming shards (memory: one window)
    seed: int = 0


@dataclass
class PretrainModelConfig:
    """The model part of a pretraining config: a registered name, field overrides, optional warm start."""

    model: str = MISSING  # a registered config name
    model_overrides: Dict[str, Any] = field(default_factory=dict)  # EncoderConfig fields
    init_from: Optional[str] = None  # an exported folder to start from (weights only)

    def encoder_config(self):
        if self.model not in available_models():
            close = difflib.get_close_matches(self.model, available_models(), 1)
            raise InputError(
                f"model {self.model!r} is not registered"
                + (f" (did you mean {close[0]}?)" if close else f"; available: {available_models()}")
            )
        return EncoderConfig.from_dict({**model_config(self.model).to_dict(), **self.model_overrides})


def frontend_and_masks(encoder, batch, obj, training: bool):
    """The start of every masked-prediction step: frontend (gradient scaled by ``obj.feature_grad_mult``
    in training), valid frames, and per-utterance seeded span masks. Returns ``(feats, frames, valid, mask)``."""
    feats, frames = encoder.frontend(batch["wavs"], batch["lengths"])
    if obj.feature_grad_mult != 1.0 and training:
        feats = GradMultiply.apply(feats, obj.feature_grad_mult)
    valid = lengths_to_mask(frames, feats.shape[1])
    mask = obj.draw(frames, feats.shape[1], batch["seeds"]) & valid
    return feats, frames, valid, mask


def init_weights_from(encoder: torch.nn.Module, path: Optional[str]) -> None:
    """Warm start: copy the matching weights of the exported model at ``path`` (no-op for None)."""
    if not path:
        return
    missing, unexpected = encoder.load_state_dict(load_model(path).state_dict(), strict=False)
    log.info("initialised from %s (not there: %s; ignored: %s)", path, missing, unexpected)


def run_pretraining(cfg, task: TrainingTask, dm, export, callbacks=()) -> Dict[str, Any]:
    """:func:`~speechssl.training.fit_and_export` for an encoder: the untrained encoder goes to
    ``out_dir/init`` before the first step (the control every comparison needs), and the export normalises
    its input itself when training did (``data.normalize``), so every user of it gets that right."""
    out = Path(cfg.trainer.out_dir)

    def save_init():
        save_model(task.encoder, out / "init", metadata={"objective": task.objective_name, "steps": 0})

    def export_final(trainer, summary):
        task.encoder.config.normalize_waveform = cfg.data.normalize
        return export(trainer, summary)

    return fit_and_export(cfg, task, dm, export_final, callbacks=callbacks, init_export=save_init)
