#!/usr/bin/env python
"""The on-device story LightHuBERT exists for, measured: size and CPU latency of the LightHuBERT Base and
Small subnets and their HuBERT Base teacher as torch (eager), onnxruntime float32 and onnxruntime int8
(dynamic quantization of the MatMul weights), side by side in one process; and, given a trained subnet
and a SUPERB-mini task, what int8 costs on that task.

Latency: batch 1, ``--seconds`` of audio, the median of ``--repeats`` runs after a warm-up, every runtime
on the same number of threads. Weights are random for the latency table (time and size do not depend on
their values); "int8 cos" is the mean cosine similarity of the last hidden state, int8 against float32.

    python tools/bench_export.py [--seconds 4] [--repeats 5] [--threads 2]
    python tools/bench_export.py --superb-model exp/lighthubert/searched --superb-tasks superb --task ks
"""

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from speechssl.interop.onnx_export import export_onnx, onnx_session, run_onnx
from speechssl.models import build_model
from speechssl.models.lighthubert import build_supernet
from speechssl.utils.timing import cpu_name


def models():
    yield "HuBERT Base (teacher)", build_model("hubert_base").eval()
    base = build_supernet("hubert_base", "lighthubert/space_base").eval()
    for which in ("max", "default", "min"):
        base.set_subnet(getattr(base, f"{which}_subnet")())
        yield f"LightHuBERT Base {which}", base.export().eval()
    small = build_supernet("hubert_base", "lighthubert/space_small").eval()
    small.set_subnet(small.default_subnet())
    yield "LightHuBERT Small default", small.export().eval()


def median_seconds(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def latency_table(seconds: float, repeats: int, threads: int):
    torch.manual_seed(0)
    wav = torch.randn(1, int(16000 * seconds)) * 0.1
    lengths = torch.tensor([wav.shape[1]])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, model in models():
            params = sum(p.numel() for p in model.parameters())
            path = Path(tmp) / (name.replace(" ", "_").replace("(", "").replace(")", "") + ".onnx")
            summary = export_onnx(model, path, quantize=True)
            fp32, int8 = onnx_session(path, threads), onnx_session(summary["int8"], threads)
            with torch.inference_mode():
                t_torch = median_seconds(lambda model=model: model(wav, lengths), repeats)
                ref = model(wav, lengths).hidden_states[-1][0].numpy()
            t_fp32 = median_seconds(lambda s=fp32: run_onnx(s, wav, lengths), repeats)
            t_int8 = median_seconds(lambda s=int8: run_onnx(s, wav, lengths), repeats)
            q = run_onnx(int8, wav, lengths)[-1][0]
            cos = float(np.mean((q * ref).sum(-1) / (np.linalg.norm(q, axis=-1) * np.linalg.norm(ref, axis=-1))))
            rows.append(
                dict(
                    model=name,
                    params_M=round(params / 1e6, 2),
                    torch_MB=round(params * 4 / 2**20, 1),
                    onnx_MB=round(summary["bytes"] / 2**20, 1),
                    int8_MB=round(summary["int8_bytes"] / 2**20, 1),
                    torch_ms=round(t_torch * 1e3, 1),
                    onnx_ms=round(t_fp32 * 1e3, 1),
                    int8_ms=round(t_int8 * 1e3, 1),
                    int8_cos=round(cos, 4),
                )
            )
            print(json.dumps(rows[-1]), flush=True)
    return rows


def superb_int8_cost(model_dir: str, tasks_dir: str, task: str, out: str, overrides):
    """The task's test metric with the float32 model and with its int8 ONNX graph, heads trained alike."""
    from speechssl.tasks.superb import run_benchmark

    onnx = Path(out) / "model.onnx"
    from speechssl.hub import load_upstream

    summary = export_onnx(load_upstream(model_dir), onnx, quantize=True)
    results = {}
    for label, spec in (("float32", model_dir), ("int8", summary["int8"])):
        r = run_benchmark([f"{label}={spec}"], [task], tasks_dir, str(Path(out) / "superb"), overrides=overrides)[0]
        results[label] = r["value"]
        print(f"{task} {r['metric']} with {label} upstream: {r['value']:.2f}", flush=True)
    return {"task": task, **results, "delta": round(results["int8"] - results["float32"], 3)}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--superb-model", help="a trained (subnet) folder; with --superb-tasks: the int8 cost on --task")
    p.add_argument("--superb-tasks", help="SUPERB task dirs (speechssl data prep-superb --out)")
    p.add_argument("--task", default="ks")
    p.add_argument("--out", default="exp/bench_export")
    p.add_argument("--skip-latency", action="store_true")
    p.add_argument("overrides", nargs="*", help="key=value for the SUPERB config")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"CPU: {cpu_name()}, {args.threads} threads; torch {torch.__version__}; batch 1 x {args.seconds:g} s")
    report = {"cpu": cpu_name(), "threads": args.threads, "seconds": args.seconds}
    if not args.skip_latency:
        rows = latency_table(args.seconds, args.repeats, args.threads)
        print("\n| model | params (M) | torch MB | ONNX MB | int8 MB | torch ms | ONNX ms | int8 ms | int8 cos |")
        print("|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            print("| " + " | ".join(str(v) for v in r.values()) + " |")
        report["latency"] = rows
    if args.superb_model and args.superb_tasks:
        report["superb"] = superb_int8_cost(args.superb_model, args.superb_tasks, args.task, args.out, args.overrides)
        print(json.dumps(report["superb"]))
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "bench_export.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
