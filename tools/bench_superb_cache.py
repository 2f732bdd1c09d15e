"""SUPERB feature cache: one utterance per forward pass against 40-s batches, side by side in one process.

    python tools/bench_superb_cache.py --model exp/hubert_it2/final --data data/dev

Prints the extraction time of both, their ratio, and how far the batched float16 states stand from the
single ones (the padding-dependent rounding that made SUPERB heads differ between runs).
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time

import numpy as np


def cpu_name() -> str:
    try:
        return next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--layer", type=int, default=1, help="hidden state compared")
    args = ap.parse_args()

    from speechssl import load_model
    from speechssl.pipelines.extract import extract_features, read_features

    model = load_model(args.model)
    states, seconds = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, max_utts in (("batched (40 s)", None), ("one per pass", 1)):
            t = time.perf_counter()
            extract_features(
                model,
                args.data,
                f"{tmp}/{max_utts}",
                "all",
                "npy",
                dtype="float16",
                batch_seconds=40.0,
                progress=False,
                max_utts=max_utts,
            )
            seconds[name] = time.perf_counter() - t
            states[name] = {u: a.astype(np.float32) for u, a in read_features(f"{tmp}/{max_utts}", args.layer)}
    a, b = states.values()
    diff = [float(np.abs(a[u] - b[u]).max()) for u in a]
    print(f"CPU: {cpu_name()}, model {args.model}, {len(a)} utterances of {args.data}")
    for name, s in seconds.items():
        print(f"  {name:16s} {s:6.2f} s")
    print(f"  one-per-pass / batched time: {seconds['one per pass'] / seconds['batched (40 s)']:.2f}x")
    print(
        f"  utterances whose layer-{args.layer} states differ: {sum(d > 0 for d in diff)} of {len(diff)}; "
        f"largest |difference| {max(diff):.4g} (median scale {np.median([np.abs(x).max() for x in b.values()]):.3g})"
    )


if __name__ == "__main__":
    main()
