"""Tables across upstreams: the SUPERB score against FBANK, per-upstream and cross-upstream Markdown + JSON."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np

from ...utils.atomic import write_json, write_text
from .base import TASKS, task_names


def upstream_name(spec: str) -> str:
    """A table name: ``exp/hubert_it2/final`` -> ``hubert_it2``, ``exp/hubert_it1/init`` -> ``hubert_it1_init``."""
    p = Path(spec)
    if not p.exists():
        return spec
    parent = p.resolve().parent.name
    return {"final": parent, "init": f"{parent}_init"}.get(p.name, p.name)


def superb_score(value: float, fbank: float, higher_is_better: bool) -> Optional[float]:
    """Relative to FBANK, scaled so FBANK = 0 and a perfect score (0 error / 100 %) = 1000.

    The SUPERB challenge anchors the top at the state of the art of each task; on corpora without a
    published state of the art (the mini corpus) the metric's ideal is the anchor. When FBANK already
    reaches the ideal the scale is undefined: None (the task is left out of the mean and shown as '–')."""
    ideal = 100.0 if higher_is_better else 0.0
    if ideal == fbank:
        return None
    return 1000.0 * (value - fbank) / (ideal - fbank)


def _upstream_table(up: str, rows: Dict[str, Any]) -> str:
    lines = ["| task | metric | test | dev | SUPERB score | top layer (weight) |", "|---|---|---|---|---|---|"]
    for t in task_names():
        if t in rows:
            r, w = rows[t], rows[t]["layer_weights"]
            top = int(np.argmax(w))
            dev = "–" if r.get("dev") is None else f"{r['dev']:.2f}"
            score = "–" if r.get("superb_score") is None else r["superb_score"]
            lines.append(f"| {t.upper()} | {r['metric']} | {r['value']:.2f} | {dev} | {score} | {top} ({w[top]:.2f}) |")
    return f"# SUPERB: {up}\n\n" + "\n".join(lines) + "\n"


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
    for tasks in table.values():
        scores = []
        for t, r in tasks.items():
            if t in fb:
                s = superb_score(r["value"], fb[t]["value"], r["higher_is_better"])
                r["superb_score"] = None if s is None else round(s, 1) + 0.0  # no "-0.0"
                if s is not None:
                    scores.append(s)
        tasks["_score"] = round(sum(scores) / len(scores), 1) if scores and fb else None
    results = {"superb": table}
    write_json(out / "results.json", results)
    for up, rows in table.items():  # one table per upstream too, beside its task folders
        write_text(out / up / "results.md", _upstream_table(up, rows))
        write_json(out / up / "results.json", {"upstream": up, "superb": rows})
    tasks = [t for t in task_names() if any(t in v for v in table.values())]
    lines = ["| upstream | " + " | ".join(f"{t.upper()} {TASKS[t].metric} {'↑' if TASKS[t].higher_is_better else '↓'}"
                                         for t in tasks) + " | SUPERB score |", "|---" * (len(tasks) + 2) + "|"]
    for up in sorted(table, key=lambda u: (u != "fbank", u)):
        cells = [f"{table[up][t]['value']:.2f}" if t in table[up] else "–" for t in tasks]
        score = table[up].get("_score")
        lines.append(f"| {up} | " + " | ".join(cells) + f" | {'–' if score is None else f'{score:.0f}'} |")
    md = "\n".join(lines) + "\n\nSUPERB score: mean over tasks of 1000 x (value - FBANK) / (ideal - FBANK); " \
                            "FBANK = 0, a perfect score = 1000; a task FBANK already solves has no score ('–').\n"
    write_text(out / "results.md", md)
    results["markdown"] = md
    return results
