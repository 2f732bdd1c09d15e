"""Every trainable task by name: its config schema, its run function, its dry-run description, and
the ``conf/`` files its schema reads. The CLI (``speechssl train``, ``pretrain``, ``distill``,
``finetune``, ``tts train-*``, ``asd train``) and ``speechssl config check`` both read this table,
so a new task or objective is its own module plus one entry here.

Each entry names the module its task lives in through a two-line function with an ordinary import
statement (``_hubert`` below: ``from . import hubert``), run on first use: a reader and
``tools/import_graph.py`` follow it like any import, and listing the tasks (``--help``) imports none of them,
so no Lightning and no model code.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Callable, Dict, Optional, Tuple

from ..errors import InputError


@dataclass(frozen=True)
class TaskSpec:
    """One trainable task.

    Attributes:
        name: the registry key and the CLI's name for it (``hubert``, ``w2v-bert``, ...).
        group: the CLI command that runs it (``pretrain``, ``distill``, ``finetune``, ``tts``, ``asd``).
        module: imports and returns the task's module (one of the functions below).
        schema: the name of its config dataclass in ``module``.
        run: the name of its run function (config -> a JSON-able summary).
        describe: the name of its dry-run description (config -> dict of what it builds); None: the config
            itself is the description.
        conf: globs under ``conf/`` whose files load into ``schema`` (``config check``).
        placeholders: ``key=value`` a run supplies (labels, a teacher), filled to check a file alone.
        help: one line for the CLI.
        timing: the name of its timing step (config -> ``(step, device)``: one update on a synthetic
            micro-batch) for ``--dry-run --time-steps N``; None: the task cannot be timed without data.
    """

    name: str
    group: str
    module: Callable[[], ModuleType]
    schema: str
    run: str
    describe: Optional[str] = None
    conf: Tuple[str, ...] = ()
    placeholders: Tuple[str, ...] = ()
    help: str = ""
    command: str = field(default="", compare=False)  # the CLI sub-command word (default: name)
    timing: Optional[str] = None

    def _get(self, attribute: str) -> Any:
        return getattr(self.module(), attribute)

    def schema_class(self) -> type:
        return self._get(self.schema)

    def run_function(self) -> Callable:
        return self._get(self.run)

    def description(self, cfg, time_steps: int = 0) -> Dict[str, Any]:
        """What ``cfg`` builds, without data or weights (parameter counts on the meta device), what the run will
        do (steps, audio per update and in all, a memory estimate) and, with ``time_steps``, a measured update."""
        from ..training.dry_run import measure_updates, peak_rss_gib, run_plan, time_estimate
        from ..utils.memory import reset_peak_rss

        info: Dict[str, Any] = {"task": self.name}
        if self.describe:
            info["parameters"] = self._get(self.describe)(cfg)
        batch = global_batch(cfg)
        if batch:
            info["batch"] = batch
        params = info.get("parameters", {})
        total = params.get("total", params.get("encoder", 0)) if isinstance(params, dict) else 0
        info["run"] = run_plan(cfg, total, batch)
        if time_steps:
            if not self.timing:
                raise InputError(f"--time-steps: {self.name} cannot be timed without its data (no synthetic batch)")
            reset_peak_rss()  # the mark Linux carries over from a large parent is not this run's
            before = peak_rss_gib()
            step, device = self._get(self.timing)(cfg)
            measured = measure_updates(step, time_steps, device, before)
            info["measured"] = {**measured, **time_estimate(measured, cfg, batch)}
        return info


def global_batch(cfg) -> Optional[Dict[str, Any]]:
    """Audio seconds per update: per device x devices x nodes x accumulation (None without a batch)."""
    data, trainer, optim = (getattr(cfg, k, None) for k in ("data", "trainer", "optim"))
    seconds = getattr(data, "batch_seconds", None)
    if seconds is None or trainer is None:
        return None
    devices = trainer.devices
    if isinstance(devices, (list, tuple)) or (hasattr(devices, "__len__") and not isinstance(devices, str)):
        devices = len(devices)
    counted = devices if isinstance(devices, int) else 1  # "auto": one device counted, and said
    accumulate = getattr(optim, "accumulate", 1) or 1
    target = getattr(optim, "global_batch_seconds", None)
    derived = {}
    if target:  # what the run will do: accumulate from the paper's batch (or the refusal it will give)
        from ..training.fit import accumulation_for

        accumulate = accumulation_for(target, seconds, counted * trainer.num_nodes)
        derived = {"accumulate_from": f"optim.global_batch_seconds={target:g}"}
    total = seconds * counted * trainer.num_nodes * accumulate
    return {
        "per_device_seconds": seconds,
        "devices": devices,
        "num_nodes": trainer.num_nodes,
        "accumulate": accumulate,
        **derived,
        "global_seconds": total,
        "global_hours": round(total / 3600, 3),
        "meaning": "seconds of audio per update (not wall time)",
        **({"note": "devices=auto counted as 1"} if not isinstance(devices, int) else {}),
    }


# The tasks' modules, imported on first use.
def _hubert() -> ModuleType:
    from . import hubert

    return hubert


def _w2v_bert() -> ModuleType:
    from . import w2v_bert

    return w2v_bert


def _lighthubert() -> ModuleType:
    from . import lighthubert

    return lighthubert


def _asr() -> ModuleType:
    from . import asr

    return asr


def _vec2wav() -> ModuleType:
    from . import vec2wav

    return vec2wav


def _vec2mel() -> ModuleType:
    from . import vec2mel

    return vec2mel


def _text2vec() -> ModuleType:
    from . import text2vec

    return text2vec


def _asd() -> ModuleType:
    from . import asd

    return asd


def _superb() -> ModuleType:
    from . import superb

    return superb


TASKS: Dict[str, TaskSpec] = {
    t.name: t
    for t in (
        TaskSpec(
            "hubert",
            "pretrain",
            _hubert,
            "HubertPretrainConfig",
            "pretrain_hubert",
            "describe",
            conf=("pretrain/hubert_*",),
            placeholders=("data.train_labels=[labels/train]",),
            timing="timing_step",
            help="HuBERT masked prediction of k-means targets",
        ),
        TaskSpec(
            "w2v-bert",
            "pretrain",
            _w2v_bert,
            "W2vBertPretrainConfig",
            "pretrain_w2v_bert",
            "describe",
            conf=("pretrain/w2v_bert_*", "pretrain/wav2vec2_*"),
            timing="timing_step",
            help="w2v-BERT: contrastive + masked language modelling",
        ),
        TaskSpec(
            "lighthubert",
            "distill",
            _lighthubert,
            "LightHubertDistillConfig",
            "distill_lighthubert",
            "describe",
            conf=("distill/lighthubert_*",),
            placeholders=("teacher=exp/teacher",),
            help="LightHuBERT once-for-all supernet distillation (stage 1 or 2)",
        ),
        TaskSpec(
            "asr",
            "finetune",
            _asr,
            "AsrFinetuneConfig",
            "finetune_asr",
            "describe",
            conf=("finetune/asr_*",),
            placeholders=("model.upstream=exp/upstream",),
            help="CTC fine-tuning of a pretrained encoder",
        ),
        TaskSpec(
            "vec2wav",
            "tts",
            _vec2wav,
            "Vec2WavTrainConfig",
            "train_vocoder",
            conf=("tts/vec2wav_*",),
            placeholders=("upstream=exp/upstream",),
            command="train-vocoder",
            help="vec2wav: HiFi-GAN from an upstream layer to 16 kHz audio, speaker-conditioned",
        ),
        TaskSpec(
            "vec2mel",
            "tts",
            _vec2mel,
            "Vec2MelTrainConfig",
            "train_mel_vocoder",
            conf=("tts/vec2mel_*",),
            placeholders=("upstream=exp/upstream",),
            command="train-mel-vocoder",
            help="vec2mel: an upstream layer to log-mel (L1), Griffin-Lim to audio; no GAN",
        ),
        TaskSpec(
            "text2vec",
            "tts",
            _text2vec,
            "Text2VecTrainConfig",
            "train_acoustic",
            conf=("tts/text2vec_*",),
            placeholders=("upstream=exp/upstream",),
            command="train-acoustic",
            help="text2vec: phones -> the vocoder's features",
        ),
        TaskSpec(
            "asd",
            "asd",
            _asd,
            "AsdTrainConfig",
            "train_asd",
            conf=("asd/*",),
            placeholders=("upstream=exp/upstream",),
            command="train",
            help="active speaker detection: visual front end + MFCC or SSL audio",
        ),
        TaskSpec(
            "superb",
            "superb",
            _superb,
            "SuperbConfig",
            "run_task",
            conf=("superb/*",),
            placeholders=("data=superb/task", "upstream=fbank"),
            help="one SUPERB task on a frozen upstream",
        ),
    )
}


def get_task(name: str) -> TaskSpec:
    if name not in TASKS:
        raise InputError(f"unknown task {name!r}; registered: {', '.join(TASKS)}")
    return TASKS[name]


def tasks_in(group: str) -> Dict[str, TaskSpec]:
    """The tasks a CLI command runs, by their sub-command word."""
    return {t.command or t.name: t for t in TASKS.values() if t.group == group}


def task_for_conf(relative_path: str) -> Optional[TaskSpec]:
    """The task whose schema reads ``conf/<relative_path>`` (``pretrain/hubert_mini.yaml``), if any."""
    stem = relative_path[:-5] if relative_path.endswith(".yaml") else relative_path
    for t in TASKS.values():
        if any(fnmatch.fnmatch(stem, pattern) for pattern in t.conf):
            return t
    return None


__all__ = ["TASKS", "TaskSpec", "get_task", "task_for_conf", "tasks_in"]
