"""Subnet search over a trained LightHuBERT supernet: dev distillation loss against parameters.

``speechssl lighthubert search --supernet exp/lighthubert/stage2/final --data data/dev --max-params 5e6``
scores the default, min and max subnets, ``random`` random ones and an evolutionary search
(mutation + crossover of the best) within the parameter budget, and writes ``OUT/search.tsv``,
``OUT/search.json``, ``OUT/best.json`` (the best subnet within budget) and ``OUT/pareto.png``.

Scoring is cheap because nothing that a subnet does not change is recomputed: the waveform CNN
(not elastic), the teacher targets and the seeded masks are computed once for the dev set.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import kaldiio
import torch
from tqdm import tqdm

from ..constants import SAMPLE_RATE
from ..data.batching import duration_batches
from ..data.dataset import utterance_seed
from ..data.kaldi_dir import DataDir
from ..errors import InputError
from ..models.lighthubert import LightHubert, SearchSpace, Subnet, load_supernet
from ..nn.utils import lengths_to_mask
from ..objectives.distillation import DistillObjectiveConfig, align_frames, distillation_sums, load_teacher
from ..utils.atomic import atomic_path, write_json, write_text
from ..utils.device import resolve_device

log = logging.getLogger(__name__)


@dataclass
class SearchConfig:
    random: int = 50  # random subnets within budget
    population: int = 16  # evolutionary search: population size (0 disables)
    generations: int = 4
    parents: int = 4  # the best this many breed the next generation
    mutate_prob: float = 0.3  # per choice
    max_params: Optional[float] = None  # budget in parameters (None: no budget)
    seed: int = 0
    batch_seconds: float = 60.0
    device: str = "auto"  # where subnets are scored (the dev features are cached there)


class DevScorer:
    """Dev-set distillation loss of any subnet; CNN features, targets and masks computed once."""

    def __init__(
        self,
        supernet: LightHubert,
        data_dir: str,
        teacher: Optional[str],
        target_layers: int,
        objective: DistillObjectiveConfig,
        targets_dir: Optional[str] = None,
        batch_seconds: float = 60.0,
        seed: int = 0,
        progress: bool = True,
        device: str = "auto",
    ):
        self.device = resolve_device(device)
        self.supernet, self.obj = supernet.to(self.device).eval(), objective
        d = DataDir.read(data_dir)
        durs = d.utt2dur or d.compute_utt2dur()
        dumped = None
        if targets_dir:
            dumped = kaldiio.load_scp(str(Path(targets_dir) / "layer0" / "feats.scp"))
        teach = (
            None if dumped is not None else load_teacher(teacher, target_layers, objective.target_norm).to(self.device)
        )
        self.batches = []
        for utts in tqdm(duration_batches(d.utt_ids, durs, batch_seconds), desc="dev features", disable=not progress):
            wavs = [torch.from_numpy(d.load_audio(u, SAMPLE_RATE)) for u in utts]
            lengths = torch.tensor([len(w) for w in wavs], device=self.device)
            padded = torch.nn.utils.rnn.pad_sequence(wavs, batch_first=True).to(self.device)
            with torch.no_grad():
                feats, frames = supernet.encoder.frontend(padded, lengths)
                if dumped is not None:
                    target = torch.nn.utils.rnn.pad_sequence(
                        [torch.from_numpy(dumped[u]) for u in utts], batch_first=True
                    ).to(self.device)
                else:
                    target = teach(padded, lengths).hidden_states[0]
            target = align_frames(feats.shape[1], target.float())
            valid = lengths_to_mask(frames, feats.shape[1])
            seeds = torch.tensor([utterance_seed(seed, 0, u) for u in utts], device=self.device)
            mask = objective.draw(frames, feats.shape[1], seeds) & valid
            self.batches.append((feats, frames, mask, valid, target))

    @torch.no_grad()
    def __call__(self, subnet: Subnet) -> float:
        sn, total, n = self.supernet, 0.0, 0.0
        sn.set_subnet(subnet)
        for feats, frames, mask, valid, target in self.batches:
            scored = mask if self.obj.loss_frames == "masked" else valid
            out = sn.forward_features(feats, frames, time_mask=mask)
            total += float(distillation_sums(sn.predict(out.last_hidden_state), target, scored, self.obj.loss))
            n += float(scored.sum())
        return total / max(n, 1.0)


def _stretch(values: Sequence, depth: int) -> List:
    return [values[min(i, len(values) - 1)] for i in range(depth)]


def mutate(s: Subnet, space: SearchSpace, rng: random.Random, p: float) -> Subnet:
    """Each choice (depth, embedding, per-layer heads and ratio) redrawn with probability ``p``."""
    depth = rng.choice(space.depths) if rng.random() < p else s.depth
    embed = rng.choice(space.embed_dims) if rng.random() < p else s.embed_dim
    heads = [rng.choice(space.heads) if rng.random() < p else h for h in _stretch(s.heads, depth)]
    ratios = [rng.choice(space.ffn_ratios) if rng.random() < p else r for r in _stretch(s.ffn_ratios, depth)]
    return Subnet(embed, heads, ratios)


def crossover(a: Subnet, b: Subnet, rng: random.Random) -> Subnet:
    """Depth and embedding from either parent; each layer's heads and ratio from either parent."""
    depth = rng.choice([a.depth, b.depth])
    pa, pb = (
        (_stretch(a.heads, depth), _stretch(a.ffn_ratios, depth)),
        (_stretch(b.heads, depth), _stretch(b.ffn_ratios, depth)),
    )
    pick = [rng.random() < 0.5 for _ in range(depth)]
    return Subnet(
        rng.choice([a.embed_dim, b.embed_dim]),
        [pa[0][i] if k else pb[0][i] for i, k in enumerate(pick)],
        [pa[1][i] if k else pb[1][i] for i, k in enumerate(pick)],
    )


def pareto_front(rows: List[Dict]) -> List[Dict]:
    """Rows no other row beats on both parameters and loss (fewest parameters first)."""
    front, best = [], float("inf")
    for r in sorted(rows, key=lambda r: (r["params"], r["dev_loss"])):
        if r["dev_loss"] < best:
            front.append(r)
            best = r["dev_loss"]
    return front


def search_subnets(supernet: LightHubert, score, cfg: SearchConfig, progress: bool = True) -> List[Dict]:
    """Score the named subnets, random ones and an evolutionary search; one row per distinct subnet."""

    rng = random.Random(cfg.seed)
    space = supernet.space
    budget = cfg.max_params or float("inf")
    rows: Dict[str, Dict] = {}
    bar = tqdm(desc="subnets scored", disable=not progress, unit="subnet")

    def add(s: Subnet, source: str) -> Optional[Dict]:
        key = s.name()
        if key in rows:
            return rows[key]
        params = supernet.subnet_parameters(s)
        row = {
            "name": key,
            "source": source,
            "params": params,
            "within_budget": params <= budget,
            "dev_loss": score(s),
            "subnet": s.to_dict(),
        }
        rows[key] = row
        bar.update(1)
        return row

    def within_budget(draw, tries: int = 200) -> Optional[Subnet]:
        for _ in range(tries):
            s = draw()
            if s.name() not in rows and supernet.subnet_parameters(s) <= budget:
                return s
        return None

    for name in ("max", "default", "min"):
        add(supernet.resolve_subnet(name), name)
    for _ in range(cfg.random):
        s = within_budget(lambda: space.sample(rng))
        if s is not None:
            add(s, "random")
    population = sorted((r for r in rows.values() if r["within_budget"]), key=lambda r: r["dev_loss"])[: cfg.population]
    for gen in range(cfg.generations if cfg.population else 0):
        parents = [Subnet.from_dict(r["subnet"]) for r in population[: cfg.parents]]
        if not parents:
            break
        children = []
        for i in range(cfg.population):
            if i % 2 and len(parents) > 1:

                def draw(parents=parents):
                    return mutate(crossover(*rng.sample(parents, 2), rng), space, rng, cfg.mutate_prob / 2)
            else:

                def draw(parents=parents):
                    return mutate(rng.choice(parents), space, rng, cfg.mutate_prob)

            s = within_budget(draw, 50)
            if s is not None:
                children.append(add(s, f"evolution{gen + 1}"))
        population = sorted({r["name"]: r for r in population + children}.values(), key=lambda r: r["dev_loss"])[
            : cfg.population
        ]
    bar.close()
    out = sorted(rows.values(), key=lambda r: r["params"])
    front = {r["name"] for r in pareto_front(out)}
    for r in out:
        r["pareto"] = r["name"] in front
    return out


def write_results(rows: List[Dict], out_dir, budget: Optional[float], title: str = "") -> Dict:
    """``search.tsv``, ``search.json``, ``best.json`` and ``pareto.png`` under ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lines = ["name\tsource\tparams\tdev_loss\twithin_budget\tpareto"]
    lines += [
        f"{r['name']}\t{r['source']}\t{r['params']}\t{r['dev_loss']:.5f}\t{int(r['within_budget'])}\t{int(r['pareto'])}"
        for r in rows
    ]
    write_text(out / "search.tsv", "\n".join(lines) + "\n")
    write_json(out / "search.json", rows)
    eligible = [r for r in rows if r["within_budget"]]
    best = min(eligible, key=lambda r: r["dev_loss"]) if eligible else None
    write_json(out / "best.json", {"budget": budget, **(best or {})})
    plot_pareto(rows, out / "pareto.png", budget, title)
    return {"scored": len(rows), "best": best, "pareto": [r["name"] for r in rows if r["pareto"]]}


def plot_pareto(rows: List[Dict], path, budget: Optional[float] = None, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    groups = {}
    for r in rows:
        g = "evolution" if r["source"].startswith("evolution") else r["source"]
        groups.setdefault(g, []).append(r)
    style = {
        "random": ("tab:gray", "o", 14),
        "evolution": ("tab:blue", "o", 14),
        "max": ("tab:red", "*", 140),
        "default": ("tab:green", "*", 140),
        "min": ("tab:purple", "*", 140),
    }
    for g, rs in groups.items():
        color, marker, size = style.get(g, ("black", "x", 20))
        ax.scatter(
            [r["params"] / 1e6 for r in rs],
            [r["dev_loss"] for r in rs],
            c=color,
            marker=marker,
            s=size,
            label=g,
            alpha=0.8,
            zorder=3,
        )
    front = [r for r in rows if r["pareto"]]
    ax.plot(
        [r["params"] / 1e6 for r in front], [r["dev_loss"] for r in front], "k--", lw=1, label="Pareto front", zorder=2
    )
    if budget:
        ax.axvline(budget / 1e6, color="tab:orange", lw=1, label="budget")
    ax.set_xlabel("parameters (M)")
    ax.set_ylabel("dev distillation loss")
    ax.set_title(title or "LightHuBERT subnets")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)


def run_search(
    supernet_dir: str,
    data_dir: str,
    out_dir: str,
    cfg: SearchConfig,
    teacher: Optional[str] = None,
    target_layers: Optional[int] = None,
    targets_dir: Optional[str] = None,
    progress: bool = True,
    budget: Optional[str] = None,
) -> Dict:
    """Load the supernet, build the dev scorer (teacher and objective from the supernet's metadata
    unless given) and search; returns the summary that ``write_results`` returns. ``budget``
    (a number or ``default``, the default subnet's size) overrides ``cfg.max_params``."""
    supernet = load_supernet(supernet_dir)
    if budget is not None:
        if str(budget) in ("max", "default", "min"):
            cfg.max_params = float(supernet.subnet_parameters(str(budget)))
        else:
            try:
                cfg.max_params = float(budget)
            except ValueError:
                raise InputError(f"--max-params {budget!r}: expected a number or max/default/min") from None
    meta = getattr(supernet, "metadata", {}) or {}
    teacher = teacher or meta.get("teacher")
    if not teacher and not targets_dir:
        raise InputError(f"{supernet_dir}: no teacher in its metadata; pass --teacher or --targets")
    objective = DistillObjectiveConfig(**meta.get("objective_config", {}))
    score = DevScorer(
        supernet,
        data_dir,
        teacher,
        target_layers or meta.get("target_layers", 8),
        objective,
        targets_dir,
        cfg.batch_seconds,
        cfg.seed,
        progress,
        cfg.device,
    )
    rows = search_subnets(supernet, score, cfg, progress)
    summary = write_results(rows, out_dir, cfg.max_params, f"{Path(supernet_dir)} on {Path(data_dir).name}")
    summary["num_subnets"] = supernet.space.num_subnets()
    return summary
