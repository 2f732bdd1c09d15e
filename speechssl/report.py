"""The recipe's last stage: every number a run produced, in ``exp/RESULTS.md`` and ``exp/results.json``.

It reads what the stages left behind and recomputes nothing. Each result is found by the file its writer names,
anywhere under ``exp`` (never by the recipe's folder names, so an experiment laid out by hand reports too):

==========================================  ==================================================
``<labels>/<split>/quality.json``            PNMI of each label set (``speechssl kmeans eval``)
``.../result.json`` (:class:`SuperbResult`)  SUPERB test metric per upstream and task
``<model>/decode_<split>_<decoder>/results.json``  WER / CER per fine-tuned model (``speechssl decode``)
``<search>/search.json``, ``best.json``      LightHuBERT subnets scored by the search (params, dev loss)
``<run>/summary.json``, ``logs/*/metrics.csv``  training runs: steps, time, curves
``tts_eval.json``, ``curve.json``            WavThruVec's evaluation (``speechssl tts eval`` / ``curve``)
``<model>/eval/test_results.json``           active speaker detection mAP
``stage_times.tsv``, ``recipe_runs.log``     wall time per recipe stage, the recipe's command lines (``exp/``)
==========================================  ==================================================

Missing pieces (a stage not run) are left out, not faked; the markdown says which stages ran.
"""

from __future__ import annotations

import json
import logging
import re
from collections import defaultdict
from pathlib import Path
from typing import Any, Dict, List, Optional

from omegaconf import OmegaConf
from safetensors import safe_open

from .errors import SpeechSSLError
from .report_plots import (
    loss_still_falling,
    plot_layer_weights,
    plot_superb_curves,
    plot_training_curves,
    still_improving,
)
from .report_sections import _asd_md, _fmt, _params, _tts_md
from .utils.artifacts import DecodeResult, RunSummary, SuperbResult
from .utils.atomic import write_text
from .utils.readers import load_yaml, reading

log = logging.getLogger(__name__)


def _read_json(path: Path) -> Optional[Any]:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as e:
        log.warning("%s: unreadable JSON (%s); left out of the results", path, e)
        return None


def find(exp: Path, pattern: str) -> List[Path]:
    """Every file under ``exp`` whose name matches ``pattern`` (a glob of one path part), in path order."""
    return sorted(Path(exp).rglob(pattern))


def _read_typed(kind, path: Path) -> Optional[Dict[str, Any]]:
    """A typed artifact's fields (:mod:`speechssl.utils.artifacts`), or None with a warning naming the file and the
    reason when it is absent, broken or of another schema: the report shows what it can read."""
    if not path.is_file():
        return None
    try:
        return kind.read(path).fields
    except SpeechSSLError as e:
        log.warning("%s; left out of the results", e)
        return None


def count_parameters(model_dir: Path) -> Optional[int]:
    """Parameters in ``model_dir/model.safetensors`` from the header alone (no tensor is read)."""
    f = Path(model_dir) / "model.safetensors"
    if not f.is_file():
        return None

    n = 0
    with reading(f, "safetensors file"), safe_open(str(f), framework="numpy") as st:
        for k in st.keys():
            size = 1
            for d in st.get_slice(k).get_shape():
                size *= d
            n += size
    return n


QUALITY_AT_RATE = re.compile(r"^quality_at_[0-9.]+hz\.json$")


def collect_pnmi(exp: Path) -> Dict[str, Dict[str, float]]:
    """{labels name: {split: PNMI}} over every evaluated label set."""
    out: Dict[str, Dict[str, float]] = {}
    for q in find(exp, "quality*.json"):
        if not (q.name == "quality.json" or QUALITY_AT_RATE.match(q.name)):
            continue
        d = _read_json(q)
        if d and "pnmi" in d:
            name = q.parent.parent.name
            if q.name != "quality.json":  # quality_at_50hz.json: the same labels read at a lower frame rate
                name += f"@{q.stem.split('_at_')[-1].replace('hz', '')}Hz"
            out.setdefault(name, {})[q.parent.name] = round(float(d["pnmi"]), 4)
    return out


def collect_superb(exp: Path) -> Dict[str, Dict[str, Dict[str, Any]]]:
    out: Dict[str, Dict[str, Dict[str, Any]]] = {}
    for r in find(exp, SuperbResult.FILE):
        d = _read_typed(SuperbResult, r)
        if not d:
            continue
        entry = {
            "metric": d["metric"],
            "value": d["value"],
            "higher_is_better": d.get("higher_is_better"),
            "upstream_path": d.get("upstream_path"),
            "upstream_weights": d.get("upstream_weights"),
            "layer_weights": d.get("layer_weights"),
            "best_step": d.get("best_step"),
            "curve": [{"step": c["step"], "dev": c["dev"]} for c in d.get("curve") or [] if c.get("dev") is not None],
            "loss_curve": d.get("loss_curve") or [],
        }  # the plateau check of a task without a dev split
        if d.get("dev") is not None:
            entry["dev"] = d["dev"]
        out.setdefault(d.get("upstream", r.parent.parent.name), {})[d.get("task", r.parent.name)] = entry
    return out


DECODE_DIR = re.compile(r"^decode_(?P<split>.+?)_(?P<decoder>greedy|beam.*)$")


def collect_asr(exp: Path) -> Dict[str, Dict[str, Any]]:
    """Per fine-tuned model: test WER/CER of the decoder with the lowest *dev* WER (never chosen on test; the
    first test decode when there is no dev decode), that decoder's WER on every other split that was decoded
    (``other_splits``, e.g. ``test_unseen_speakers``), and every decode under ``decodes``.

    Decode dirs are ``decode_<split>_<decoder>``, the decoder being ``greedy`` or ``beam...``."""
    out: Dict[str, Dict[str, Any]] = {}
    models = {r.parent.parent for r in find(exp, DecodeResult.FILE) if DECODE_DIR.match(r.parent.name)}
    for model in sorted(models):
        decodes = {}
        by_split: Dict[str, Dict[str, Dict[str, float]]] = defaultdict(dict)
        for r in sorted(model.glob("decode_*/results.json")):
            d, m = _read_typed(DecodeResult, r), DECODE_DIR.match(r.parent.name)
            if d and m:
                rates = {"wer": d["wer"]["rate"], "cer": d["cer"]["rate"]}
                decodes[r.parent.name[len("decode_") :]] = rates
                by_split[m["split"]][m["decoder"]] = rates
        dev, test = by_split.get("dev", {}), by_split.get("test", {})
        chosen = [d for d in sorted(dev, key=lambda d: dev[d]["wer"]) if d in test] or sorted(test)
        if not chosen:
            continue
        others = {
            split: rates[chosen[0]]
            for split, rates in by_split.items()
            if split not in ("dev", "test") and chosen[0] in rates
        }
        out[model.name] = {
            **test[chosen[0]],
            "decoder": chosen[0],
            "chosen_on": "dev" if dev else "none",
            **({"other_splits": others} if others else {}),
            "decodes": decodes,
            "upstream": _asr_upstream(model),
        }
    return out


def _asr_upstream(run: Path) -> Optional[str]:
    if not (run / "config.yaml").is_file():
        return None

    return OmegaConf.select(load_yaml(run / "config.yaml"), "model.upstream")


def collect_lighthubert(exp: Path) -> List[Dict[str, Any]]:
    """The named subnets (max / default / min / searched) with params and dev loss, then the Pareto front."""
    searches = find(exp, "search.json")
    if not searches:
        return []
    search = searches[-1].parent  # one search a recipe run
    rows = _read_json(search / "search.json") or []
    best = _read_json(search / "best.json")
    out = []
    for role in ("max", "default", "min"):
        for r in rows:
            if r.get("source") == role:
                out.append({"role": role, "subnet": r["name"], "params": r["params"], "dev_loss": r["dev_loss"]})
                break
    if best:
        out.append(
            {
                "role": "searched",
                "subnet": best["name"],
                "params": best["params"],
                "dev_loss": best["dev_loss"],
                "budget": best.get("budget"),
            }
        )
    for r in rows:
        if r.get("pareto") and r.get("source") not in ("max", "default", "min"):
            out.append({"role": "pareto", "subnet": r["name"], "params": r["params"], "dev_loss": r["dev_loss"]})
    return out


def collect_stage_times(exp: Path) -> Dict[str, Dict[str, Any]]:
    """Seconds per stage summed over the runs that executed it (a resumed stage adds up its parts), with what
    the stage did as the recipe wrote it (``stage_times.tsv``: stage, seconds, finished, what)."""
    f = exp / "stage_times.tsv"
    total: Dict[str, float] = defaultdict(float)
    runs: Dict[str, int] = defaultdict(int)
    what: Dict[str, str] = {}
    if f.is_file():
        for line in f.read_text().splitlines():
            parts = line.split("\t")
            if len(parts) >= 2 and parts[0] != "stage":
                total[parts[0]] += float(parts[1])
                runs[parts[0]] += 1
                if len(parts) >= 4 and parts[3]:
                    what[parts[0]] = parts[3]
    return {
        s: {"seconds": round(total[s], 1), "runs": runs[s], "what": what.get(s, "")}
        for s in sorted(total, key=lambda k: (not k.isdigit(), int(k) if k.isdigit() else 0, k))
    }


def training_runs(exp: Path) -> Dict[str, Path]:
    """{name: run dir} for every Lightning run the recipe made (a dir with summary.json and metrics.csv), except
    the SUPERB heads' (their results have a section of their own): a head's summary says ``superb_head``; one
    written before that field sits inside the folder of its task's ``result.json``."""
    runs = {}
    for s in find(exp, RunSummary.FILE):
        d = s.parent
        if _is_superb_head(s, exp):
            continue
        if any(d.glob("logs/version_*/metrics.csv")):
            runs[str(d.relative_to(exp))] = d
    return runs


def _is_superb_head(summary: Path, exp: Path) -> bool:
    d = _read_json(summary)
    if isinstance(d, dict) and "superb_head" in d:
        return True
    run = summary.parent
    return any((a / SuperbResult.FILE).is_file() for a in [run, *run.parents] if a != exp and exp in a.parents)


def collect(exp: Path, corpus: str) -> Dict[str, Any]:
    exp = Path(exp)
    runs = training_runs(exp)
    models = {}
    for name, run in runs.items():
        summary = _read_typed(RunSummary, run / "summary.json") or {}
        export = Path(summary["export"]) if summary.get("export") else run / "final"
        if not export.is_absolute():
            export = exp.parent / export
        models[name] = {
            "steps": summary.get("steps"),
            "trained_seconds": summary.get("trained_seconds"),
            "wall_seconds": summary.get("wall_seconds_this_run"),
            "precision": summary.get("precision"),
            **(
                {"cut_by_wall_clock_guard": summary["cut_by_wall_clock_guard"]}
                if summary.get("cut_by_wall_clock_guard")
                else {}
            ),
            "parameters": count_parameters(export),
            "config": str((run / "config.yaml").relative_to(exp)) if (run / "config.yaml").is_file() else None,
        }
    searches = find(exp, "search.json")
    for search in searches[-1:]:  # the subnets exported beside the search (the recipe's layout)
        for sub in ("max", "default", "min", "searched"):
            n = count_parameters(search.parent.parent / sub)
            if n is not None:
                models[f"{search.parent.parent.name}/{sub}"] = {"parameters": n}
    pnmi_splits = collect_pnmi(exp)
    pnmi = {name: splits.get("dev", next(iter(splits.values()))) for name, splits in pnmi_splits.items()}
    tts_evals = find(exp, "tts_eval.json")
    curves = [c for c in find(exp, "curve.json") if (c.parent / "curve.png").is_file()]  # `speechssl tts curve`
    tts = _read_json(tts_evals[-1]) if tts_evals else None
    asd = {  # `speechssl asd eval --out MODEL/eval` (the model's name), or any other folder
        (r.parent.parent if r.parent.name == "eval" else r.parent).name: {k: r_json[k] for k in ("mAP", "face_frames")}
        for r in find(exp, "test_results.json")
        if isinstance(r_json := _read_json(r), dict) and "mAP" in r_json
    }
    curve = _read_json(curves[-1]) if curves else None
    if tts and curve:
        tts["curve"] = curve["points"]
    figures = {  # written beside their results; the markdown links them relative to exp
        name: str(f.relative_to(exp))
        for name, f in (
            ("pareto", searches[-1].parent / "pareto.png" if searches else None),
            ("spectrograms", tts_evals[-1].parent / "spectrograms.png" if tts_evals else None),
            ("tts_curve", curves[-1].parent / "curve.png" if curves else None),
        )
        if f is not None and f.is_file()
    }
    return {
        "corpus": corpus,
        "pnmi": pnmi,
        **({"tts": tts} if tts else {}),
        **({"asd": asd} if asd else {}),
        "pnmi_by_split": pnmi_splits,
        "superb": collect_superb(exp),
        "asr": collect_asr(exp),
        "lighthubert": collect_lighthubert(exp),
        "models": models,
        "stages": collect_stage_times(exp),
        "figures": figures,
    }


def to_markdown(res: Dict[str, Any], exp: Path, plots: Dict[str, Optional[Path]], invocations: List[str]) -> str:
    """RESULTS.md: the recipe runs, then one section per kind of result the stages left (none is faked)."""
    exp = Path(exp)
    md = [f"# Results: recipes/librispeech on the {res['corpus']} corpus", ""]
    if invocations:
        md += ["Recipe runs (newest last):", "", "```"] + invocations[-8:] + ["```", ""]
    for section in (
        _superb_md,
        _asr_md,
        _pnmi_md,
        _lighthubert_md,
        _tts_md,
        _asd_md,
        _models_md,
        _curves_md,
        _stages_md,
    ):
        md += section(res, exp, plots)
    md += ["Machine-readable: [results.json](results.json).", ""]
    return "\n".join(md)


def _superb_md(res: Dict[str, Any], exp: Path, plots: Dict[str, Optional[Path]]) -> List[str]:
    superb = res["superb"]
    tasks = sorted({t for u in superb.values() for t in u})
    if not superb:
        return []
    md = [
        "## SUPERB (test split)",
        "",
        "| upstream | params | "
        + " | ".join(f"{t.upper()} {next(u[t]['metric'] for u in superb.values() if t in u)}" for t in tasks)
        + " |",
        "|---|---:|" + "---:|" * len(tasks),
    ]
    params_by_upstream = _upstream_params(res, exp.parent)
    for u, row in superb.items():
        md.append(
            f"| {u} | {_params(params_by_upstream.get(u))} | "
            + " | ".join(_fmt(row[t]["value"]) if t in row else "–" for t in tasks)
            + " |"
        )
    no_dev = sorted({t.upper() for row in superb.values() for t, r in row.items() if not r.get("curve")})
    md += [
        "",
        "PER, WER and EER: lower is better; accuracies: higher is better. Each head is scored on test at "
        "its best dev step" + (f"; {', '.join(no_dev)} (no dev split) at its last step." if no_dev else "."),
        "",
    ]
    rising = [
        f"{u}/{t}"
        for u, row in superb.items()
        for t, r in row.items()
        if still_improving(r.get("curve") or [], bool(r.get("higher_is_better")))
    ]
    if rising:
        md += ["Heads still improving on dev at their last step (no plateau yet): " + ", ".join(rising) + ".", ""]
    falling = [
        f"{u}/{t}"
        for u, row in superb.items()
        for t, r in row.items()
        if not r.get("curve") and loss_still_falling(r.get("loss_curve") or [])
    ]
    if falling:
        md += [
            "Heads without a dev split whose training loss was still falling over their last quarter (more than "
            "2 % below the quarter before): " + ", ".join(falling) + ".",
            "",
        ]
    if plots.get("superb_curves"):
        md += [f"![SUPERB heads' dev curves]({Path(plots['superb_curves']).relative_to(exp)})", ""]
    if plots.get("layer_weights"):
        md += [f"![SUPERB layer weights]({Path(plots['layer_weights']).relative_to(exp)})", ""]
    return md


def _asr_md(res: Dict[str, Any], exp: Path, plots: Dict[str, Optional[Path]]) -> List[str]:
    if not res["asr"]:
        return []
    splits = sorted({s for r in res["asr"].values() for s in r.get("other_splits", {})})
    md = [
        "## CTC ASR (fine-tuned, test split; decoder chosen on dev)",
        "",
        "| model | upstream | decoder | WER | CER | "
        + "".join(f"{s} WER / CER (same decoder) | " for s in splits)
        + "all decodes |",
        "|---|---|---|---:|---:|" + "---:|" * len(splits) + "---|",
    ]
    for name, r in res["asr"].items():
        alld = "; ".join(f"{k}: {v['wer']:.1f}/{v['cer']:.1f}" for k, v in r["decodes"].items())
        other = "".join(
            f"{o['wer']:.2f} / {o['cer']:.2f} | " if (o := r.get("other_splits", {}).get(s)) else "– | " for s in splits
        )
        md.append(
            f"| {name} | {r.get('upstream') or '–'} | {r['decoder']} | {r['wer']:.2f} | {r['cer']:.2f} | "
            f"{other}{alld} |"
        )
    md.append("")
    return md


def _pnmi_md(res: Dict[str, Any], exp: Path, plots: Dict[str, Optional[Path]]) -> List[str]:
    if not res["pnmi_by_split"]:
        return []
    splits = sorted({s for v in res["pnmi_by_split"].values() for s in v})
    md = [
        "## k-means targets: PNMI against the phone alignments",
        "",
        "| labels | " + " | ".join(splits) + " |",
        "|---|" + "---:|" * len(splits),
    ]
    for name, v in res["pnmi_by_split"].items():
        md.append(f"| {name} | " + " | ".join(_fmt(v.get(s), 4) for s in splits) + " |")
    if any("@" in name for name in res["pnmi_by_split"]):
        md += [
            "",
            "`NAME@RHz`: the same labels read at R Hz (every n-th). PNMI rises as frames get fewer, so a "
            "model's labels are compared with MFCC's at the model's frame rate.",
        ]
    md.append("")
    return md


def _lighthubert_md(res: Dict[str, Any], exp: Path, plots: Dict[str, Optional[Path]]) -> List[str]:
    if not res["lighthubert"]:
        return []
    md = [
        "## LightHuBERT subnets (dev distillation loss of the stage-2 supernet)",
        "",
        "| role | subnet | params | dev loss |",
        "|---|---|---:|---:|",
    ]
    for r in res["lighthubert"]:
        md.append(f"| {r['role']} | {r['subnet']} | {_params(r['params'])} | {r['dev_loss']:.4f} |")
    md.append("")
    if res.get("figures", {}).get("pareto"):
        md += [f"![LightHuBERT Pareto front]({res['figures']['pareto']})", ""]
    return md


def _models_md(res: Dict[str, Any], exp: Path, plots: Dict[str, Optional[Path]]) -> List[str]:
    if not res["models"]:
        return []
    md = ["## Trained models", "", "| run | params | steps | trained s | config |", "|---|---:|---:|---:|---|"]
    for name, m in res["models"].items():
        cfg = f"[{m['config']}]({m['config']})" if m.get("config") else "–"
        md.append(
            f"| {name} | {_params(m.get('parameters'))} | {_fmt(m.get('steps'))} | "
            f"{_fmt(m.get('trained_seconds'), 0)} | {cfg} |"
        )
    md.append("")
    return md


def _curves_md(res: Dict[str, Any], exp: Path, plots: Dict[str, Optional[Path]]) -> List[str]:
    if not plots.get("curves"):
        return []
    md = [f"![training curves]({Path(plots['curves']).relative_to(exp)})", ""]
    return md


def _stages_md(res: Dict[str, Any], exp: Path, plots: Dict[str, Optional[Path]]) -> List[str]:
    if not res["stages"]:
        return []
    total = sum(v["seconds"] for v in res["stages"].values())
    md = ["## Wall time per stage", "", "| stage | what | seconds | runs |", "|---:|---|---:|---:|"]
    for s, v in res["stages"].items():
        md.append(f"| {s} | {v.get('what', '')} | {v['seconds']:.0f} | {v['runs']} |")
    md += [f"| | total | {total:.0f} ({total / 60:.1f} min) | |", ""]
    cut = {
        n: m["cut_by_wall_clock_guard"] for n, m in res.get("models", {}).items() if m.get("cut_by_wall_clock_guard")
    }
    if cut:  # such runs depend on the machine's speed: say so where the numbers are read
        md += [
            "**Cut short by the wall-clock guard** (not the step budget; these results depend on the "
            "machine's speed and load):",
            "",
        ]
        md += [
            f"- {n}: step {c['at_step']} of {c['max_steps']} after {c['max_time_minutes']} min" for n, c in cut.items()
        ]
        md += [""]
    return md


def _upstream_params(res: Dict[str, Any], root: Path) -> Dict[str, int]:
    """Parameter count of each SUPERB upstream, from the folder its results name (FBANK: none)."""
    out = {}
    for u, row in res["superb"].items():
        path = next((r.get("upstream_path") for r in row.values() if r.get("upstream_path")), None)
        if path == "fbank":
            out[u] = 0
        elif path:
            n = count_parameters(root / path if not Path(path).is_absolute() else Path(path))
            if n is not None:
                out[u] = n
    return out


def write_report(exp: Path, corpus: str) -> Dict[str, Any]:
    """Write ``exp/results.json``, ``exp/RESULTS.md`` and the plots under ``exp/plots/``; return the dict."""
    exp = Path(exp)
    res = collect(exp, corpus)
    plots = {
        "curves": plot_training_curves(training_runs(exp), exp / "plots" / "training_curves.png"),
        "layer_weights": plot_layer_weights(res["superb"], exp / "plots" / "superb_layer_weights.png"),
        "superb_curves": plot_superb_curves(res["superb"], exp / "plots" / "superb_dev_curves.png"),
    }
    invocations = (exp / "recipe_runs.log").read_text().splitlines() if (exp / "recipe_runs.log").is_file() else []
    res["plots"] = {k: str(Path(v).relative_to(exp)) for k, v in plots.items() if v}
    res["recipe_runs"] = invocations
    for name, text in (
        ("results.json", json.dumps(res, indent=1)),
        ("RESULTS.md", to_markdown(res, exp, plots, invocations)),
    ):
        write_text(exp / name, text)
    return res
