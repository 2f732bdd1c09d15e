"""SUPERB evaluation: a frozen upstream, a learnt weighted sum of its hidden states, a task head.

``speechssl superb --task T --upstream NAME=PATH --tasks-dir DIR`` trains the head of task ``T``
(pr, asr, ks, ic, sid, asv, or all) on cached hidden states (:mod:`speechssl.downstream.cache`),
picks the step with the best dev score, scores the test split, and writes into
``out_dir/<upstream>/<task>/``: ``result.json``, ``layer_weights.png`` and, for CTC tasks, a
Kaldi-style decode dir. ``--task all`` also writes ``results.md`` / ``results.json`` for the
upstream and the cross-upstream table ``out_dir/results.{md,json}`` with SUPERB scores against FBANK.

A prepared task dir (``speechssl data prep-superb``) holds ``train``, ``dev`` and ``test`` data
dirs: PR reads ``text.phone``, ASR ``text``, KS / IC / SID ``utt2label``; ASV trains on ``train``
speakers (``utt2label``) and scores ``test/trials`` (``enroll_utt test_utt target|nontarget``).
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

from ..errors import InputError, MissingInputError
from ..config import load_config
from ..data.kaldi_dir import DataDir
from ..data.tokenizers import TokenVocab
from ..downstream.featurizer import WeightedSum, weights_plot
from ..downstream.heads import AMSoftmax, BiLSTMCTC, IntentHead, LinearCTC, MeanPoolLinear, XVector
from ..downstream.metrics import accuracy, equal_error_rate, error_counts
from ..utils.atomic import write_json

log = logging.getLogger(__name__)

TASKS = ("pr", "ks", "ic", "sid", "asv", "asr")
METRICS = {"pr": ("PER", False), "asr": ("WER", False), "ks": ("accuracy", True), "ic": ("accuracy", True),
           "sid": ("accuracy", True), "asv": ("EER", False)}


@dataclass
class HeadConfig:
    project: int = 256             # KS / IC / SID projection before pooling; ASR input projection (0: none)
    hidden: int = 1024             # ASR BiLSTM units per direction (SUPERB: 1024)
    layers: int = 2                # ASR BiLSTM layers
    dropout: float = 0.2
    xvector_channels: int = 512
    xvector_pool: int = 1500
    xvector_embed: int = 512
    margin: float = 0.4            # AM-softmax
    scale: float = 30.0


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
            raise InputError(f"task must be one of {', '.join(TASKS)} (or all), got {self.task!r}")


def upstream_name(spec: str) -> str:
    """A table name: ``exp/hubert_it2/final`` -> ``hubert_it2``, ``exp/hubert_it1/init`` -> ``hubert_it1_init``."""
    p = Path(spec)
    if not p.exists():
        return spec
    parent = p.resolve().parent.name
    return {"final": parent, "init": f"{parent}_init"}.get(p.name, p.name)


# ------------------------------------------------------------------------------------ data
class TaskSplit:
    """One split: utterance ids, their cached states ``[L+1, T, D]`` and targets."""

    def __init__(self, d: DataDir, states: Dict[str, np.ndarray], keys: Dict[str, str], targets: Dict[str, Any]):
        self.data = d
        self.utts = [u for u in d.utt_ids if u in targets]
        self.states = [torch.from_numpy(states[keys[u]]) for u in self.utts]
        self.targets = [targets[u] for u in self.utts]

    def __len__(self):
        return len(self.utts)


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


def _labels(d: DataDir, name: str) -> Dict[str, str]:
    table = d.text if name == "text" else d.extra.get(name)
    if table is None:
        raise MissingInputError(f"{d.path}/{name}: missing (prepare the task dir with `speechssl data prep-superb`)")
    return table


# ------------------------------------------------------------------------------------ model
class SuperbModel(nn.Module):
    """Featurizer + head for one task."""

    def __init__(self, task: str, num_states: int, dim: int, cfg: HeadConfig, num_out, layer_norm: bool):
        super().__init__()
        self.task = task
        self.featurizer = WeightedSum(num_states, layer_norm)
        if task == "pr":
            self.head = LinearCTC(dim, num_out)
        elif task == "asr":
            self.head = BiLSTMCTC(dim, num_out, cfg.hidden, cfg.layers, cfg.dropout, cfg.project)
        elif task == "ic":
            self.head = IntentHead(dim, num_out, cfg.project)
        elif task in ("ks", "sid"):
            self.head = MeanPoolLinear(dim, num_out, cfg.project)
        else:
            self.head = XVector(dim, cfg.xvector_channels, cfg.xvector_pool, cfg.xvector_embed)
            self.am_softmax = AMSoftmax(cfg.xvector_embed, num_out, cfg.margin, cfg.scale)

    def forward(self, states: torch.Tensor, lengths: torch.Tensor):
        return self.head(self.featurizer(states), lengths)


# ------------------------------------------------------------------------------------ the runner
class SuperbRunner:
    """Trains and scores one task for one upstream (see module doc)."""

    def __init__(self, cfg: SuperbConfig):
        cfg.validate()
        self.cfg = cfg
        self.name = cfg.name or upstream_name(cfg.upstream)
        self.out = Path(cfg.out_dir) / self.name / cfg.task
        root = Path(cfg.data)
        self.dirs = {s: DataDir.read(root / s) for s in ("train", "dev", "test") if (root / s).is_dir()}
        need = ("train", "test") if cfg.task == "asv" else ("train", "dev", "test")
        missing = [s for s in need if s not in self.dirs]
        if missing:
            raise MissingInputError(f"{root}: no {', '.join(missing)} data dir (prepare it with `speechssl data "
                                    f"prep-superb --task {cfg.task}`)")

    # ---------------------------------------------------------------- targets
    def _targets(self):
        t, d = self.cfg.task, self.dirs
        if t in ("pr", "asr"):
            name, unit = ("text.phone", "phone") if t == "pr" else ("text", "char")
            tables = {s: _labels(x, name) for s, x in d.items()}
            self.vocab = TokenVocab.build(tables["train"].values(), unit)
            self.refs = tables
            for s, tab in tables.items():
                empty = [u for u, v in tab.items() if not v.split()]
                if empty:  # CTC has nothing to learn from or score on them: say so, do not hide it
                    log.warning("%s/%s/%s: leaving out %d utterances with empty transcripts (%s)", self.cfg.data,
                                s, name, len(empty), ", ".join(empty[:5]))
            return {s: {u: torch.tensor(self.vocab.encode(v, u)) for u, v in tab.items() if v.split()}
                    for s, tab in tables.items()}, len(self.vocab)
        tables = {s: _labels(x, "utt2label") for s, x in d.items() if not (t == "asv" and s != "train")}
        if t == "ic":
            slots = list(zip(*[v.split("|") for v in tables["train"].values()]))
            self.classes = [sorted(set(s)) for s in slots]
            index = [{c: i for i, c in enumerate(cl)} for cl in self.classes]

            def encode(v, u, s):
                parts = v.split("|")
                if len(parts) != len(index):
                    raise InputError(f"{d[s].path}/utt2label: {u}: intent {v!r} does not have {len(index)} slots")
                return torch.tensor([index[i].get(p, -100) for i, p in enumerate(parts)])
            return {s: {u: encode(v, u, s) for u, v in tab.items()} for s, tab in tables.items()}, \
                [len(c) for c in self.classes]
        self.classes = sorted(set(tables["train"].values()))
        index = {c: i for i, c in enumerate(self.classes)}
        for s, tab in tables.items():
            unseen = sorted({v for v in tab.values() if v not in index})
            if unseen and s != "train":
                log.warning("%s/%s: %d labels never seen in train (%s): those utterances count as errors",
                            self.cfg.data, s, len(unseen), ", ".join(unseen[:5]))
        return {s: {u: index.get(v, -100) for u, v in tab.items()} for s, tab in tables.items()}, len(self.classes)

    # ---------------------------------------------------------------- training
    def run(self) -> Dict[str, Any]:
        cfg = self.cfg
        result_file = self.out / "result.json"
        if result_file.exists():
            log.info("%s exists: %s/%s done (remove it to rerun)", result_file, self.name, cfg.task)
            return json.loads(result_file.read_text())
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        t0 = time.time()
        targets, num_out = self._targets()
        from ..downstream.cache import load_cached_states, source_key
        from ..hub import load_upstream
        states, frame_rate = load_cached_states(cfg.cache_dir, cfg.upstream, list(self.dirs.values()),
                                    lambda: load_upstream(cfg.upstream), progress=cfg.progress)
        keys = {s: {u: source_key(d, u) for u in d.utt_ids} for s, d in self.dirs.items()}
        t_cache = time.time() - t0
        if cfg.task == "asv":
            splits = {"train": TaskSplit(self.dirs["train"], states, keys["train"], targets["train"]),
                      "test": TaskSplit(self.dirs["test"], states, keys["test"],
                                        {u: 0 for u in self.dirs["test"].utt_ids})}
        else:
            splits = {s: TaskSplit(self.dirs[s], states, keys[s], targets[s]) for s in ("train", "dev", "test")}
        L, _, D = splits["train"].states[0].shape
        torch.manual_seed(cfg.seed)
        model = SuperbModel(cfg.task, L, D, cfg.head, num_out, cfg.layer_norm)
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        higher = METRICS[cfg.task][1]
        best, best_state, best_step, curve, losses = None, None, 0, [], []
        g = torch.Generator().manual_seed(cfg.seed)
        crop = int(cfg.crop_seconds * frame_rate) if cfg.crop_seconds else None
        train = splits["train"]
        from tqdm import tqdm
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
            loss = self._loss(model, x, lengths, [train.targets[i] for i in idx])
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            losses.append(loss.item())
            bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
            if cfg.task != "asv" and (step % cfg.val_every_steps == 0 or step == cfg.max_steps):
                dev = self.evaluate(model, splits["dev"])["value"]
                curve.append({"step": step, "loss": round(loss.item(), 4), "dev": round(dev, 3)})
                if best is None or (dev > best if higher else dev < best):
                    best, best_step = dev, step
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        window = max(1, min(10, len(losses) // 2))
        if best_state is not None:
            model.load_state_dict(best_state)
        test = self.evaluate(model, splits["test"], write=True)
        weights = model.featurizer.normalized_weights.tolist()
        self.out.mkdir(parents=True, exist_ok=True)
        weights_plot(weights, self.out / "layer_weights.png", f"{self.name} / {cfg.task}")
        metric, higher = METRICS[cfg.task]
        result = {"task": cfg.task, "upstream": self.name, "upstream_path": cfg.upstream, "metric": metric,
                  "higher_is_better": higher, "value": round(test["value"], 3),
                  "dev": None if best is None else round(best, 3), "best_step": best_step or cfg.max_steps,
                  "steps": cfg.max_steps, "layer_weights": [round(w, 4) for w in weights],
                  "head_parameters": sum(p.numel() for p in model.parameters()),
                  "train_utterances": len(train), "test_utterances": test.get("count"),
                  "seconds": {"features": round(t_cache, 1), "total": round(time.time() - t0, 1)},
                  # mean training loss over the first and the last `window` steps
                  "train_loss": {"start": round(float(np.mean(losses[:window])), 4),
                                 "end": round(float(np.mean(losses[-window:])), 4), "window": window},
                  "curve": curve, "config": asdict(cfg)}
        write_json(result_file, result)  # written last: the task's done marker
        return result

    def _loss(self, model: SuperbModel, x, lengths, targets) -> torch.Tensor:
        t = self.cfg.task
        if t in ("pr", "asr"):
            logits, out_len = model(x, lengths)
            lp = logits.float().log_softmax(-1)
            tl = torch.tensor([len(y) for y in targets])
            flat = torch.cat(targets)
            return nn.functional.ctc_loss(lp.transpose(0, 1), flat, out_len, tl, blank=self.vocab.blank,
                                          reduction="sum", zero_infinity=True) / tl.sum().clamp_min(1)
        if t == "ic":
            logits = model(x, lengths)
            y = torch.stack(targets)
            return sum(nn.functional.cross_entropy(l, y[:, i], ignore_index=-100) for i, l in enumerate(logits))
        y = torch.tensor(targets)
        if t == "asv":
            return model.am_softmax(model(x, lengths), y)
        return nn.functional.cross_entropy(model(x, lengths), y, ignore_index=-100)

    @torch.no_grad()
    def _batches(self, split: TaskSplit, size: int = 64):
        for i in range(0, len(split), size):
            x, lengths = collate_states(split.states[i:i + size])
            yield i, x, lengths

    @torch.no_grad()
    def evaluate(self, model: SuperbModel, split: TaskSplit, write: bool = False) -> Dict[str, Any]:
        """The task metric on ``split`` (percent); ``write`` also leaves a decode dir / scores in the output."""
        model.eval()
        t = self.cfg.task
        if t in ("pr", "asr"):
            from ..downstream.ctc_decode import greedy_decode
            hyps = []
            for _, x, lengths in self._batches(split):
                logits, out_len = model(x, lengths)
                hyps += greedy_decode(logits.float().log_softmax(-1), out_len, self.vocab)
            split_name = [k for k, v in self.dirs.items() if v is split.data][0]
            refs = [self.refs[split_name][u] for u in split.utts]
            if write:
                from ..downstream.scoring import write_scoring
                write_scoring(self.out / f"decode_{split_name}", split.utts, refs, hyps, self.vocab.unit)
            return {"value": error_counts(refs, hyps, "word").rate, "count": len(refs)}
        if t == "asv":
            return self._verify(model, split, write)
        preds = []
        for _, x, lengths in self._batches(split):
            out = model(x, lengths)
            preds += (torch.stack([l.argmax(-1) for l in out], 1).tolist() if t == "ic" else out.argmax(-1).tolist())
        gold = [y.tolist() if torch.is_tensor(y) else y for y in split.targets]
        if write:
            names = (lambda p: "|".join(self.classes[i][c] for i, c in enumerate(p))) if t == "ic" else \
                (lambda p: self.classes[p])
            (self.out / "predictions.txt").parent.mkdir(parents=True, exist_ok=True)
            (self.out / "predictions.txt").write_text("".join(f"{u} {names(p)}\n" for u, p in zip(split.utts, preds)))
        return {"value": accuracy(preds, gold), "count": len(gold)}

    def _verify(self, model: SuperbModel, split: TaskSplit, write: bool) -> Dict[str, Any]:
        trials_file = Path(self.cfg.data) / "test" / "trials"
        if not trials_file.exists():
            raise MissingInputError(f"{trials_file}: missing (ASV needs a trial list)")
        emb = {}
        for i, x, lengths in self._batches(split):
            e = nn.functional.normalize(model(x, lengths), dim=-1)
            emb.update(zip(split.utts[i:i + len(e)], e))
        scores, labels, rows = [], [], []
        for n, line in enumerate(trials_file.read_text().splitlines(), 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 3 or parts[2] not in ("target", "nontarget"):
                raise InputError(f"{trials_file}:{n}: expected 'enroll_utt test_utt target|nontarget', got {line!r}")
            a, b, lab = parts
            for u in (a, b):
                if u not in emb:
                    raise InputError(f"{trials_file}:{n}: utterance {u} is not in {split.data.path}")
            s = float(emb[a] @ emb[b])
            scores.append(s)
            labels.append(lab == "target")
            rows.append(f"{a} {b} {s:.5f} {lab}")
        eer, thr = equal_error_rate(scores, labels)
        if write:
            (self.out / "scores.txt").parent.mkdir(parents=True, exist_ok=True)
            (self.out / "scores.txt").write_text("\n".join(rows) + "\n")
        return {"value": eer, "count": len(scores), "threshold": thr}


# ------------------------------------------------------------------------------------ tables
def superb_score(value: float, fbank: float, higher_is_better: bool) -> Optional[float]:
    """Relative to FBANK, scaled so FBANK = 0 and a perfect score (0 error / 100 %) = 1000.

    The SUPERB challenge anchors the top at the state of the art of each task; on corpora without a
    published state of the art (the mini corpus) the metric's ideal is the anchor."""
    ideal = 100.0 if higher_is_better else 0.0
    if ideal == fbank:
        return None
    return 1000.0 * (value - fbank) / (ideal - fbank)


def summarize(out_dir) -> Dict[str, Any]:
    """Collect every ``out_dir/<upstream>/<task>/result.json`` into ``out_dir/results.{json,md}``."""
    out = Path(out_dir)
    table: Dict[str, Dict[str, Any]] = {}
    for f in sorted(out.glob("*/*/result.json")):
        r = json.loads(f.read_text())
        table.setdefault(r["upstream"], {})[r["task"]] = {"metric": r["metric"], "value": r["value"],
                                                          "dev": r.get("dev"), "higher_is_better": r["higher_is_better"],
                                                          "layer_weights": r["layer_weights"]}
    fb = table.get("fbank", {})
    for up, tasks in table.items():
        scores = []
        for t, r in tasks.items():
            if t in fb:
                r["superb_score"] = s = superb_score(r["value"], fb[t]["value"], r["higher_is_better"])
                if s is not None:
                    r["superb_score"] = round(s, 1) + 0.0  # no "-0.0"
                    scores.append(s)
        tasks["_score"] = round(sum(scores) / len(scores), 1) if scores and fb else None
    results = {"superb": table}
    (out / "results.json").write_text(json.dumps(results, indent=1))
    for up, rows in table.items():  # one table per upstream too, beside its task folders
        lines = ["| task | metric | test | dev | SUPERB score | top layer (weight) |", "|---|---|---|---|---|---|"]
        for t in TASKS:
            if t in rows:
                r, w = rows[t], rows[t]["layer_weights"]
                top = int(np.argmax(w))
                dev = "–" if r.get("dev") is None else f"{r['dev']:.2f}"
                score = "–" if r.get("superb_score") is None else r["superb_score"]
                lines.append(f"| {t.upper()} | {r['metric']} | {r['value']:.2f} | {dev} | {score} | {top} ({w[top]:.2f}) |")
        (out / up / "results.md").write_text(f"# SUPERB: {up}\n\n" + "\n".join(lines) + "\n")
        (out / up / "results.json").write_text(json.dumps({"upstream": up, "superb": rows}, indent=1))
    tasks = [t for t in TASKS if any(t in v for v in table.values())]
    lines = ["| upstream | " + " | ".join(f"{t.upper()} {METRICS[t][0]} {'↑' if METRICS[t][1] else '↓'}" for t in tasks)
             + " | SUPERB score |", "|---" * (len(tasks) + 2) + "|"]
    order = sorted(table, key=lambda u: (u != "fbank", u))
    for up in order:
        cells = [f"{table[up][t]['value']:.2f}" if t in table[up] else "–" for t in tasks]
        score = table[up].get("_score")
        lines.append(f"| {up} | " + " | ".join(cells) + f" | {'–' if score is None else f'{score:.0f}'} |")
    md = "\n".join(lines) + "\n\nSUPERB score: mean over tasks of 1000 x (value - FBANK) / (ideal - FBANK); " \
                            "FBANK = 0, a perfect score = 1000.\n"
    (out / "results.md").write_text(md)
    results["markdown"] = md
    return results


def run_superb(cfg: SuperbConfig, tasks: Sequence[str]) -> List[Dict[str, Any]]:
    """Run ``tasks`` (each from its own ``cfg.data`` when ``tasks`` are many: ``<tasks_dir>/<task>``)."""
    out = []
    for t in tasks:
        c = SuperbConfig(**{**asdict(cfg), "task": t, "head": HeadConfig(**asdict(cfg.head))})
        out.append(SuperbRunner(c).run())
    return out


def run_task(cfg: SuperbConfig) -> Dict[str, Any]:
    """One task for one upstream, as ``cfg`` says (the registry's run function)."""
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
