"""Training machinery shared by every task: config sections, optimiser and schedule, callbacks, the
LightningModule base, and the one fit-and-export path."""

from .callbacks import AtomicCheckpointIO, StepTimeLimit, Throughput
from .config import OptimConfig, TrainerConfig
from .data import SplitsDataModule
from .export import load_export, save_export
from .fit import as_config, build_trainer, fit_and_export, last_checkpoint, parameter_count, read_metrics
from .module import SupervisedSteps, TrainingTask
from .optim import build_optimizer, no_decay_groups, warmup_polynomial

__all__ = [
    "AtomicCheckpointIO",
    "OptimConfig",
    "SplitsDataModule",
    "StepTimeLimit",
    "SupervisedSteps",
    "Throughput",
    "TrainerConfig",
    "TrainingTask",
    "as_config",
    "build_optimizer",
    "build_trainer",
    "fit_and_export",
    "last_checkpoint",
    "load_export",
    "no_decay_groups",
    "parameter_count",
    "read_metrics",
    "save_export",
    "warmup_polynomial",
]
