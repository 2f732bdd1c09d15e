"""Tables across upstreams, per-upstream and cross-upstream Markdown + JSON, with two scores:

* ``superb_score``, the benchmark's (SUPERB @ SLT 2022): per task, ``1000 x (value - FBANK) / (SOTA - FBANK)``
  with the published FBANK and state-of-the-art anchors of ``conf/superb/anchors.yaml``, averaged over the
  task's metrics, then over tasks. It applies only to task dirs prepared from the benchmark's own data
  (``task.json`` layout); elsewhere it is left out, not approximated.
* ``mini_score``: the same scale anchored between the FBANK measured on the same task dir and the metric's
  ideal (0 error, 100 %): what compares upstreams on the mini corpus. A task whose FBANK is already ideal has
  none (the scale is undefined), shown as '-'.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import numpy as np

from ...utils.artifacts import SuperbResult
from ...utils.atomic import write_json, write_text
from ...utils.readers import load_yaml_dict
from .base import TASKS, task_names


def upstream_name(spec: str) -> str:
    """A table name: ``exp/hubert_it2/final`` -> ``hubert_it2``, ``exp/hubert_it1/init`` -> ``hubert_it1_init``."""
    p = Path(spec)
    if not p.exists():
        return spec
    parent = p.resolve().parent.name
    return {"final": parent, "init": f"{parent}_init"}.get(p.name, p.name)


def anchored(value: float, low: float, top: float) -> Optional[float]:
    """``1000 x (value - low) / (top - low)``: 0 at ``low``, 1000 at ``top``; None when they coincide."""
    if top == low:
        return None
    return 1000.0 * (value - low) / (top - low)


def mini_score(value: float, fbank: float, higher_is_better: bool, ideal: float = 100.0) -> Optional[float]:
    """Relative to the FBANK measured on the same data: FBANK = 0, the metric's ideal = 1000 (see module doc);
    ``ideal``: the perfect value of a higher-is-better metric (100 for percentages, 1 for MTWV)."""
    return anchored(value, fbank, ideal if higher_is_better else 0.0)


def load_anchors(path=None) -> Dict[str, Any]:
    """``conf/superb/anchors.yaml`` (or ``path``), checked: every task has matching metrics and values."""

    from ...config import resolve_conf
    from ...errors import ConfigError

    path = resolve_conf(path or "superb/anchors")
    data = load_yaml_dict(path)
    for task, a in data.get("tasks", {}).items():
        n = len(a["metric"]) if isinstance(a["metric"], list) else 1
        for key in ("higher_is_better", "fbank", "sota"):
            if (len(a[key]) if isinstance(a[key], list) else 1) != n:
                raise ConfigError(f"{path}: {task}.{key} must have one value per metric ({n})")
    return data


def benchmark_score(task: str, values: Sequence[float], anchors: Dict[str, Any]) -> Optional[float]:
    """The benchmark's score of one task: ``values`` in the order of the anchors' metrics."""
    a = anchors["tasks"].get(task)
    if a is None:
        return None

    def as_list(v):
        return v if isinstance(v, list) else [v]

    parts = [anchored(v, f, s) for v, f, s in zip(values, as_list(a["fbank"]), as_list(a["sota"]))]
    parts = [p for p in parts if p is not None]
    return sum(parts) / len(parts) if parts else None


def _fmt(x: Optional[float]) -> str:
    return "–" if x is None else f"{x:.0f}"


def _upstream_table(up: str, rows: Dict[str, Any]) -> str:
    lines = [
        "| task | metric | test | dev | mini score | SUPERB score | top layer (weight) |",
        "|---|---|---|---|---|---|---|",
    ]
    for t in task_names():
        if t in rows:
            r, w = rows[t], rows[t]["layer_weights"]
            top = int(np.argmax(w))
            dev = "–" if r.get("dev") is None else f"{r['dev']:.2f}"
            lines.append(
                f"| {t.upper()} | {r['metric']} | {r['value']:.2f} | {dev} | {_fmt(r.get('mini_score'))} | "
                f"{_fmt(r.get('superb_score'))} | {top} ({w[top]:.2f}) |"
            )
    return f"# SUPERB: {up}\n\n" + "\n".join(lines) + "\n"


def _values(r: Dict[str, Any]) -> list:
    """The metric values of a result in the anchors' order (SF: F1 then CER)."""
    return [r["value"]] + list(r.get("extra_values", []))


def summarize(out_dir) -> Dict[str, Any]:
    """Collect every ``out_dir/<upstream>/<task>/result.json`` into ``out_dir/results.{json,md}`` with both scores."""
    out = Path(out_dir)
    anchors = load_anchors()
    table: Dict[str, Dict[str, Any]] = {}
    for f in sorted(out.glob("*/*/result.json")):
        r = SuperbResult.read(f)
        table.setdefault(r["upstream"], {})[r["task"]] = {
            "metric": r["metric"],
            "value": r["value"],
            "dev": r.get("dev"),
            "higher_is_better": r["higher_is_better"],
            "layer_weights": r["layer_weights"],
            "layout": r.get("layout"),
            "extra_values": r.get("extra_values", []),
        }
    fb = table.get("fbank", {})
    benchmark_layouts = set(anchors.get("benchmark_layouts", []))
    for tasks in table.values():
        mini, bench = [], []
        for t, r in tasks.items():
            if t in fb:
                s = mini_score(
                    r["value"], fb[t]["value"], r["higher_is_better"], TASKS[t].ideal if t in TASKS else 100.0
                )
                r["mini_score"] = None if s is None else round(s, 1) + 0.0  # no "-0.0"
                if s is not None:
                    mini.append(s)
            if r.get("layout") in benchmark_layouts:
                b = benchmark_score(t, _values(r), anchors)
                r["superb_score"] = None if b is None else round(b, 1) + 0.0
                if b is not None:
                    bench.append(b)
        tasks["_mini_score"] = round(sum(mini) / len(mini), 1) if mini and fb else None
        tasks["_superb_score"] = round(sum(bench) / len(bench), 1) if bench else None
    results = {
        "superb": table,
        "anchors": {"verified": bool(anchors.get("verified")), "source": "conf/superb/anchors.yaml"},
    }
    write_json(out / "results.json", results)
    for up, rows in table.items():  # one table per upstream too, beside its task folders
        write_text(out / up / "results.md", _upstream_table(up, rows))
        write_json(out / up / "results.json", {"upstream": up, "superb": rows})
    tasks = [t for t in task_names() if any(t in v for v in table.values())]
    lines = [
        "| upstream | "
        + " | ".join(f"{t.upper()} {TASKS[t].metric} {'↑' if TASKS[t].higher_is_better else '↓'}" for t in tasks)
        + " | mini score | SUPERB score |",
        "|---" * (len(tasks) + 3) + "|",
    ]
    for up in sorted(table, key=lambda u: (u != "fbank", u)):
        cells = [f"{table[up][t]['value']:.2f}" if t in table[up] else "–" for t in tasks]
        lines.append(
            f"| {up} | " + " | ".join(cells) + f" | {_fmt(table[up].get('_mini_score'))} | "
            f"{_fmt(table[up].get('_superb_score'))} |"
        )
    verified = "" if anchors.get("verified") else " (anchors not yet checked against the papers: see the file)"
    md = "\n".join(lines) + (
        "\n\nmini score: mean over tasks of 1000 x (value - FBANK) / (ideal - FBANK) with the FBANK measured here; "
        "FBANK = 0, a perfect result = 1000; a task FBANK already solves has none ('–').\n"
        "SUPERB score: the benchmark's, anchored at the published FBANK and state of the art "
        f"(conf/superb/anchors.yaml{verified}); only for task dirs made from the benchmark's data ('–' otherwise).\n"
    )
    write_text(out / "results.md", md)
    results["markdown"] = md
    return results
