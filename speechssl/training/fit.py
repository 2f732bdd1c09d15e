"""The one training path: a Lightning trainer built from config, fit with resume, then an export.

Every task that trains (pretraining, distillation, CTC fine-tuning, the TTS models, ASD) goes through
:func:`fit_and_export`, so devices, nodes, strategy, precision, budgets, checkpoints and logs behave
the same everywhere and come from the config's ``trainer`` section.
"""

from __future__ import annotations

import csv
import dataclasses
import importlib.util
import logging
import signal
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import lightning as L
import torch
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from omegaconf import OmegaConf

from ..config import to_yaml
from ..errors import ConfigError, Interrupted
from ..utils.artifacts import RunSummary
from ..utils.atomic import write_text
from ..utils.precision import resolve_precision
from ..utils.readers import load_checkpoint
from .callbacks import AtomicCheckpointIO, StepProgressBar, StepTimeLimit, StopOnNonFinite, StopOnSignal, Throughput
from .config import OptimConfig, TrainerConfig

Export = Callable[[L.Trainer, Dict[str, Any]], Path]


def as_config(schema, cfg):
    """``cfg`` (a dict from hyperparameters, or already a ``schema`` instance) as a ``schema`` dataclass."""
    if isinstance(cfg, schema):
        return cfg
    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), cfg))


log = logging.getLogger(__name__)


def build_trainer(cfg: TrainerConfig, optim: OptimConfig, extra_callbacks: Sequence[L.Callback] = ()) -> L.Trainer:
    """A Trainer from config: periodic + last checkpoints (written atomically), LR and throughput logs, CSV and
    TensorBoard loggers, the wall-clock guard when ``max_time_minutes`` is set."""
    out = Path(cfg.out_dir)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    callbacks = [
        ModelCheckpoint(
            dirpath=out / "checkpoints",
            filename="step{step:07d}",
            auto_insert_metric_name=False,
            every_n_train_steps=cfg.checkpoint_every_steps,
            save_last=True,
            save_top_k=cfg.keep_checkpoints,
            monitor="step",
            mode="max",
        ),
        LearningRateMonitor(logging_interval="step"),
        Throughput(),
        StopOnSignal(_under_slurm()),
        StopOnNonFinite(),
        *extra_callbacks,
    ]
    if cfg.max_time_minutes:
        callbacks.append(StepTimeLimit(cfg.max_time_minutes))
    if cfg.progress_bar:
        callbacks.append(StepProgressBar())
    quiet_lightning()
    strategy = cfg.strategy
    if str(strategy).startswith("ddp") and _one_process(cfg):  # DDP of one process: no wrapper, no warnings
        strategy = "auto"
    precision = resolve_precision(cfg.precision, cfg.accelerator)
    log.info("precision %s%s", precision, "" if precision == cfg.precision else f" (trainer.precision={cfg.precision})")
    # Each (re)start logs to a new logs/version_N (Lightning would overwrite a resumed run's CSV).
    loggers = [CSVLogger(out, name="logs", flush_logs_every_n_steps=cfg.log_every_steps * 10)]
    if importlib.util.find_spec("tensorboard") is not None:  # an extra (demo, train): the CSV log is the record
        loggers.append(TensorBoardLogger(out, name="tensorboard", version=""))
    # our batch sampler restores its own position (AudioDataModule.state_dict), which Lightning cannot see
    warnings.filterwarnings("ignore", message=".*your dataloader is not resumable.*")
    # manual-optimization tasks (the GAN) are checkpointed after their steps, which is what we want
    warnings.filterwarnings("ignore", message=".*ModelCheckpoint with manual optimization.*")
    return L.Trainer(
        default_root_dir=out,
        max_steps=cfg.max_steps,
        max_epochs=-1,
        accelerator=cfg.accelerator,
        devices=cfg.devices,
        num_nodes=cfg.num_nodes,
        strategy=strategy,
        precision=precision,
        log_every_n_steps=cfg.log_every_steps,
        val_check_interval=cfg.val_every_steps,
        check_val_every_n_epoch=None if cfg.val_every_steps else 1,
        accumulate_grad_batches=optim.accumulate,
        gradient_clip_val=optim.grad_clip or None,
        callbacks=callbacks,
        logger=loggers,
        plugins=[AtomicCheckpointIO(), *_cluster_plugins(cfg)],
        enable_progress_bar=cfg.progress_bar,
        use_distributed_sampler=False,
        num_sanity_val_steps=0,
        enable_model_summary=False,
    )


def quiet_lightning() -> None:
    """Lightning's start-up chatter (available accelerators, product tips, "`Trainer.fit` stopped") goes to DEBUG
    level; its warnings stay. Deprecation notices from inside Lightning are not the user's to act on."""
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")


def _one_process(cfg: TrainerConfig) -> bool:
    """Whether the run is a single process (one device on one node), so a DDP strategy would wrap nothing."""
    if cfg.num_nodes != 1:
        return False
    devices = cfg.devices
    if isinstance(devices, (list, tuple)):
        return len(devices) == 1
    if isinstance(devices, int) or str(devices).isdigit():
        return int(devices) == 1
    if cfg.accelerator == "cpu" or not torch.cuda.is_available():
        return True  # "auto" on CPU is one process
    return torch.cuda.device_count() <= 1


def accumulation_for(global_seconds: float, batch_seconds: float, world_size: int) -> int:
    """Micro-batches per update that make ``world_size`` devices of ``batch_seconds`` reach ``global_seconds``;
    an inexact ratio is a :class:`ConfigError` that names the per-device batch which would be exact."""
    ratio = global_seconds / (batch_seconds * world_size)
    k = max(1, round(ratio))
    if abs(k - ratio) > 1e-6 * ratio:
        exact = global_seconds / (world_size * k)
        raise ConfigError(
            f"optim.global_batch_seconds={global_seconds:g} is not reachable with {world_size} "
            f"device(s) x data.batch_seconds={batch_seconds:g}: {ratio:.3f} micro-batches per update. "
            f"Keep the paper's batch with data.batch_seconds={exact:g} (accumulate {k}), or set "
            f"optim.global_batch_seconds=null to train with another batch (and schedule)."
        )
    return k


def keep_global_batch(trainer: L.Trainer, optim: OptimConfig, batch_seconds: Optional[float]) -> None:
    """Set the trainer's accumulation from ``optim.global_batch_seconds`` and its world size (said at INFO)."""
    target = getattr(optim, "global_batch_seconds", None)
    if not target or not batch_seconds:
        return
    if optim.accumulate != 1:
        raise ConfigError(
            f"optim.accumulate={optim.accumulate} and optim.global_batch_seconds={target:g} both set: "
            f"the second derives the first; drop one"
        )
    k = accumulation_for(target, batch_seconds, trainer.world_size)
    trainer.accumulate_grad_batches = k
    log.info(
        "global batch %.6g s per update = %d device(s) x %.6g s x accumulate %d (optim.global_batch_seconds)",
        target,
        trainer.world_size,
        batch_seconds,
        k,
    )


def _under_slurm() -> bool:
    from lightning.pytorch.plugins.environments import SLURMEnvironment

    return SLURMEnvironment.detect()


def _cluster_plugins(cfg: TrainerConfig) -> List[Any]:
    """SLURM's environment with our requeue settings when running under SLURM (not in an interactive shell)."""
    from lightning.pytorch.plugins.environments import SLURMEnvironment

    if not SLURMEnvironment.detect():
        return []
    try:
        sig = getattr(signal, cfg.requeue_signal)
    except AttributeError:
        raise ConfigError(
            f"trainer.requeue_signal={cfg.requeue_signal!r}: not a signal name (SIGUSR1, SIGUSR2, SIGTERM ...)"
        ) from None
    return [SLURMEnvironment(auto_requeue=cfg.auto_requeue, requeue_signal=sig)]


def fit_and_export(
    cfg,
    task: L.LightningModule,
    dm: L.LightningDataModule,
    export: Export,
    *,
    optim: Optional[OptimConfig] = None,
    steps_per_batch: int = 1,
    callbacks: Sequence[L.Callback] = (),
    init_export: Optional[Callable[[], Any]] = None,
    extra_summary: Optional[Dict[str, Any]] = None,
) -> Dict[str, Any]:
    """Fit ``task`` (resuming from ``out_dir/checkpoints/last.ckpt``), checkpoint the final state, export on rank 0.

    Args:
        cfg: the task's config; its ``trainer`` section drives the run and the whole of it is written to
            ``out_dir/config.yaml``.
        export: ``(trainer, summary) -> folder``, called on rank 0 after training (``summary`` may be added to).
        optim: the optimiser section (default ``cfg.optim``): accumulation and gradient clipping.
        steps_per_batch: optimizer steps Lightning counts per batch (2 for a GAN's two optimizers);
            ``trainer.max_steps`` and ``checkpoint_every_steps`` count batches.
        init_export: called on rank 0 before a fresh run's first step (the untrained control, ``OUT/init``).

    Returns the summary also written to ``out_dir/summary.json``: steps, epochs, trained seconds, wall seconds of
    this run, the last logged metrics and the export's path.
    """
    t = cfg.trainer
    out = Path(t.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = last_checkpoint(out)
    if ckpt:
        check_resume_compatible(task, ckpt)  # refused before config.yaml, which describes the run, is touched
    write_text(out / "config.yaml", to_yaml(cfg))
    counted = dataclasses.replace(
        t, max_steps=steps_per_batch * t.max_steps, checkpoint_every_steps=steps_per_batch * t.checkpoint_every_steps
    )
    trainer = build_trainer(counted, optim or cfg.optim, callbacks)
    keep_global_batch(trainer, optim or cfg.optim, getattr(getattr(cfg, "data", None), "batch_seconds", None))
    if init_export is not None and not ckpt and trainer.is_global_zero:
        init_export()
    if ckpt:
        log.info("resuming from %s", ckpt)
    t0 = time.time()
    trainer.fit(task, datamodule=dm, ckpt_path=ckpt)
    # Stopped by max_steps, the time budget or a signal: checkpoint the final state too, so a rerun with a larger
    # budget continues from the exported model rather than from the last periodic save.
    trainer.save_checkpoint(out / "checkpoints" / "last.ckpt", weights_only=False)
    stopper = next((c for c in trainer.callbacks if isinstance(c, StopOnSignal)), None)
    if stopper is not None and stopper.received is not None:
        name = signal.Signals(stopper.received).name
        raise Interrupted(
            f"{out}: stopped by {name} at step {trainer.global_step // steps_per_batch} of "
            f"{t.max_steps}; checkpoint {out / 'checkpoints' / 'last.ckpt'} written, no export. "
            f"Run the same command again to resume.",
            stopper.received,
        )
    summary = {
        "steps": trainer.global_step // steps_per_batch,
        "epochs": trainer.current_epoch,
        "trained_seconds": round(getattr(task, "trained_seconds", 0.0), 1),
        "wall_seconds_this_run": round(time.time() - t0, 1),
        "precision": str(trainer.precision),
        **(extra_summary or {}),
        "metrics": {k: round(float(v), 5) for k, v in trainer.callback_metrics.items()},
    }
    guard = next((c for c in trainer.callbacks if isinstance(c, StepTimeLimit)), None)
    if guard is not None and guard.cut_at_step is not None and summary["steps"] < t.max_steps:
        summary["cut_by_wall_clock_guard"] = {
            "at_step": summary["steps"],
            "max_steps": t.max_steps,
            "max_time_minutes": t.max_time_minutes,
        }
    gather_full_weights(trainer, task)  # every rank: a sharding strategy gathers the weights onto rank 0
    if trainer.is_global_zero:
        summary["export"] = str(export(trainer, summary))
        RunSummary.write(out / "summary.json", summary)
    return summary


SHARDING_STRATEGIES = ("FSDPStrategy", "DeepSpeedStrategy", "ModelParallelStrategy")


def gather_full_weights(trainer: L.Trainer, task: L.LightningModule) -> None:
    """Make ``task`` hold its full weights on rank 0 after training under a sharding strategy (FSDP):

    every rank joins ``strategy.lightning_module_state_dict()`` (a collective that assembles the full state
    dict on rank 0), then rank 0 rebuilds the task unsharded from its hyperparameters, loads that state,
    and adopts the rebuilt children, so the export reads whole tensors. Other strategies: nothing to do.
    """
    strategy = trainer.strategy
    if type(strategy).__name__ not in SHARDING_STRATEGIES:
        return
    state = strategy.lightning_module_state_dict()
    if not trainer.is_global_zero:
        return
    if not task.hparams:
        raise RuntimeError(
            f"{type(task).__name__} keeps no hyperparameters (save_hyperparameters), so it cannot be "
            f"rebuilt unsharded for export under {type(strategy).__name__}"
        )
    fresh = type(task)(**task.hparams)
    fresh.load_state_dict(state)
    for name, child in fresh.named_children():
        setattr(task, name, child)


def parameter_count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def last_checkpoint(out_dir) -> Optional[str]:
    """The newest intact checkpoint to resume from: ``checkpoints/last.ckpt`` or one a SLURM requeue signal wrote
    (``hpc_ckpt_N.ckpt``); when that file is truncated or unreadable, the newest intact periodic checkpoint
    (``checkpoints/step*.ckpt``), with a warning naming both. None when there is none."""
    out = Path(out_dir)
    found = [p for p in [out / "checkpoints" / "last.ckpt", *out.glob("hpc_ckpt_*.ckpt")] if p.is_file()]
    periodic = sorted((out / "checkpoints").glob("step*.ckpt"), key=lambda p: p.name, reverse=True)
    for newest in sorted(found, key=lambda p: p.stat().st_mtime_ns, reverse=True) + periodic:
        if _intact(newest):
            if found and newest not in found:
                log.warning(
                    "%s is truncated or unreadable; resuming from %s, the newest intact checkpoint",
                    ", ".join(str(p) for p in found),
                    newest,
                )
            return str(newest)
        log.warning("%s: truncated or unreadable checkpoint, skipped", newest)
    return None


def _intact(path: Path) -> bool:
    """Whether a checkpoint file is a whole zip archive (torch.save's format) whose entries all read back."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            return z.testzip() is None
    except (zipfile.BadZipFile, OSError, EOFError):
        return False


def check_resume_compatible(task: L.LightningModule, ckpt: str) -> None:
    """Refuse to resume ``task`` from ``ckpt`` when their weights differ in names or shapes (another architecture,
    label set or task), naming the first differences, before anything of the run folder is rewritten."""
    state = load_checkpoint(ckpt, weights_only=False, mmap=True).get("state_dict", {})
    ours = task.state_dict()
    missing = [k for k in ours if k not in state]
    unexpected = [k for k in state if k not in ours]
    shapes = [
        f"{k}: checkpoint {tuple(state[k].shape)}, this config {tuple(v.shape)}"
        for k, v in ours.items()
        if k in state and hasattr(state[k], "shape") and tuple(state[k].shape) != tuple(v.shape)
    ]
    if not (missing or unexpected or shapes):
        return
    parts = (
        shapes[:3]
        + [f"not in the checkpoint: {', '.join(missing[:3])}"] * bool(missing)
        + [f"only in the checkpoint: {', '.join(unexpected[:3])}"] * bool(unexpected)
    )
    raise ConfigError(
        f"{ckpt}: this run's config does not fit the checkpoint it would resume ("
        + "; ".join(parts)
        + "). Use the config the run started with (its config.yaml), or another "
        "trainer.out_dir for a new run."
    )


def read_metrics(out_dir) -> List[Dict[str, float]]:
    """All logged rows of a run, across restarts (later restarts win for a repeated step)."""
    rows = []
    versions = sorted(Path(out_dir, "logs").glob("version_*/metrics.csv"), key=lambda p: int(p.parent.name[8:]))
    for f in versions:
        with open(f, newline="") as fh:
            for r in csv.DictReader(fh):
                rows.append({k: float(v) for k, v in r.items() if v not in ("", None)})
    return rows
