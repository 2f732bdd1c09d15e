"""Train and score one SUPERB task for one frozen upstream, whatever the task.

The upstream's hidden states come from the feature cache (:mod:`speechssl.downstream.cache`); a learnt
weighted sum of them feeds the task's head; the head trains for ``trainer.max_steps`` on random batches, is
scored on dev every ``trainer.val_every_steps``, and the best dev step is scored on test. Everything lands in
``out_dir/<upstream>/<task>/``: ``result.json`` (written last: the done marker), ``layer_weights.png``
and the task's predictions.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, ClassVar, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ...config import load_config
from ...data.kaldi_dir import DataDir
from ...downstream.cache import load_cached_states, source_key
from ...downstream.featurizer import weights_plot
from ...downstream.heads import SuperbModel
from ...downstream.states import OnlineStates
from ...errors import ConfigError, InputError, MissingInputError
from ...hub import load_upstream, source_record
from ...nn.spec_augment import SpecAugmentConfig
from ...training import OptimConfig, TrainerConfig, fit_and_export
from ...utils.artifacts import SuperbResult
from ...utils.memory import release_large_allocations
from .base import TASKS, Split, SuperbTask, head_config, task_names
from .scores import upstream_name
from .training import StatesDataModule, SuperbHeadTask

log = logging.getLogger(__name__)


@dataclass
class SuperbConfig:
    task: str = "ks"
    data: str = "superb/ks"  # prepared task dir (train/ dev/ test/)
    upstream: str = "fbank"  # fbank, an exported folder, HF folder, fairseq .pt
    name: Optional[str] = None  # upstream name in tables (default: derived from the path)
    out_dir: str = "exp/superb"
    cache_dir: str = "exp/superb/cache"
    layer_norm: bool = False  # featurizer: normalise each hidden state before weighting
    head: Dict[str, Any] = field(default_factory=dict)  # the task head's fields (base.py: one schema per head)
    specaug: SpecAugmentConfig = field(default_factory=SpecAugmentConfig)  # on the weighted sum, training only
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 32  # utterances per micro-batch
    accumulate: int = 1  # micro-batches per update (s3prl's gradient_accumulate_steps)
    grad_clip: float = 1.0  # gradient norm clipping (s3prl's gradient_clipping; 0: off)
    crop_seconds: Optional[float] = None  # random training crops (SID / ASV)
    device: str = "auto"  # where the frozen upstream computes hidden states (auto: a GPU when there is one)
    states: str = "cache"  # cache: float16 on disk, read batch by batch | online: the upstream on each batch
    # utterances per forward pass when the cache is filled: 1 keeps each utterance's states free of batch padding
    # (a task run alone equals the recipe's run); 0 batches 40 s of audio (faster on GPUs, rounding-level changes)
    extract_utts_per_batch: int = 1
    # the head's training: max_steps, val_every_steps (dev scoring; a checkpoint each time), seed, threads,
    # progress_bar, devices, precision. The runner sets out_dir (OUT/<upstream>/<task>/train) and keeps one checkpoint
    trainer: TrainerConfig = field(
        default_factory=lambda: TrainerConfig(accelerator="auto", devices=1, max_steps=2000, val_every_steps=200)
    )
    # the trainer's knobs sat at the top level before they were nested (issue 41); old configs still read
    MOVED_KEYS: ClassVar[Dict[str, str]] = {
        "max_steps": "trainer.max_steps",
        "val_every_steps": "trainer.val_every_steps",
        "seed": "trainer.seed",
        "threads": "trainer.threads",
        "progress": "trainer.progress_bar",
    }

    def validate(self) -> None:
        if self.task not in TASKS:
            raise InputError(f"task must be one of {', '.join(task_names())} (or all), got {self.task!r}")
        if self.states not in ("cache", "online"):
            raise InputError(f"states must be cache or online, got {self.states!r}")
        for key in ("batch_size", "accumulate"):
            if getattr(self, key) < 1:
                raise InputError(f"{key} must be >= 1, got {getattr(self, key)}")
        if not self.trainer.val_every_steps:
            raise InputError("trainer.val_every_steps must be >= 1: the head is scored on dev (and saved) that often")
        if self.lr <= 0:
            raise InputError(f"lr must be > 0, got {self.lr}")
        self.specaug.validate()


class SuperbRunner:
    """Trains and scores ``cfg.task`` for ``cfg.upstream`` (see module doc)."""

    def __init__(self, cfg: SuperbConfig):
        cfg.validate()
        self.cfg = cfg
        self.name = cfg.name or upstream_name(cfg.upstream)
        self.out = Path(cfg.out_dir) / self.name / cfg.task
        root = Path(cfg.data)
        task_cls = TASKS[cfg.task]
        self.head_cfg = head_config(task_cls, dict(cfg.head))  # a field this head does not have is refused
        dirs = {s: DataDir.read(root / s) for s in task_cls.splits if (root / s).is_dir()}
        missing = [s for s in task_cls.splits if s not in dirs]
        if missing:
            raise MissingInputError(
                f"{root}: no {', '.join(missing)} data dir (prepare it with `speechssl data "
                f"prep-superb --task {cfg.task}`)"
            )
        self.task: SuperbTask = task_cls(root, {s: dirs[s] for s in task_cls.splits}, self.out)

    def _splits(self, targets: Dict[str, Dict[str, Any]]) -> Dict[str, Split]:
        cfg = self.cfg
        dirs = self.task.dirs
        if cfg.states == "online":
            source = OnlineStates(
                lambda: load_upstream(cfg.upstream),
                {source_key(d, u): partial(d.load_audio, u) for d in dirs.values() for u in d.utt_ids},
                cfg.device,
            )
            self.frame_rate = source.frame_rate
        else:
            source, self.frame_rate = load_cached_states(
                cfg.cache_dir,
                cfg.upstream,
                list(dirs.values()),
                lambda: load_upstream(cfg.upstream),
                progress=cfg.trainer.progress_bar,
                device=cfg.device,
                utts_per_batch=cfg.extract_utts_per_batch,
            )
        out = {}
        for s, d in dirs.items():
            tgt = self.task.split_targets(s, targets)
            utts = [u for u in d.utt_ids if u in tgt]
            out[s] = Split(s, d, utts, [source_key(d, u) for u in utts], source, [tgt[u] for u in utts])
        return out

    @torch.no_grad()
    def _outputs(self, model: SuperbModel, split: Split, size: int = 64) -> List[Tuple[List[str], Any]]:
        model.eval()
        return [
            (split.utts[i : i + size], model(*split.batch(range(i, min(i + size, len(split))))))
            for i in range(0, len(split), size)
        ]

    def evaluate(self, model: SuperbModel, split: Split, write: bool = False):
        return self.task.score(self._outputs(model, split), split, write)

    def run(self) -> Dict[str, Any]:
        cfg, task = self.cfg, self.task
        result_file = self.out / "result.json"
        if result_file.exists():
            log.info("%s exists: %s/%s done (remove it to rerun)", result_file, self.name, cfg.task)
            return SuperbResult.read(result_file).fields
        if cfg.trainer.threads:
            torch.set_num_threads(cfg.trainer.threads)
        release_large_allocations()  # batches of hidden states, step after step (utils.memory)
        t0 = time.time()
        targets, num_out = task.targets()
        splits = self._splits(targets)
        task.frame_rate = self.frame_rate  # tasks whose targets are times (SD) convert them with it
        t_cache = time.time() - t0
        if not task.trains:
            return self._write(
                self._result_base(),
                {
                    **task.evaluate_layers(splits),
                    "seconds": {"features": round(t_cache, 1), "total": round(time.time() - t0, 1)},
                },
            )
        train = splits["train"]
        L, D = train.source.num_states, train.source.dim
        torch.manual_seed(cfg.trainer.seed)
        model = SuperbModel(L, cfg.layer_norm, task.head(D, self.head_cfg, num_out), cfg.specaug)
        trained = self._train(model, train, splits.get("dev") if task.select_on_dev else None)
        test = self.evaluate(model, splits["test"], write=True)
        weights = model.featurizer.normalized_weights.tolist()
        self.out.mkdir(parents=True, exist_ok=True)
        weights_plot(weights, self.out / "layer_weights.png", f"{self.name} / {cfg.task}")
        return self._write(
            self._result_base(),
            {
                **({"extra_values": test.extra["values"]} if "values" in test.extra else {}),
                "value": round(test.value, 3),
                **{k: v for k, v in test.extra.items() if k != "values"},  # the task's other test metrics
                **trained,
                "steps": cfg.trainer.max_steps,
                "layer_weights": [round(w, 4) for w in weights],
                "head_parameters": sum(p.numel() for p in model.parameters()),
                "train_utterances": len(train),
                "test_utterances": test.count,
                "seconds": {"features": round(t_cache, 1), "total": round(time.time() - t0, 1)},
            },
        )

    def _result_base(self) -> Dict[str, Any]:
        cfg = self.cfg
        task_json = Path(cfg.data) / "task.json"
        layout = json.loads(task_json.read_text()).get("layout") if task_json.is_file() else None
        return {
            "task": cfg.task,
            "upstream": self.name,
            "upstream_path": cfg.upstream,
            "layout": layout,
            "upstream_weights": source_record(cfg.upstream),
            "metric": self.task.metric,
            "higher_is_better": self.task.higher_is_better,
            "config": {**asdict(cfg), "head": asdict(self.head_cfg)},
        }

    def _write(self, base: Dict[str, Any], fields: Dict[str, Any]) -> Dict[str, Any]:
        result = {**base, **fields}
        self.out.mkdir(parents=True, exist_ok=True)
        SuperbResult.write(self.out / "result.json", result)  # written last: the task's done marker
        return result

    def _train(self, model: SuperbModel, train: Split, dev: Optional[Split]) -> Dict[str, Any]:
        """The head on the shared Lightning path for ``max_steps``, keeping the best dev step's weights.
        Returns the dev score, the chosen step, the dev curve and the training loss at the start and the end."""
        cfg, task = self.cfg, self.task
        t = cfg.trainer
        run_cfg = dataclasses.replace(
            cfg,
            trainer=dataclasses.replace(
                t,
                out_dir=str(self.out / "train"),
                val_every_steps=t.val_every_steps if dev is not None else None,
                checkpoint_every_steps=t.val_every_steps,
                keep_checkpoints=1,
                max_time_minutes=None,
            ),
        )
        # Adam(W) at a constant rate with clipping and accumulation, as s3prl's downstream runner
        optim = OptimConfig(
            lr=cfg.lr,
            betas=[0.9, 0.999],
            eps=1e-8,
            weight_decay=cfg.weight_decay,
            warmup_steps=0,
            total_steps=t.max_steps,
            power=0.0,
            end_lr=cfg.lr,
            grad_clip=cfg.grad_clip,
            accumulate=cfg.accumulate,
        )
        crop = int(cfg.crop_seconds * self.frame_rate) if cfg.crop_seconds else None
        module = SuperbHeadTask(model, task, dev, optim, t.val_every_steps if dev is not None else None)

        def keep_best(trainer, summary) -> Path:
            """The best dev step's weights; the last step is scored too when no validation fell on it."""
            model.cpu()
            if dev is not None and (not module.curve or module.curve[-1]["step"] != trainer.global_step):
                module.curve.append(
                    {
                        "step": trainer.global_step,
                        "loss": round(module.losses[-1], 4),
                        "dev": self.evaluate(model, dev).value,
                    }
                )
            chosen = _best_entry(module.curve, task.higher_is_better)
            if chosen is not None and chosen["step"] != trainer.global_step and module.best_state is not None:
                model.load_state_dict(module.best_state)
            return self.out

        fit_and_export(
            run_cfg,
            module,
            StatesDataModule(train, dev, cfg.batch_size, crop, t.seed),
            keep_best,
            optim=optim,
            extra_summary={"superb_head": task.name},  # the report keeps heads out of the training runs
        )
        model.cpu()
        losses = module.losses
        window = max(1, min(10, len(losses) // 2))
        chosen = _best_entry(module.curve, task.higher_is_better)
        dev_value = None if chosen is None else round(chosen["dev"], 3)
        best_step = t.max_steps if chosen is None else chosen["step"]
        return {
            "dev": dev_value,
            "best_step": best_step,
            # mean training loss over the first and the last `window` steps
            "train_loss": {
                "start": round(float(np.mean(losses[:window])), 4),
                "end": round(float(np.mean(losses[-window:])), 4),
                "window": window,
            },
            "curve": [{**c, "dev": round(c["dev"], 3)} for c in module.curve],
            "loss_curve": loss_curve(losses, cfg.accumulate),
        }


def loss_curve(losses: List[float], accumulate: int = 1, points: int = 20) -> List[dict]:
    """``[{"step", "loss"}]``: the training loss averaged over about ``points`` equal windows of the run, at each
    window's last optimizer step. The plateau check of a task without a dev split (ASV)."""
    every = max(1, -(-len(losses) // points))
    return [
        {"step": (i + len(chunk)) // max(1, accumulate), "loss": round(float(np.mean(chunk)), 4)}
        for i in range(0, len(losses), every)
        for chunk in [losses[i : i + every]]
    ]


def _best_entry(curve: List[dict], higher_is_better: bool) -> Optional[dict]:
    """The first dev score that no later one beats (as ``SuperbHeadTask.best_state`` keeps it: only strictly better
    replaces)."""
    best = None
    for c in curve:
        if best is None or (c["dev"] > best["dev"] if higher_is_better else c["dev"] < best["dev"]):
            best = c
    return best


def run_task(cfg: SuperbConfig) -> Dict[str, Any]:
    """One task for one upstream, as ``cfg`` says (the task registry's run function)."""
    return SuperbRunner(cfg).run()


def named_upstreams(specs: Sequence[str]) -> List[Tuple[Optional[str], str]]:
    """``[NAME=]SPEC`` strings -> ``(name or None, spec)``; a path that exists is never split at ``=``."""
    out = []
    for s in specs:
        name, _, path = s.partition("=") if "=" in s and not Path(s).exists() else ("", "", s)
        out.append((name or None, path))
    return out


def head_overrides_per_task(tasks: Sequence[str], overrides: Sequence[str]) -> Dict[str, List[str]]:
    """Each task's command-line overrides. With several tasks, ``head.FIELD=...`` goes to the tasks whose head has
    that field (``head.hidden`` sizes the ASR and SD heads, not KS's); a field no task's head has is refused. A single
    task gets every override, so a field its head lacks is refused by :func:`~.base.head_config`."""
    if len(tasks) < 2:
        return {t: list(overrides) for t in tasks}
    fields_of = {t: {f.name for f in dataclasses.fields(TASKS[t].head_config)} for t in tasks}
    out: Dict[str, List[str]] = {t: [] for t in tasks}
    for o in overrides:
        key = o.split("=", 1)[0]
        if not key.startswith("head."):
            for t in tasks:
                out[t].append(o)
            continue
        takers = [t for t in tasks if key[len("head.") :] in fields_of[t]]
        if not takers:
            raise ConfigError(f"{key}: none of the heads of {', '.join(tasks)} has this field")
        for t in takers:
            out[t].append(o)
    return out


def run_benchmark(
    upstreams: Sequence[str],
    tasks: Sequence[str],
    tasks_dir: str,
    out_dir: str,
    cache_dir: Optional[str] = None,
    data: Optional[str] = None,
    configs: Sequence[str] = (),
    overrides: Sequence[str] = (),
) -> List[Dict[str, Any]]:
    """Every task of ``tasks`` for every ``[NAME=]SPEC`` upstream: ``conf/superb/<task>`` <- ``configs`` <-
    ``overrides``, data from ``tasks_dir/<task>`` (or ``data`` for a single task)."""
    if not upstreams:
        raise InputError("--upstream is required (fbank, an exported folder, ...; NAME=PATH names it)")
    per_task = head_overrides_per_task(tasks, overrides)
    results = []
    for name, spec in named_upstreams(upstreams):
        for t in tasks:
            task_data = data if data and len(tasks) == 1 else str(Path(tasks_dir) / t)
            fixed = [
                f"task={t}",
                f"data={task_data}",
                f"upstream={spec}",
                f"out_dir={out_dir}",
                f"cache_dir={cache_dir or str(Path(out_dir) / 'cache')}",
            ] + ([f"name={name}"] if name else [])
            cfg = load_config(SuperbConfig, [f"superb/{t}", *configs], fixed + per_task[t])
            results.append(SuperbRunner(cfg).run())
    return results
