"""The interface a SUPERB task implements, and the registry of tasks.

A task turns a prepared task dir into targets, builds its head on top of the learnt weighted sum of
hidden states, says how to compute the training loss, and scores a split with the benchmark's metric.
The runner (:mod:`.runner`) does everything else (cached states, batching, the training loop, choosing
the step on dev, writing results), so a new task is one module in this package, decorated with
:func:`register`, plus ``conf/superb/<name>.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Type

import torch
from torch import nn

from ...data.kaldi_dir import DataDir
from ...errors import ConfigError, MissingInputError

TASKS: Dict[str, Type[SuperbTask]] = {}


def register(cls: Type[SuperbTask]) -> Type[SuperbTask]:
    """Class decorator: make a task reachable by its ``name`` (``--task NAME``, ``conf/superb/NAME.yaml``)."""
    if cls.name in TASKS:
        raise ValueError(f"SUPERB task {cls.name!r} registered twice")
    TASKS[cls.name] = cls
    return cls


def task_names() -> List[str]:
    """Registered tasks in the benchmark's table order."""
    return sorted(TASKS, key=lambda n: (TASKS[n].order, n))


@dataclass
class NoHeadConfig:
    """A head without knobs (PR's linear CTC layer, QbE's none)."""


@dataclass
class PoolingHeadConfig:
    project: int = 256  # KS / IC / SID / ER: projection before mean pooling


@dataclass
class BiLSTMHeadConfig:
    project: int = 256  # input projection (0: none)
    hidden: int = 1024  # BiLSTM units per direction (SUPERB: 1024)
    layers: int = 2  # BiLSTM layers
    dropout: float = 0.2


@dataclass
class XVectorHeadConfig:
    xvector_channels: int = 512
    xvector_pool: int = 1500
    xvector_embed: int = 512
    margin: float = 0.4  # AM-softmax
    scale: float = 30.0


@dataclass
class DiarizationHeadConfig:
    hidden: int = 1024  # LSTM units
    layers: int = 2


def head_config(task_cls, values: Dict[str, Any]):
    """``task_cls.head_config`` from the config's ``head`` section, refusing a field that head does not have."""
    schema = task_cls.head_config
    known = {f.name for f in fields(schema)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(
            f"head.{unknown[0]}: the {task_cls.name} head ({schema.__name__}) has no such field; "
            f"its fields: {', '.join(sorted(known)) or 'none'}"
        )
    return schema(**values)


@dataclass
class Split:
    """One split of a task: utterance ids, where their hidden states come from (``source.batch(keys)``, see
    :mod:`speechssl.downstream.states`; ``keys[i]`` is utterance ``utts[i]``'s key there) and targets."""

    name: str
    data: DataDir
    utts: List[str]
    keys: List[str]
    source: Any
    targets: List[Any]

    def __len__(self) -> int:
        return len(self.utts)

    def batch(self, idx: Sequence[int], crop: Optional[int] = None, generator: Optional[torch.Generator] = None):
        """``(states [L+1, B, T, D] float32, lengths [B])`` of the utterances at positions ``idx``."""
        return self.source.batch([self.keys[i] for i in idx], crop, generator)


@dataclass
class Scored:
    """A split's score: ``value`` in the task's metric (percent), the items scored, and what to write."""

    value: float
    count: int
    extra: Dict[str, Any] = field(default_factory=dict)


def read_labels(d: DataDir, name: str) -> Dict[str, str]:
    """A data dir's per-utterance label table (``text`` or an extra file such as ``utt2label``)."""
    table = d.text if name == "text" else d.extra.get(name)
    if table is None:
        raise MissingInputError(f"{d.path}/{name}: missing (prepare the task dir with `speechssl data prep-superb`)")
    return table


class SuperbTask:
    """One SUPERB task. Subclasses set the class attributes and implement the four methods.

    Attributes:
        name: ``--task`` name; ``metric``: the reported metric; ``higher_is_better``: its direction.
        order: place in the results table.
        splits: the data dirs the task dir must hold.
        select_on_dev: pick the training step by dev score (False: the last step, when there is no dev).
        ideal: the metric's perfect value (the mini score's top). trains: False for a task without a head
            (QbE), which implements ``evaluate_layers``.
    """

    name: str = ""
    metric: str = ""
    higher_is_better: bool = True
    ideal: float = 100.0  # the metric's perfect value (percent metrics; QbE's MTWV: 1)
    order: int = 100
    splits: Tuple[str, ...] = ("train", "dev", "test")
    select_on_dev: bool = True
    trains: bool = True  # False: nothing to train; ``evaluate_layers(splits)`` gives the result
    head_config: type = NoHeadConfig  # the ``head`` section's schema for this task

    def __init__(self, data_root: Path, dirs: Dict[str, DataDir], out: Path):
        self.data_root, self.dirs, self.out = Path(data_root), dirs, Path(out)

    def targets(self) -> Tuple[Dict[str, Dict[str, Any]], Any]:
        """``({split: {utt: target}}, output size)``: what the head predicts, read from the task dir."""
        raise NotImplementedError

    def head(self, dim: int, cfg, num_out) -> nn.Module:
        """The head (``cfg``: a ``head_config`` instance): ``(weighted states [B, T, D], lengths [B]) -> outputs``."""
        raise NotImplementedError

    def loss(self, head_out, targets: Sequence[Any], head: nn.Module) -> torch.Tensor:
        """Mean training loss of a batch from the head's outputs."""
        raise NotImplementedError

    def score(self, outputs: Sequence[Tuple[List[str], Any]], split: Split, write: bool) -> Scored:
        """The metric of ``split`` from the head's outputs, batch by batch as ``(utterance ids, outputs)``;
        ``write`` leaves predictions (a decode dir, scores) under ``self.out``."""
        raise NotImplementedError

    def split_targets(self, split: str, targets: Dict[str, Dict[str, Any]]) -> Optional[Dict[str, Any]]:
        """Targets of a split the runner builds (default: the targets read for it)."""
        return targets.get(split)
