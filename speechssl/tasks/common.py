"""Training machinery shared by every Lightning task: config sections, optimiser and schedule,
the trainer (strategy / devices / nodes / precision from config), atomic checkpoints, logging
callbacks and the data module for audio + frame labels."""
from __future__ import annotations

import csv
import difflib
import logging
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

import lightning as L
import torch
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.plugins.io import TorchCheckpointIO
from omegaconf import OmegaConf

from ..config import MISSING, to_yaml
from ..constants import SAMPLE_RATE
from ..errors import InputError
from ..models import available_models, load_model, model_config, save_model
from ..models.encoder import EncoderConfig
from ..nn.masking import seeded_span_masks
from ..nn.utils import GradMultiply, lengths_to_mask
from ..utils.atomic import atomic_path, write_json

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------ config
@dataclass
class OptimConfig:
    lr: float = 5e-4
    betas: List[float] = field(default_factory=lambda: [0.9, 0.98])
    eps: float = 1e-6
    weight_decay: float = 0.01
    warmup_steps: int = 32000
    total_steps: int = 400000      # length of the decay; training may stop earlier (trainer.max_steps)
    power: float = 1.0             # polynomial decay power (1 = linear, fairseq's polynomial_decay)
    end_lr: float = 0.0
    grad_clip: float = 10.0        # 0 disables
    accumulate: int = 1            # gradient accumulation (micro-batches per update)


@dataclass
class TrainerConfig:
    out_dir: str = "exp/pretrain"
    max_steps: int = 400000
    max_time_minutes: Optional[float] = None  # stop (and export) after this much wall time
    accelerator: str = "auto"      # auto | cpu | gpu
    devices: Any = "auto"          # int, list or "auto"
    num_nodes: int = 1
    strategy: str = "auto"         # auto | ddp | ddp_spawn | fsdp | deepspeed...
    precision: str = "32-true"     # 32-true | bf16-mixed | 16-mixed
    log_every_steps: int = 10
    val_every_steps: Optional[int] = 1000
    checkpoint_every_steps: int = 1000
    keep_checkpoints: int = 2
    progress_bar: bool = True
    seed: int = 0
    threads: Optional[int] = None  # torch intra-op threads per process (CPU)


@dataclass
class AudioDataConfig:
    train: str = "data/train"
    valid: Optional[str] = "data/dev"
    batch_seconds: float = 87.5    # padded audio per device and micro-batch (fairseq: 1.4M samples)
    max_utts: Optional[int] = None
    crop_seconds: Optional[float] = 15.625  # fairseq max_sample_size 250k samples
    min_seconds: float = 0.0
    normalize: bool = False        # per-utterance zero mean / unit variance waveform
    num_workers: int = 1
    seed: int = 0


@dataclass
class PretrainModelConfig:
    """The model part of a pretraining config: a registered name, field overrides, optional warm start."""

    model: str = MISSING                                           # a registered config name
    model_overrides: Dict[str, Any] = field(default_factory=dict)  # EncoderConfig fields
    init_from: Optional[str] = None                                # an exported folder to start from (weights only)

    def encoder_config(self):
        if self.model not in available_models():
            close = difflib.get_close_matches(self.model, available_models(), 1)
            raise InputError(f"model {self.model!r} is not registered" + (f" (did you mean {close[0]}?)" if close else
                             f"; available: {available_models()}"))
        return EncoderConfig.from_dict({**model_config(self.model).to_dict(), **self.model_overrides})


def frontend_and_masks(encoder, batch, obj, training: bool):
    """The start of every masked-prediction step: frontend (gradient scaled by ``obj.feature_grad_mult``
    in training), valid frames, and per-utterance seeded span masks. Returns ``(feats, frames, valid, mask)``."""
    feats, frames = encoder.frontend(batch["wavs"], batch["lengths"])
    if obj.feature_grad_mult != 1.0 and training:
        feats = GradMultiply.apply(feats, obj.feature_grad_mult)
    valid = lengths_to_mask(frames, feats.shape[1])
    mask = seeded_span_masks(frames, feats.shape[1], batch["seeds"], obj.mask_prob, obj.mask_length,
                             obj.min_masks, obj.mask_mode) & valid
    return feats, frames, valid, mask


def init_weights_from(encoder: torch.nn.Module, path: Optional[str]) -> None:
    """Warm start: copy the matching weights of the exported model at ``path`` (no-op for None)."""
    if not path:
        return
    missing, unexpected = encoder.load_state_dict(load_model(path).state_dict(), strict=False)
    log.info("initialised from %s (not there: %s; ignored: %s)", path, missing, unexpected)


# ------------------------------------------------------------------------------------ schedule
def warmup_polynomial(step: int, warmup: int, total: int, power: float, end_ratio: float) -> float:
    """LR multiplier: linear warmup to 1 over ``warmup`` steps, then ``(1 - progress)^power`` decay
    down to ``end_ratio`` at ``total``."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    if total <= warmup:
        return 1.0
    progress = min(1.0, (step - warmup) / (total - warmup))
    return end_ratio + (1 - end_ratio) * (1 - progress) ** power


def build_optimizer(params, cfg: OptimConfig, scheduler_fn=None):
    """AdamW (decoupled weight decay, as fairseq's adam) with a per-step schedule."""
    opt = torch.optim.AdamW(params, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, weight_decay=cfg.weight_decay)
    fn = scheduler_fn or (lambda s: warmup_polynomial(s, cfg.warmup_steps, cfg.total_steps, cfg.power,
                                                      cfg.end_lr / cfg.lr if cfg.lr else 0.0))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, fn)
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step", "frequency": 1}}


def no_decay_groups(module: torch.nn.Module, weight_decay: float) -> List[Dict]:
    """Biases, norms and embeddings-like vectors take no weight decay."""
    decay, plain = [], []
    for name, p in module.named_parameters():
        if not p.requires_grad:
            continue
        (plain if p.ndim < 2 or "norm" in name else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}]


# ------------------------------------------------------------------------------------ checkpoints
class AtomicCheckpointIO(TorchCheckpointIO):
    """Write to ``path.tmp`` then rename: a kill during a save never leaves a broken checkpoint."""

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        with atomic_path(path) as tmp:
            super().save_checkpoint(checkpoint, tmp, storage_options)


class Throughput(L.Callback):
    """Logs audio seconds processed per wall second (all processes together)."""

    def __init__(self):
        self._t = None
        self._seconds = 0.0

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if self._t is None:
            self._t = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self._seconds += float(batch["lengths"].sum()) / SAMPLE_RATE * trainer.world_size
        if trainer.global_step % trainer.log_every_n_steps == 0 and self._t is not None:
            dt = time.perf_counter() - self._t
            if dt > 0:
                module.log("train/audio_s_per_s", self._seconds / dt, rank_zero_only=True)
            self._t, self._seconds = time.perf_counter(), 0.0


class StepTimeLimit(L.Callback):
    """Stops after ``minutes`` of training wall time (Lightning's max_time counts setup too)."""

    def __init__(self, minutes: float):
        self.limit = minutes * 60
        self._start = None

    def on_train_start(self, trainer, module):
        self._start = time.perf_counter() - module.trained_seconds

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        module.trained_seconds = time.perf_counter() - self._start
        if module.trained_seconds >= self.limit:
            trainer.should_stop = True


class TrainingTask(L.LightningModule):
    """Bookkeeping every training task shares: the training-time budget (``trained_seconds``, saved in
    checkpoints) and the data module's position in the epoch (``consumed`` batches), restored on resume."""

    trained_seconds = 0.0
    objective_name = ""

    def count_batch(self) -> None:
        dm = self.trainer.datamodule
        if dm is not None:
            dm.consumed += 1

    def on_train_epoch_start(self):
        dm = self.trainer.datamodule
        if dm is not None:
            dm.consumed = getattr(dm, "_resumed_consumed", None) or 0
            dm._resumed_consumed = None

    def reduce_sum(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` summed over all processes (detached): global counts for loss normalisation and logs."""
        if self.trainer.world_size > 1:
            return self.trainer.strategy.reduce(x.detach().clone(), reduce_op="sum")
        return x.detach()

    def on_save_checkpoint(self, checkpoint):
        checkpoint["trained_seconds"] = self.trained_seconds

    def on_load_checkpoint(self, checkpoint):
        self.trained_seconds = checkpoint.get("trained_seconds", 0.0)


def as_config(schema, cfg):
    """``cfg`` (a dict from hyperparameters, or already a ``schema`` instance) as a ``schema`` dataclass."""
    if isinstance(cfg, schema):
        return cfg
    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), cfg))


def build_trainer(cfg: TrainerConfig, optim: OptimConfig, extra_callbacks=()) -> L.Trainer:

    out = Path(cfg.out_dir)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    callbacks = [ModelCheckpoint(dirpath=out / "checkpoints", filename="step{step:07d}", auto_insert_metric_name=False,
                                 every_n_train_steps=cfg.checkpoint_every_steps, save_last=True,
                                 save_top_k=cfg.keep_checkpoints, monitor="step", mode="max"),
                 LearningRateMonitor(logging_interval="step"), Throughput(), *extra_callbacks]
    if cfg.max_time_minutes:
        callbacks.append(StepTimeLimit(cfg.max_time_minutes))
    # Each (re)start logs to a new logs/version_N (Lightning would overwrite a resumed run's CSV).
    loggers = [CSVLogger(out, name="logs", flush_logs_every_n_steps=cfg.log_every_steps * 10),
               TensorBoardLogger(out, name="tensorboard", version="")]
    # our batch sampler restores its own position (AudioDataModule.state_dict), which Lightning cannot see
    warnings.filterwarnings("ignore", message=".*your dataloader is not resumable.*")
    return L.Trainer(default_root_dir=out, max_steps=cfg.max_steps, max_epochs=-1, accelerator=cfg.accelerator,
                     devices=cfg.devices, num_nodes=cfg.num_nodes, strategy=cfg.strategy, precision=cfg.precision,
                     log_every_n_steps=cfg.log_every_steps, val_check_interval=cfg.val_every_steps,
                     check_val_every_n_epoch=None if cfg.val_every_steps else 1,
                     accumulate_grad_batches=optim.accumulate, gradient_clip_val=optim.grad_clip or None,
                     callbacks=callbacks, logger=loggers, plugins=[AtomicCheckpointIO()],
                     enable_progress_bar=cfg.progress_bar, use_distributed_sampler=False,
                     num_sanity_val_steps=0, enable_model_summary=False)


def run_pretraining(cfg, task: "TrainingTask", dm, export, callbacks=()) -> Dict[str, Any]:
    """Fit ``task`` (resuming from ``out_dir/checkpoints/last.ckpt``), then export on rank 0.

    ``export(trainer, summary)`` writes ``out_dir/final`` and returns its path. Before the first
    step the untrained encoder goes to ``out_dir/init``: the control every comparison needs.
    """

    out = Path(cfg.trainer.out_dir)
    (out / "config.yaml").write_text(to_yaml(cfg))
    trainer = build_trainer(cfg.trainer, cfg.optim, callbacks)
    ckpt = last_checkpoint(out)
    if not ckpt and trainer.is_global_zero:
        save_model(task.encoder, out / "init", metadata={"objective": task.objective_name, "steps": 0})
    if ckpt:
        log.info("resuming from %s", ckpt)
    t0 = time.time()
    trainer.fit(task, datamodule=dm, ckpt_path=ckpt)
    # Stopped by max_steps or the time budget: checkpoint the final state too, so a rerun with a
    # larger budget continues from the exported model rather than from the last periodic save.
    trainer.save_checkpoint(out / "checkpoints" / "last.ckpt")
    summary = {"steps": trainer.global_step, "epochs": trainer.current_epoch,
               "trained_seconds": round(task.trained_seconds, 1), "wall_seconds_this_run": round(time.time() - t0, 1),
               "metrics": {k: round(float(v), 5) for k, v in trainer.callback_metrics.items()}}
    if trainer.is_global_zero:
        # the exported model normalises its input itself when training did, so every user gets it right
        task.encoder.config.normalize_waveform = cfg.data.normalize
        summary["export"] = str(export(trainer, summary))
        write_json(out / "summary.json", summary)
    return summary


def parameter_count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def last_checkpoint(out_dir) -> Optional[str]:
    p = Path(out_dir) / "checkpoints" / "last.ckpt"
    return str(p) if p.exists() else None


def read_metrics(out_dir) -> List[Dict[str, float]]:
    """All logged rows of a run, across restarts (later restarts win for a repeated step)."""

    rows = []
    versions = sorted(Path(out_dir, "logs").glob("version_*/metrics.csv"), key=lambda p: int(p.parent.name[8:]))
    for f in versions:
        for r in csv.DictReader(open(f)):
            rows.append({k: float(v) for k, v in r.items() if v not in ("", None)})
    return rows
