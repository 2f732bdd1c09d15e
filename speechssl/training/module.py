"""The base of every LightningModule here, and the one-optimizer step mixin."""

import lightning as L
import torch

from .optim import build_optimizer


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


class SupervisedSteps:
    """Mixin for one-optimizer tasks: ``_step(batch, "train" | "val")`` returns the loss; AdamW on ``self.model``
    with the config's schedule."""

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def configure_optimizers(self):
        return build_optimizer(self.model.parameters(), self.cfg.optim)
