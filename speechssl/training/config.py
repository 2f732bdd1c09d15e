"""The config sections every training task shares: the optimiser and schedule, and the trainer (devices,
nodes, strategy, precision, budgets, checkpoints)."""

from dataclasses import dataclass, field
from typing import Any, List, Optional


@dataclass
class OptimConfig:
    lr: float = 5e-4
    betas: List[float] = field(default_factory=lambda: [0.9, 0.98])
    eps: float = 1e-6
    weight_decay: float = 0.01
    warmup_steps: int = 32000
    total_steps: int = 400000  # length of the decay; training may stop earlier (trainer.max_steps)
    power: float = 1.0  # polynomial decay power (1 = linear, fairseq's polynomial_decay)
    end_lr: float = 0.0
    grad_clip: float = 10.0  # 0 disables
    accumulate: int = 1  # gradient accumulation (micro-batches per update)
    # the paper's audio seconds per update: when set, accumulate is derived from it and the run's world size
    # (devices x nodes x data.batch_seconds x accumulate = this), so the schedule stays the paper's on any
    # device count; a world size that cannot reach it exactly is refused naming the settings that do
    global_batch_seconds: Optional[float] = None


@dataclass
class TrainerConfig:
    out_dir: str = "exp/pretrain"
    max_steps: int = 400000
    max_time_minutes: Optional[float] = None  # stop (and export) after this much wall time
    accelerator: str = "auto"  # auto | cpu | gpu
    devices: Any = "auto"  # int, list or "auto"
    num_nodes: int = 1
    strategy: str = "auto"  # auto | ddp | ddp_spawn | fsdp | deepspeed...
    precision: str = "32-true"  # 32-true | bf16-mixed | 16-mixed | auto (probed once: utils/precision.py)
    log_every_steps: int = 10
    val_every_steps: Optional[int] = 1000
    checkpoint_every_steps: int = 1000
    keep_checkpoints: int = 2
    progress_bar: bool = True
    seed: int = 0
    threads: Optional[int] = None  # torch intra-op threads per process (CPU)
    # SLURM: at requeue_signal (sbatch --signal=SIGUSR1@90) save a checkpoint and requeue the job, which
    # resumes from it. Lightning detects SLURM from its environment, except in interactive allocations
    # (job name bash or interactive), where the run behaves as on a workstation.
    auto_requeue: bool = True
    requeue_signal: str = "SIGUSR1"
