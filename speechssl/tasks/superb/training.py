"""SUPERB heads on the shared Lightning path: the cached hidden states as a data module, the head and its
featurizer as a :class:`~speechssl.training.TrainingTask`; devices, precision and strategy come from the
config's ``trainer`` section like every other training run."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import lightning as L
import torch

from ...training import OptimConfig, TrainingTask, build_optimizer
from .base import Split, SuperbTask


class ShuffledBatches(torch.utils.data.Sampler):
    """Full batches of a fresh permutation each epoch (the last partial batch is dropped). The permutation of
    epoch ``e`` comes from ``seed`` and ``e`` alone and each batch carries ``(epoch, position)`` for its crops, so
    a resumed run skips the batches its epoch already consumed and sees what a straight run would have seen."""

    def __init__(self, n: int, batch_size: int, seed: int):
        self.n, self.batch_size, self.seed = n, min(batch_size, n), seed
        self.epoch, self._skip = 0, 0

    @property
    def sampler(self) -> ShuffledBatches:
        """Itself: Lightning advances epochs through ``loader.batch_sampler.sampler.set_epoch``."""
        return self

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self._skip = 0
        self.epoch = epoch

    def resume(self, epoch: int, consumed: int) -> None:
        self.epoch, self._skip = epoch, consumed

    def __len__(self) -> int:
        return self.n // self.batch_size

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(self.n, generator=generator).tolist()
        skip, self._skip = self._skip, 0
        for i in range(skip, len(self)):
            yield [(self.epoch, i, j) for j in order[i * self.batch_size : (i + 1) * self.batch_size]]


class _Keys(torch.utils.data.Dataset):
    """Hands the sampler's ``(epoch, position, index)`` keys to the collate function unchanged."""

    def __getitem__(self, key):
        return key

    def __len__(self) -> int:  # pragma: no cover - batches come from the batch sampler
        return 0


class StatesDataModule(L.LightningDataModule):
    """Training batches ``(states [L+1, B, T, D], lengths [B], targets)``; dev batches ``(utterance ids,
    states, lengths)`` in order, scored as a whole by the task. Its state (epoch, batches consumed) is in every
    checkpoint."""

    def __init__(
        self, train: Split, dev: Optional[Split], batch_size: int, crop: Optional[int], seed: int, eval_batch: int = 64
    ):
        super().__init__()
        self.train, self.dev, self.batch_size, self.crop, self.eval_batch = train, dev, batch_size, crop, eval_batch
        self.seed = seed
        self.consumed = 0  # batches of the current epoch handed to training (counted by the task)
        self._resumed_consumed: Optional[int] = None
        self._pending: Optional[dict] = None

    def _collate_train(self, keys: List[Tuple[int, int, int]]):
        epoch, position = keys[0][0], keys[0][1]
        crops = torch.Generator().manual_seed((self.seed * 1_000_003 + epoch) * 100_003 + position)
        idx = [k[2] for k in keys]
        x, lengths = self.train.batch(idx, self.crop, crops)
        return x, lengths, [self.train.targets[i] for i in idx]

    def train_dataloader(self):
        sampler = ShuffledBatches(len(self.train), self.batch_size, self.seed)
        if self._pending:
            sampler.resume(int(self._pending["epoch"]), int(self._pending["consumed"]))
            self._pending = None
        return torch.utils.data.DataLoader(_Keys(), collate_fn=self._collate_train, batch_sampler=sampler)

    def val_dataloader(self):
        if self.dev is None:
            return []
        starts = list(range(0, len(self.dev), self.eval_batch))
        return torch.utils.data.DataLoader(starts, batch_size=None, collate_fn=self._collate_dev)

    def _collate_dev(self, start: int):
        ids = self.dev.utts[start : start + self.eval_batch]
        return (ids, *self.dev.batch(range(start, min(start + self.eval_batch, len(self.dev)))))

    def state_dict(self):
        return {"epoch": self.trainer.current_epoch if self.trainer else 0, "consumed": self.consumed}

    def load_state_dict(self, state):
        if "consumed" in state:  # checkpoints of older versions held a generator state: start the epoch again
            self._pending, self._resumed_consumed = dict(state), int(state["consumed"])


def _to_cpu(x: Any) -> Any:
    if torch.is_tensor(x):
        return x.detach().float().cpu() if x.is_floating_point() else x.detach().cpu()
    if isinstance(x, (list, tuple)):
        return type(x)(_to_cpu(v) for v in x)
    return x


class SuperbHeadTask(TrainingTask):
    """Trains ``model`` (featurizer + head) with ``task``'s loss; scores the dev split with ``task``'s metric
    every validation (logged as ``val/score``) and keeps the weights of the best dev step so far (``best_state``,
    strictly better replaces). The loss history, the dev curve and the kept weights are in every checkpoint."""

    def __init__(
        self,
        model: torch.nn.Module,
        task: SuperbTask,
        dev: Optional[Split],
        optim: OptimConfig,
        val_every: Optional[int] = None,
    ):
        super().__init__()
        self.model, self.task, self.dev, self.optim, self.val_every = model, task, dev, optim, val_every
        self.losses: List[float] = []
        self.curve: List[dict] = []
        self.best_state: Optional[Dict[str, torch.Tensor]] = None
        self._outputs: List[Tuple[List[str], Any]] = []

    def training_step(self, batch, batch_idx):
        x, lengths, targets = batch
        targets = [t.to(self.device) if torch.is_tensor(t) else t for t in targets]
        loss = self.task.loss(self.model(x, lengths), targets, self.model.head)
        self.losses.append(float(loss.detach()))
        self.count_batch()
        self.log("loss", loss.detach(), prog_bar=True, logger=False)
        self.log("train/loss", loss.detach())
        return loss

    def on_train_start(self):
        # A periodic checkpoint is written before the validation of its step: a run resumed from it scores
        # that step now, so the curve (and the kept weights) are what an uninterrupted run has.
        step = self.global_step
        if (
            self.dev is not None
            and self.val_every
            and step
            and step % self.val_every == 0
            and (not self.curve or self.curve[-1]["step"] < step)
        ):
            was_training = self.model.training
            self.model.eval()
            with torch.no_grad():
                self._outputs = [
                    (ids, _to_cpu(self.model(x.to(self.device), lengths.to(self.device))))
                    for ids, x, lengths in self.trainer.datamodule.val_dataloader()
                ]
            self._record(self.task.score(self._outputs, self.dev, write=False).value)
            self.model.train(was_training)

    def on_validation_epoch_start(self):
        self._outputs = []

    def validation_step(self, batch, batch_idx):
        ids, x, lengths = batch
        self._outputs.append((ids, _to_cpu(self.model(x, lengths))))

    def on_validation_epoch_end(self):
        value = self.task.score(self._outputs, self.dev, write=False).value
        self.log("val/score", value)
        self._record(value)

    def _record(self, value: float) -> None:
        improved = not self.curve or (value > self.best_dev if self.task.higher_is_better else value < self.best_dev)
        self.curve.append(
            {"step": self.global_step, "loss": round(self.losses[-1], 4) if self.losses else None, "dev": value}
        )  # exact: the step is chosen on it (rounded in result.json)
        if improved:
            self.best_state = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}

    @property
    def best_dev(self) -> float:
        values = [c["dev"] for c in self.curve]
        return max(values) if self.task.higher_is_better else min(values)

    def on_save_checkpoint(self, checkpoint):
        super().on_save_checkpoint(checkpoint)
        # the dev curve picks the kept step, its weights are kept here, and the loss history goes into result.json
        checkpoint["superb_history"] = {
            "losses": list(self.losses),
            "curve": list(self.curve),
            "best_state": self.best_state,
        }

    def on_load_checkpoint(self, checkpoint):
        super().on_load_checkpoint(checkpoint)
        history = checkpoint.get("superb_history", {})
        self.losses, self.curve = list(history.get("losses", [])), list(history.get("curve", []))
        self.best_state = history.get("best_state")

    def configure_optimizers(self):
        return build_optimizer(self.model.parameters(), self.optim)
