"""SUPERB: a frozen upstream, a learnt weighted sum of its hidden states, a task head.

One module per task (``pr``, ``ks``, ``ic``, ``sid``, ``asv``, ``asr``), each a :class:`SuperbTask`
registered by name; :mod:`.runner` trains and scores any of them, :mod:`.scores` builds the tables.
Every module of this package that is not part of that machinery is a task and is imported here, so a
new task is a new file (and ``conf/superb/<name>.yaml``).
"""

import importlib
import pkgutil

from .base import TASKS, Scored, Split, SuperbTask, register, task_names
from .runner import SuperbConfig, SuperbModel, SuperbRunner, run_benchmark, run_task
from .scores import benchmark_score, load_anchors, mini_score, summarize, upstream_name

_MACHINERY = {"base", "classification", "ctc", "runner", "scores", "training"}
for _module in pkgutil.iter_modules(__path__):
    if _module.name not in _MACHINERY:
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "TASKS",
    "Scored",
    "Split",
    "SuperbConfig",
    "SuperbModel",
    "SuperbRunner",
    "SuperbTask",
    "register",
    "run_benchmark",
    "run_task",
    "summarize",
    "mini_score",
    "benchmark_score",
    "load_anchors",
    "task_names",
    "upstream_name",
]
