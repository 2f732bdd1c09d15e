"""SUPERB heads on the shared Lightning path: the cached hidden states as a data module, the head and its
featurizer as a :class:`~speechssl.training.TrainingTask`; devices, precision and strategy come from the
config's ``trainer`` section like every other training run."""
from __future__ import annotations

from typing import Any, List, Optional, Tuple

import lightning as L
import torch

from ...training import OptimConfig, TrainingTask, build_optimizer
from .base import Split, SuperbTask


class ShuffledBatches(torch.utils.data.Sampler):
    """Full batches of a fresh permutation each pass (the last partial batch is dropped), from one seeded
    generator that the crops share: the order is reproducible and resumes with the generator's state."""

    def __init__(self, n: int, batch_size: int, generator: torch.Generator):
        self.n, self.batch_size, self.generator = n, min(batch_size, n), generator

    def __len__(self) -> int:
        return self.n // self.batch_size

    def __iter__(self):
        order = torch.randperm(self.n, generator=self.generator).tolist()
        for i in range(len(self)):
            yield order[i * self.batch_size:(i + 1) * self.batch_size]


class StatesDataModule(L.LightningDataModule):
    """Training batches ``(states [L+1, B, T, D], lengths [B], targets)``; dev batches ``(utterance ids,
    states, lengths)`` in order, scored as a whole by the task."""

    def __init__(self, train: Split, dev: Optional[Split], batch_size: int, crop: Optional[int], seed: int,
                 eval_batch: int = 64):
        super().__init__()
        self.train, self.dev, self.batch_size, self.crop, self.eval_batch = train, dev, batch_size, crop, eval_batch
        self.generator = torch.Generator().manual_seed(seed)

    def _collate_train(self, idx: List[int]):
        x, lengths = self.train.batch(idx, self.crop, self.generator)
        return x, lengths, [self.train.targets[i] for i in idx]

    def train_dataloader(self):
        return torch.utils.data.DataLoader(list(range(len(self.train))), collate_fn=self._collate_train,
                                           batch_sampler=ShuffledBatches(len(self.train), self.batch_size,
                                                                         self.generator))

    def val_dataloader(self):
        if self.dev is None:
            return []
        starts = list(range(0, len(self.dev), self.eval_batch))
        return torch.utils.data.DataLoader(starts, batch_size=None, collate_fn=self._collate_dev)

    def _collate_dev(self, start: int):
        ids = self.dev.utts[start:start + self.eval_batch]
        return (ids, *self.dev.batch(range(start, min(start + self.eval_batch, len(self.dev)))))

    def state_dict(self):
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state):
        self.generator.set_state(state["generator"])


def _to_cpu(x: Any) -> Any:
    if torch.is_tensor(x):
        return x.detach().float().cpu() if x.is_floating_point() else x.detach().cpu()
    if isinstance(x, (list, tuple)):
        return type(x)(_to_cpu(v) for v in x)
    return x


class SuperbHeadTask(TrainingTask):
    """Trains ``model`` (featurizer + head) with ``task``'s loss; scores the dev split with ``task``'s metric
    every validation (logged as ``val/score``, which picks the kept step)."""

    def __init__(self, model: torch.nn.Module, task: SuperbTask, dev: Optional[Split], optim: OptimConfig):
        super().__init__()
        self.model, self.task, self.dev, self.optim = model, task, dev, optim
        self.losses: List[float] = []
        self.curve: List[dict] = []
        self._outputs: List[Tuple[List[str], Any]] = []

    def training_step(self, batch, batch_idx):
        x, lengths, targets = batch
        targets = [t.to(self.device) if torch.is_tensor(t) else t for t in targets]
        loss = self.task.loss(self.model(x, lengths), targets, self.model.head)
        self.losses.append(float(loss.detach()))
        self.log("loss", loss.detach(), prog_bar=True, logger=False)
        self.log("train/loss", loss.detach())
        return loss

    def on_validation_epoch_start(self):
        self._outputs = []

    def validation_step(self, batch, batch_idx):
        ids, x, lengths = batch
        self._outputs.append((ids, _to_cpu(self.model(x, lengths))))

    def on_validation_epoch_end(self):
        value = self.task.score(self._outputs, self.dev, write=False).value
        self.log("val/score", value)
        self.curve.append({"step": self.global_step, "loss": round(self.losses[-1], 4) if self.losses else None,
                           "dev": value})  # exact: the step is chosen on it (rounded in result.json)

    def configure_optimizers(self):
        return build_optimizer(self.model.parameters(), self.optim)
