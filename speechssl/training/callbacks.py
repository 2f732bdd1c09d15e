"""Lightning plumbing: atomic checkpoint writes, audio throughput, a training-time budget."""

import logging
import math
import signal
import time

import lightning as L
from lightning.pytorch.plugins.io import TorchCheckpointIO

from ..constants import SAMPLE_RATE
from ..utils.atomic import atomic_path

log = logging.getLogger(__name__)


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
        if not (isinstance(batch, dict) and "lengths" in batch):
            return  # no audio lengths in this kind of batch (cached hidden states): nothing to count
        self._seconds += float(batch["lengths"].sum()) / SAMPLE_RATE * trainer.world_size
        if trainer.global_step % trainer.log_every_n_steps == 0 and self._t is not None:
            dt = time.perf_counter() - self._t
            if dt > 0:
                module.log("train/audio_s_per_s", self._seconds / dt, rank_zero_only=True)
            self._t, self._seconds = time.perf_counter(), 0.0


class StepTimeLimit(L.Callback):
    """A guard, not a budget: stops after ``minutes`` of training wall time (Lightning's max_time counts
    setup too), and says so loudly, because a run it cuts depends on the machine's speed and load and is no
    longer the reproducible step budget ``max_steps`` asked for. ``cut_at_step`` records where it cut."""

    def __init__(self, minutes: float):
        self.limit = minutes * 60
        self._start = None
        self.cut_at_step = None

    def on_train_start(self, trainer, module):
        self._start = time.perf_counter() - module.trained_seconds

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        module.trained_seconds = time.perf_counter() - self._start
        if module.trained_seconds >= self.limit and not trainer.should_stop:
            trainer.should_stop = True
            self.cut_at_step = trainer.global_step
            if trainer.max_steps and trainer.global_step < trainer.max_steps:
                log.warning(
                    "WALL-CLOCK GUARD: training stopped after %.1f min at step %d of max_steps %d; "
                    "this run is cut short by the machine's speed, not by its step budget "
                    "(raise trainer.max_time_minutes to reproduce the budget)",
                    self.limit / 60,
                    trainer.global_step,
                    trainer.max_steps,
                )


class StopOnSignal(L.Callback):
    """SIGTERM (``kill``, ``timeout``, a scheduler's time limit) and, outside SLURM, SIGUSR1 stop training at the
    end of the current batch; :func:`~speechssl.training.fit.fit_and_export` then checkpoints and raises
    :class:`~speechssl.errors.Interrupted`, so the run exits non-zero and a rerun resumes. (Lightning's own
    SIGTERM handling ends with ``SystemExit()``: status 0, no final checkpoint, as if the run had finished.)
    Under SLURM, the requeue signal stays Lightning's (checkpoint and requeue)."""

    def __init__(self, slurm: bool = False):
        self.signals = [signal.SIGTERM] + ([] if slurm else [signal.SIGUSR1])
        self.received = None
        self._previous = {}
        self._trainer = None

    def _handle(self, signum, frame) -> None:
        self.received = signum
        if self._trainer is not None:
            self._trainer.should_stop = True
        log.warning("received %s: stopping after this batch, then checkpointing", signal.Signals(signum).name)

    def on_train_start(self, trainer, module):  # after Lightning has installed its handlers
        self._trainer = trainer
        for sig in self.signals:
            self._previous[sig] = signal.signal(sig, self._handle)

    def on_train_end(self, trainer, module):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}


class StopOnNonFinite(L.Callback):
    """A non-finite training loss ends the run at once with one line naming the step (nothing is exported:
    the weights are already poisoned). The likely causes are named: a learning rate too high for the batch,
    fp16 overflow, or an input that cannot be fitted (a CTC target longer than its frames gives inf)."""

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if loss is None or not hasattr(loss, "detach"):
            return
        value = float(loss.detach())
        if not math.isfinite(value):
            from ..errors import InputError

            lr = ", ".join(f"{g['lr']:.3g}" for g in trainer.optimizers[0].param_groups) if trainer.optimizers else "?"
            raise InputError(
                f"{trainer.default_root_dir}: training loss is {value} at step {trainer.global_step} "
                f"(learning rate now {lr}): likely a learning rate too high for this batch, fp16 "
                f"overflow (try precision=bf16-mixed or 32-true), or a target the input cannot fit; "
                f"nothing was exported"
            )


class StepProgressBar(L.pytorch.callbacks.ProgressBar):
    """One bar for the whole run: optimizer steps out of ``max_steps`` (not batches of an epoch), with the total
    ETA and the task's progress-bar metrics (loss, accuracy); resumed runs start at their step."""

    def __init__(self):
        super().__init__()
        self._enabled, self._bar, self._last = True, None, -1

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def on_train_start(self, trainer, pl_module) -> None:
        if not (self._enabled and trainer.is_global_zero):
            return
        from tqdm import tqdm

        self._bar = tqdm(
            total=trainer.max_steps,
            initial=trainer.global_step,
            desc="steps",
            unit="step",
            dynamic_ncols=True,
            smoothing=0.05,
        )
        self._last = trainer.global_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self._bar is None or trainer.global_step == self._last:
            return
        self._bar.update(trainer.global_step - self._last)
        self._last = trainer.global_step
        shown = {}
        for k, v in self.get_metrics(trainer, pl_module).items():
            if k != "v_num":
                try:
                    shown[k] = f"{float(v):.3g}"
                except (TypeError, ValueError):
                    shown[k] = str(v)
        self._bar.set_postfix(shown, refresh=False)

    def on_train_end(self, trainer, pl_module) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
