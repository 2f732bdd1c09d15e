"""Train and score one SUPERB task for one frozen upstream, whatever the task.

The upstream's hidden states come from the feature cache (:mod:`speechssl.downstream.cache`); a learnt
weighted sum of them feeds the task's head; the head trains for ``max_steps`` on random batches, is
scored on dev every ``val_every_steps``, and the best dev step is scored on test. Everything lands in
``out_dir/<upstream>/<task>/``: ``result.json`` (written last: the done marker), ``layer_weights.png``
and the task's predictions.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ...config import load_config
from ...data.kaldi_dir import DataDir
from ...downstream.cache import load_cached_states, source_key
from ...downstream.featurizer import weights_plot
from ...errors import InputError, MissingInputError
from ...hub import load_upstream
from ...nn.weighted_sum import WeightedSum
from ...utils.atomic import write_json
from .base import TASKS, HeadConfig, Split, SuperbTask, task_names
from .scores import upstream_name

log = logging.getLogger(__name__)


@dataclass
class SuperbConfig:
    task: str = "ks"
    data: str = "superb/ks"        # prepared task dir (train/ dev/ test/)
    upstream: str = "fbank"        # fbank, an exported folder, HF folder, fairseq .pt
    name: Optional[str] = None     # upstream name in tables (default: derived from the path)
    out_dir: str = "exp/superb"
    cache_dir: str = "exp/superb/cache"
    layer_norm: bool = False       # featurizer: normalise each hidden state before weighting
    head: HeadConfig = field(default_factory=HeadConfig)
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 32           # utterances per step
    max_steps: int = 2000
    val_every_steps: int = 200
    crop_seconds: Optional[float] = None  # random training crops (SID / ASV)
    seed: int = 0
    threads: Optional[int] = None
    progress: bool = True

    def validate(self) -> None:
        if self.task not in TASKS:
            raise InputError(f"task must be one of {', '.join(task_names())} (or all), got {self.task!r}")


class SuperbModel(nn.Module):
    """The learnt weighted sum of hidden states, then the task's head."""

    def __init__(self, num_states: int, layer_norm: bool, head: nn.Module):
        super().__init__()
        self.featurizer = WeightedSum(num_states, layer_norm)
        self.head = head

    def forward(self, states: torch.Tensor, lengths: torch.Tensor):
        return self.head(self.featurizer(states), lengths)


def collate_states(states: Sequence[torch.Tensor], crop: Optional[int] = None,
                   generator: Optional[torch.Generator] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """``[L+1, T_i, D]`` tensors -> ``([L+1, B, T, D] float32, lengths [B])``, randomly cropped to ``crop``."""
    if crop:
        out = []
        for s in states:
            T = s.shape[1]
            if T > crop:
                start = int(torch.randint(0, T - crop + 1, (1,), generator=generator))
                s = s[:, start:start + crop]
            out.append(s)
        states = out
    lengths = torch.tensor([s.shape[1] for s in states])
    L, T, D = states[0].shape[0], int(lengths.max()), states[0].shape[2]
    x = torch.zeros(L, len(states), T, D)
    for i, s in enumerate(states):
        x[:, i, :s.shape[1]] = s.float()
    return x, lengths


class SuperbRunner:
    """Trains and scores ``cfg.task`` for ``cfg.upstream`` (see module doc)."""

    def __init__(self, cfg: SuperbConfig):
        cfg.validate()
        self.cfg = cfg
        self.name = cfg.name or upstream_name(cfg.upstream)
        self.out = Path(cfg.out_dir) / self.name / cfg.task
        root = Path(cfg.data)
        task_cls = TASKS[cfg.task]
        dirs = {s: DataDir.read(root / s) for s in ("train", "dev", "test") if (root / s).is_dir()}
        missing = [s for s in task_cls.splits if s not in dirs]
        if missing:
            raise MissingInputError(f"{root}: no {', '.join(missing)} data dir (prepare it with `speechssl data "
                                    f"prep-superb --task {cfg.task}`)")
        self.task: SuperbTask = task_cls(root, {s: dirs[s] for s in task_cls.splits}, self.out)

    def _splits(self, targets: Dict[str, Dict[str, Any]]) -> Dict[str, Split]:
        cfg = self.cfg
        dirs = self.task.dirs
        states, self.frame_rate = load_cached_states(cfg.cache_dir, cfg.upstream, list(dirs.values()),
                                                     lambda: load_upstream(cfg.upstream), progress=cfg.progress)
        out = {}
        for s, d in dirs.items():
            tgt = self.task.split_targets(s, targets)
            utts = [u for u in d.utt_ids if u in tgt]
            out[s] = Split(s, d, utts, [torch.from_numpy(states[source_key(d, u)]) for u in utts],
                           [tgt[u] for u in utts])
        return out

    @torch.no_grad()
    def _outputs(self, model: SuperbModel, split: Split, size: int = 64) -> List[Tuple[List[str], Any]]:
        model.eval()
        return [(split.utts[i:i + size], model(*collate_states(split.states[i:i + size])))
                for i in range(0, len(split), size)]

    def evaluate(self, model: SuperbModel, split: Split, write: bool = False):
        return self.task.score(self._outputs(model, split), split, write)

    def run(self) -> Dict[str, Any]:
        cfg, task = self.cfg, self.task
        result_file = self.out / "result.json"
        if result_file.exists():
            log.info("%s exists: %s/%s done (remove it to rerun)", result_file, self.name, cfg.task)
            return json.loads(result_file.read_text())
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        t0 = time.time()
        targets, num_out = task.targets()
        splits = self._splits(targets)
        t_cache = time.time() - t0
        train = splits["train"]
        L, _, D = train.states[0].shape
        torch.manual_seed(cfg.seed)
        model = SuperbModel(L, cfg.layer_norm, task.head(D, cfg.head, num_out))
        trained = self._train(model, train, splits.get("dev") if task.select_on_dev else None)
        test = self.evaluate(model, splits["test"], write=True)
        weights = model.featurizer.normalized_weights.tolist()
        self.out.mkdir(parents=True, exist_ok=True)
        weights_plot(weights, self.out / "layer_weights.png", f"{self.name} / {cfg.task}")
        result = {"task": cfg.task, "upstream": self.name, "upstream_path": cfg.upstream, "metric": task.metric,
                  "higher_is_better": task.higher_is_better, "value": round(test.value, 3), **trained,
                  "steps": cfg.max_steps, "layer_weights": [round(w, 4) for w in weights],
                  "head_parameters": sum(p.numel() for p in model.parameters()),
                  "train_utterances": len(train), "test_utterances": test.count,
                  "seconds": {"features": round(t_cache, 1), "total": round(time.time() - t0, 1)},
                  "config": asdict(cfg)}
        write_json(result_file, result)  # written last: the task's done marker
        return result

    def _train(self, model: SuperbModel, train: Split, dev: Optional[Split]) -> Dict[str, Any]:
        """AdamW for ``max_steps`` on shuffled batches; keeps the best dev step's weights. Returns the dev
        score, the chosen step, the dev curve and the training loss at the start and the end."""
        cfg, task = self.cfg, self.task
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        best, best_state, best_step, curve, losses = None, None, 0, [], []
        g = torch.Generator().manual_seed(cfg.seed)
        crop = int(cfg.crop_seconds * self.frame_rate) if cfg.crop_seconds else None
        bar = tqdm(range(1, cfg.max_steps + 1), desc=f"superb {self.name}/{cfg.task}", disable=not cfg.progress,
                   mininterval=2.0)
        order, pos = torch.randperm(len(train), generator=g).tolist(), 0
        for step in bar:
            if pos + cfg.batch_size > len(order):
                order, pos = torch.randperm(len(train), generator=g).tolist(), 0
            idx = order[pos:pos + cfg.batch_size]
            pos += cfg.batch_size
            model.train()
            x, lengths = collate_states([train.states[i] for i in idx], crop, g)
            loss = task.loss(model(x, lengths), [train.targets[i] for i in idx], model.head)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            losses.append(loss.item())
            bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
            if dev is not None and (step % cfg.val_every_steps == 0 or step == cfg.max_steps):
                value = self.evaluate(model, dev).value
                curve.append({"step": step, "loss": round(loss.item(), 4), "dev": round(value, 3)})
                if best is None or (value > best if task.higher_is_better else value < best):
                    best, best_step = value, step
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if best_state is not None:
            model.load_state_dict(best_state)
        window = max(1, min(10, len(losses) // 2))
        return {"dev": None if best is None else round(best, 3), "best_step": best_step or cfg.max_steps,
                # mean training loss over the first and the last `window` steps
                "train_loss": {"start": round(float(np.mean(losses[:window])), 4),
                               "end": round(float(np.mean(losses[-window:])), 4), "window": window},
                "curve": curve}


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


def run_benchmark(upstreams: Sequence[str], tasks: Sequence[str], tasks_dir: str, out_dir: str,
                  cache_dir: Optional[str] = None, data: Optional[str] = None, configs: Sequence[str] = (),
                  overrides: Sequence[str] = ()) -> List[Dict[str, Any]]:
    """Every task of ``tasks`` for every ``[NAME=]SPEC`` upstream: ``conf/superb/<task>`` <- ``configs`` <-
    ``overrides``, data from ``tasks_dir/<task>`` (or ``data`` for a single task)."""
    if not upstreams:
        raise InputError("--upstream is required (fbank, an exported folder, ...; NAME=PATH names it)")
    results = []
    for name, spec in named_upstreams(upstreams):
        for t in tasks:
            task_data = data if data and len(tasks) == 1 else str(Path(tasks_dir) / t)
            fixed = [f"task={t}", f"data={task_data}", f"upstream={spec}", f"out_dir={out_dir}",
                     f"cache_dir={cache_dir or str(Path(out_dir) / 'cache')}"] + ([f"name={name}"] if name else [])
            cfg = load_config(SuperbConfig, [f"superb/{t}", *configs], fixed + list(overrides))
            results.append(SuperbRunner(cfg).run())
    return results
