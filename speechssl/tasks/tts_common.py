"""What both WavThruVec stages share: the upstream features and speaker embeddings of a data dir, the speaker
conditioning's sizes, exported folders (``<kind>.yaml`` + ``model.safetensors``), and the fit-then-export driver.
"""
from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import lightning as L
import numpy as np
import torch
from omegaconf import OmegaConf
from safetensors.torch import load_file, save_file

from ..data.kaldi_dir import DataDir
from ..errors import InputError, MissingInputError
from ..hub import load_upstream
from ..pipelines.extract import extract_features, read_features
from ..utils.atomic import atomic_path, write_json, write_text
from .common import StepTimeLimit, TrainerConfig, build_optimizer, build_trainer, last_checkpoint

log = logging.getLogger(__name__)


@dataclass
class SpeakerConfig:
    kind: str = "reference"        # reference (embedding of reference audio: zero-shot) | table | none
    layer: int = 1                 # upstream layer whose mean + std over time is the embedding

    def validate(self) -> None:
        if self.kind not in ("reference", "table", "none"):
            raise InputError(f"speaker.kind must be reference, table or none, got {self.kind!r}")


def ensure_features(cfg, data_dir: str, name: str) -> Path:
    """The extraction holding ``cfg.layer`` and ``cfg.speaker.layer`` for ``data_dir`` (extracted if absent)."""
    if cfg.data.features:
        return Path(cfg.data.features) / name

    out = Path(cfg.trainer.out_dir) / "features" / name
    layers = sorted({cfg.layer, cfg.speaker.layer})
    if not all((out / f"layer{layer}" / "feats.scp").is_file() for layer in layers):
        extract_features(load_upstream(cfg.upstream), data_dir, out, layers, "ark", progress=False)
    return out


def speaker_embedding(frames: np.ndarray) -> np.ndarray:
    """``[T, D]`` layer features -> ``[2 D]``: mean and standard deviation over time, L2-normalised."""
    v = np.concatenate([frames.mean(0), frames.std(0)]).astype(np.float32)
    return v / max(float(np.linalg.norm(v)), 1e-8)


def read_layer(feats_dir: Path, layer: int) -> Dict[str, np.ndarray]:
    return {u: np.asarray(a, dtype=np.float32) for u, a in read_features(feats_dir, layer)}


def split_features(cfg, data_dir: str, name: str) -> Tuple[Dict[str, np.ndarray], Dict[str, np.ndarray]]:
    """``({utt: features [T, F]}, {utt: speaker embedding [S]})`` of one split."""
    fdir = ensure_features(cfg, data_dir, name)
    feats = read_layer(fdir, cfg.layer)
    spk_src = feats if cfg.speaker.layer == cfg.layer else read_layer(fdir, cfg.speaker.layer)
    return feats, {u: speaker_embedding(a) for u, a in spk_src.items()}


def prepare_splits(cfg) -> Tuple[Path, List[str], List[tuple]]:
    """Validate ``cfg``, make ``out_dir``, seed; -> ``(out_dir, training speakers, [(split, data dir, features,
    speaker embeddings)])`` for the train and (if set) valid splits."""

    cfg.validate()
    out = Path(cfg.trainer.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.trainer.seed)
    speakers = sorted(set(DataDir.read(cfg.data.train).utt2spk.values()))
    splits = [(name, d, *split_features(cfg, d, name))
              for name, d in (("train", cfg.data.train), ("valid", cfg.data.valid)) if d]
    return out, speakers, splits


def set_speaker_sizes(model_cfg, kind: str, embedding_dim: int, num_speakers: int) -> None:
    """``speaker_dim`` / ``num_speakers`` of a model config from the conditioning chosen."""
    if kind == "reference":
        model_cfg.speaker_dim, model_cfg.num_speakers = embedding_dim, 0
    elif kind == "table":
        model_cfg.speaker_dim, model_cfg.num_speakers = model_cfg.speaker_dim or 64, num_speakers
    else:
        model_cfg.speaker_dim, model_cfg.num_speakers = 0, 0


def speaker_inputs(kind: str, batch) -> dict:
    """The model's speaker keyword arguments for a batch."""
    return {} if kind == "none" else {"speaker_ids": batch["speaker_id"]} if kind == "table" else \
        {"speaker": batch["speaker"]}


def save_export(model: torch.nn.Module, out: Path, kind: str, spec: dict) -> Path:
    """``out/<kind>.yaml`` (what to rebuild it from) + ``out/model.safetensors``, each written atomically."""

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "model.safetensors") as tmp:
        save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(tmp))
    write_text(out / f"{kind}.yaml", OmegaConf.to_yaml(spec))
    return out


def load_export(path, kind: str, config_key: str, schema, build: Callable) -> tuple:
    """An exported folder -> ``(model in eval mode, spec dict)``."""

    path = Path(path)
    if not (path / f"{kind}.yaml").is_file():
        raise MissingInputError(f"{path}: not a {config_key} export (no {kind}.yaml)")
    spec = OmegaConf.to_container(OmegaConf.load(path / f"{kind}.yaml"))
    model = build(OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), spec[config_key])))
    model.load_state_dict(load_file(str(path / "model.safetensors")))
    return model.eval(), spec


def export_spec(cfg, config_key: str, speakers: List[str], **extra) -> dict:
    return {config_key: OmegaConf.to_container(OmegaConf.structured(cfg.model)), "upstream": cfg.upstream,
            "layer": cfg.layer, "speaker": {"kind": cfg.speaker.kind, "layer": cfg.speaker.layer},
            "speakers": speakers, **extra}


def fit_and_export(cfg, task, dm, optim_cfg, steps_per_batch: int, export: Callable[[int], Path],
                   extra_summary: dict) -> dict:
    """Fit (resuming from ``out_dir/checkpoints/last.ckpt``), checkpoint, export ``final``, write summary.json.

    ``steps_per_batch``: optimizer steps Lightning counts per batch (2 for a GAN's two optimizers).
    """

    out = Path(cfg.trainer.out_dir)
    t = cfg.trainer
    callbacks = [StepTimeLimit(t.max_time_minutes)] if t.max_time_minutes else []
    trainer = build_trainer(TrainerConfig(**{**t.__dict__, "max_steps": steps_per_batch * t.max_steps,
                                             "max_time_minutes": None,
                                             "checkpoint_every_steps": steps_per_batch * t.checkpoint_every_steps}),
                            optim_cfg, callbacks)
    warnings.filterwarnings("ignore", message=".*ModelCheckpoint with manual optimization.*")  # saved after steps
    t0 = time.time()
    trainer.fit(task, datamodule=dm, ckpt_path=last_checkpoint(out))
    trainer.save_checkpoint(out / "checkpoints" / "last.ckpt")
    steps = trainer.global_step // steps_per_batch
    summary = {"steps": steps, "trained_seconds": round(task.trained_seconds, 1),
               "wall_seconds_this_run": round(time.time() - t0, 1), **extra_summary,
               "metrics": {k: round(float(v), 5) for k, v in trainer.callback_metrics.items()}}
    if trainer.is_global_zero:
        summary["export"] = str(export(steps))
        write_json(out / "summary.json", summary)
    return summary


class SplitsDataModule(L.LightningDataModule):
    """Shuffled training batches; the first ``valid_count`` validation items in batches of ``valid_batch``."""

    def __init__(self, data_cfg, train, valid, collate, valid_count: int, valid_batch: int):
        super().__init__()
        self.data_cfg, self.train, self.valid, self.collate = data_cfg, train, valid, collate
        self.valid_count, self.valid_batch = valid_count, valid_batch

    def train_dataloader(self):
        d = self.data_cfg
        return torch.utils.data.DataLoader(self.train, d.batch_size, shuffle=True, drop_last=True,
                                           generator=torch.Generator().manual_seed(d.seed), collate_fn=self.collate,
                                           num_workers=d.num_workers)

    def val_dataloader(self):
        if self.valid is None:
            return []
        subset = torch.utils.data.Subset(self.valid, list(range(min(self.valid_count, len(self.valid)))))
        return torch.utils.data.DataLoader(subset, self.valid_batch, collate_fn=self.collate)


class SupervisedSteps:
    """Mixin for one-optimizer tasks: ``_step(batch, "train" | "val")`` returns the loss; AdamW on ``self.model``
    with the config's schedule."""

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def configure_optimizers(self):
        return build_optimizer(self.model.parameters(), self.cfg.optim)


class TimedTask:
    """Mixin: the training-time budget (``trained_seconds``) kept in checkpoints, as StepTimeLimit needs."""

    trained_seconds = 0.0

    def on_save_checkpoint(self, checkpoint):
        checkpoint["trained_seconds"] = self.trained_seconds

    def on_load_checkpoint(self, checkpoint):
        self.trained_seconds = checkpoint.get("trained_seconds", 0.0)
