"""One HuBERT-mini training step (forward + backward) on CPU: float32 against bf16 autocast, and
the padding-invariant GroupNorm against the reference (padded statistics). Median of 3.

    python tools/bench_pretrain_step.py [--threads 2]
"""
import argparse
import statistics
import time

import torch

from speechssl.config import load_config
from speechssl.models import build_model
from speechssl.tasks.hubert import HubertPretrainConfig


def step_seconds(model, wavs, lengths, bf16: bool) -> float:
    times = []
    for _ in range(4):
        t = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = model(wavs, lengths)
            loss = out.last_hidden_state.float().pow(2).mean()
        loss.backward()
        times.append(time.perf_counter() - t)
    return statistics.median(times[1:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_config(HubertPretrainConfig, ["pretrain/hubert_mini"])
    torch.manual_seed(0)
    lengths = torch.tensor([128000, 112000, 96000, 80000])  # 26 s of audio, padded to 32 s (16 s x 2)
    wavs = torch.randn(4, int(lengths.max()))
    rows = []
    for name, masked, bf16 in (("float32, masked GroupNorm (default)", True, False),
                               ("float32, reference GroupNorm", False, False),
                               ("bf16 autocast, masked GroupNorm", True, True)):
        model = build_model(cfg.model, **{**cfg.model_overrides, "masked_group_norm": masked}).train()
        rows.append((name, step_seconds(model, wavs, lengths, bf16)))
    audio = float(lengths.sum()) / 16000
    print(f"\n| step (hubert_mini, {audio:.0f} s audio, {args.threads} threads) | seconds | audio s/s | vs default |")
    print("|---|---:|---:|---:|")
    for name, s in rows:
        print(f"| {name} | {s:.2f} | {audio / s:.1f} | {s / rows[0][1]:.2f}x |")


if __name__ == "__main__":
    main()
