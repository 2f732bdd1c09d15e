"""The report's figures: training curves, SUPERB layer weights and SUPERB heads' dev curves (matplotlib, Agg)."""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path
from typing import Any, Dict, List, Optional

from .utils.atomic import atomic_path

PLOTTED_METRICS = ("train/loss", "val/loss", "val/loss_max", "val/loss_default", "val/loss_min")


def _curves(run: Path) -> Dict[str, List[tuple]]:
    """{metric: [(step, value)]} for the train/val losses in the run's CSV logs (all versions, resumes)."""
    series: Dict[str, Dict[int, float]] = defaultdict(dict)
    for f in sorted(run.glob("logs/version_*/metrics.csv")):
        with open(f, newline="") as fh:
            for row in csv.DictReader(fh):
                step = row.get("step")
                if not step:
                    continue
                for k, v in row.items():
                    if v and k in PLOTTED_METRICS:
                        series[k][int(float(step))] = float(v)
    return {k: sorted(v.items()) for k, v in series.items() if v}


def _panel_grid(n: int):
    """``(pyplot, figure, axes [rows, cols])`` for ``n`` panels, three to a row; unused panels hidden."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(3, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    return plt, fig, axes


def _save(plt, fig, out_png: Path) -> Path:
    out_png.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    return out_png


def plot_training_curves(runs: Dict[str, Path], out_png: Path) -> Optional[Path]:
    """One panel per run: train and validation loss against steps."""
    curves = {name: c for name, run in runs.items() if (c := _curves(run))}
    if not curves:
        return None
    n = len(curves)
    plt, fig, axes = _panel_grid(n)
    for ax, (name, c) in zip(axes.flat, curves.items()):
        for k, pts in c.items():
            ax.plot([p[0] for p in pts], [p[1] for p in pts], label=k, marker="." if k.startswith("val") else None)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(plt, fig, out_png)


def plot_layer_weights(superb: Dict[str, Dict[str, Dict[str, Any]]], out_png: Path) -> Optional[Path]:
    """One panel per SUPERB task: the learnt softmax weight of every layer, a line per upstream."""
    tasks = sorted(
        {t for u in superb.values() for t, r in u.items() if r.get("layer_weights") and len(r["layer_weights"]) > 1}
    )
    if not tasks:
        return None
    plt, fig, axes = _panel_grid(len(tasks))
    for ax, t in zip(axes.flat, tasks):
        for u, row in superb.items():
            w = (row.get(t) or {}).get("layer_weights")
            if w and len(w) > 1:
                ax.plot(range(len(w)), w, marker="o", markersize=3, label=u)
        ax.set_title(f"{t.upper()}: layer weights", fontsize=9)
        ax.set_xlabel("layer (0 = CNN output)")
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    handles = {}
    for ax in axes.flat:
        for h, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, h)
    fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=min(5, len(handles)), fontsize=7)
    return _save(plt, fig, out_png)


def superb_curve_series(superb: Dict[str, Dict[str, Dict[str, Any]]]) -> Dict[str, tuple]:
    """``{task: ("dev" | "loss", {upstream: [{"step", "dev" | "loss"}]})}``: each task's dev curves, or, for a task
    without a dev split (ASV), its training-loss curves; tasks with fewer than two points are left out."""
    out: Dict[str, tuple] = {}
    for u, row in superb.items():
        for t, r in row.items():
            if not isinstance(r, dict):
                continue
            dev = r.get("curve") or []
            loss = [c for c in r.get("loss_curve") or [] if c.get("loss") is not None]
            key, curve = ("dev", dev) if len(dev) > 1 else ("loss", loss)
            if len(curve) > 1 and out.get(t, (key,))[0] == key:
                out.setdefault(t, (key, {}))[1][u] = curve
    return dict(sorted(out.items()))


def plot_superb_curves(superb: Dict[str, Dict[str, Dict[str, Any]]], out_png: Path) -> Optional[Path]:
    """One panel per SUPERB task: each upstream's dev metric against head training steps (is it a plateau?); a
    task without a dev split (ASV) shows its training loss instead."""
    series = superb_curve_series(superb)
    if not series:
        return None
    plt, fig, axes = _panel_grid(len(series))
    for ax, (t, (key, curves)) in zip(axes.flat, series.items()):
        for u, curve in curves.items():
            ax.plot([c["step"] for c in curve], [c[key] for c in curve], marker=".", label=u)
        metric = next(u[t]["metric"] for u in superb.values() if t in u)
        ax.set_title(
            f"{t.upper()}: dev {metric}" if key == "dev" else f"{t.upper()}: training loss (no dev split)", fontsize=9
        )
        ax.set_xlabel("head step")
        ax.legend(fontsize=6)
    fig.tight_layout()
    return _save(plt, fig, out_png)


def still_improving(curve: List[Dict[str, Any]], higher_is_better: bool) -> bool:
    """True when a head's dev metric was best at its last evaluation and better than at the one before: the
    head had not reached a plateau when its step budget ran out."""
    if len(curve) < 2:
        return False
    sign = 1 if higher_is_better else -1
    last, before = sign * curve[-1]["dev"], sign * curve[-2]["dev"]
    return last > before and last >= max(sign * c["dev"] for c in curve)


def loss_still_falling(loss_curve: List[Dict[str, Any]], min_drop: float = 0.02) -> bool:
    """The plateau check of a head without a dev split (ASV): True when the mean training loss over the last
    quarter of its windows is more than ``min_drop`` (relative) below the mean over the quarter before. Windowed
    means (``runner.loss_curve``) already smooth the step-to-step noise; fewer than 4 windows: no verdict."""
    losses = [c["loss"] for c in loss_curve if c.get("loss") is not None]
    if len(losses) < 4:
        return False
    q = max(1, len(losses) // 4)
    last, before = sum(losses[-q:]) / q, sum(losses[-2 * q : -q]) / q
    return before - last > min_drop * abs(before)
