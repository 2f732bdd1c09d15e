"""Whole pretraining steps on CPU, side by side in one process: the levers of the demo's throughput.

A step is what the trainer runs for one batch: frontend, masks, encoder, heads, the objective's sums,
backward, AdamW and zero_grad (Lightning's logging aside). The batch is 26 s of audio (four crops
padded to 8 s, as ``data.batch_seconds: 16`` with 8-s crops gives at most), with MFCC-rate labels.
Rows, each against the first row of its model:

* ``hubert_mini``: float32 (the config as written), bf16 autocast, ``torch.compile`` of the pretraining
  model, the reference GroupNorm (padded statistics), and the Fast-HuBERT-style frontend
  (``pretrain/hubert_fast_mini``: log-mel + conv2d to 25 Hz instead of the waveform CNN at 50 Hz).
* ``w2v_bert_mini``: float32, bf16 autocast, ``torch.compile``.

Fastest of ``--repeats`` timed steps after ``--warmup`` (compiled models need two or three), so a
busy machine inflates every row alike.

    python tools/bench_pretrain_step.py [--threads 2] [--repeats 5] [--only hubert|w2v_bert] [--no-compile]
"""

import argparse
import os
from dataclasses import asdict

import torch

from speechssl.config import load_config
from speechssl.tasks.hubert import HubertPretrainConfig, HubertPretrainTask
from speechssl.tasks.w2v_bert import W2vBertPretrainConfig, W2vBertPretrainTask
from speechssl.training import build_optimizer, no_decay_groups
from speechssl.utils.timing import best_time, cpu_name

LENGTHS = (128000, 112000, 96000, 80000)  # samples: 26 s of audio, padded to 4 x 8 s
LABEL_RATE, NUM_CLASSES = 100.0, 100


def make_batch(seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor(LENGTHS)
    wavs = torch.randn(len(LENGTHS), int(lengths.max()), generator=g) * 0.1
    wavs *= torch.arange(wavs.shape[1])[None] < lengths[:, None]
    labels = torch.randint(0, NUM_CLASSES, (len(LENGTHS), int(lengths.max()) * int(LABEL_RATE) // 16000), generator=g)
    return {
        "wavs": wavs,
        "lengths": lengths,
        "seeds": torch.arange(len(LENGTHS)),
        "labels": [labels],
        "utts": [f"u{i}" for i in range(len(LENGTHS))],
    }


def hubert_task(configs, **overrides):
    cfg = load_config(HubertPretrainConfig, configs)
    cfg.model_overrides = {**cfg.model_overrides, **overrides}
    return HubertPretrainTask(asdict(cfg), [NUM_CLASSES], [LABEL_RATE]), cfg


def w2v_bert_task(configs):
    cfg = load_config(W2vBertPretrainConfig, configs)
    return W2vBertPretrainTask(asdict(cfg)), cfg


def step_loss(task, sums) -> torch.Tensor:
    """The objective's loss from its sums, normalised as the task does on one process."""
    if "loss_m" in sums:
        return (sums["loss_m"] + sums["loss_u"]) / sums["n_m"].clamp(min=1)
    return (
        sums["c_loss"] / sums["c_count"].clamp(min=1)
        + sums["m_loss"] / sums["m_count"].clamp(min=1)
        + 0.1 * sums["diversity"]
    )


def time_steps(task, cfg, batch, bf16: bool, compile_model: bool, warmup: int, repeats: int):
    """Seconds of the fastest step, and the first step's loss (the same start for every row of a model)."""
    task.train()
    if compile_model:
        task.model = torch.compile(task.model, dynamic=False)
    built = build_optimizer(no_decay_groups(task, cfg.optim.weight_decay), cfg.optim)
    opt = built["optimizer"] if isinstance(built, dict) else built
    losses = []

    def one():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            sums = task.compute_sums(batch)
        loss = step_loss(task, sums)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))

    return best_time(one, repeat=repeats, warmup=warmup), losses[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--only", choices=("hubert", "w2v_bert"))
    ap.add_argument("--no-compile", action="store_true", help="skip the torch.compile rows (minutes to compile)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    batch = make_batch()
    audio = sum(LENGTHS) / 16000
    hubert = ["pretrain/hubert_mini"]
    rows = []
    if args.only != "w2v_bert":
        rows += [
            ("hubert_mini", "float32 (as configured)", lambda: hubert_task(hubert), False, False),
            ("hubert_mini", "bf16 autocast", lambda: hubert_task(hubert), True, False),
            ("hubert_mini", "float32, torch.compile", lambda: hubert_task(hubert), False, True),
            (
                "hubert_mini",
                "float32, reference GroupNorm (padded statistics)",
                lambda: hubert_task(hubert, masked_group_norm=False),
                False,
                False,
            ),
            (
                "hubert_mini",
                "Fast-HuBERT frontend (25 Hz), float32",
                lambda: hubert_task(hubert + ["pretrain/hubert_fast_mini"]),
                False,
                False,
            ),
            (
                "hubert_mini",
                "Fast-HuBERT frontend (25 Hz), bf16 autocast",
                lambda: hubert_task(hubert + ["pretrain/hubert_fast_mini"]),
                True,
                False,
            ),
        ]
    if args.only != "hubert":
        w2v = ["pretrain/w2v_bert_mini"]
        rows += [
            ("w2v_bert_mini", "float32", lambda: w2v_bert_task(w2v), False, False),
            ("w2v_bert_mini", "bf16 autocast", lambda: w2v_bert_task(w2v), True, False),
            ("w2v_bert_mini", "float32, torch.compile", lambda: w2v_bert_task(w2v), False, True),
        ]
    if args.no_compile:
        rows = [r for r in rows if not r[4]]
    print(
        f"CPU: {cpu_name()}, {args.threads} threads, torch {torch.__version__}, "
        f"{os.cpu_count()} CPUs visible; {audio:.0f} s of audio a step"
    )
    print("\n| model | step | seconds | audio s/s | steps/s vs first row | first loss |\n|---|---|---:|---:|---:|---:|")
    base = {}
    for model, name, make, bf16, comp in rows:
        torch.manual_seed(0)  # the same initial weights for every row of a model
        task, cfg = make()
        seconds, loss = time_steps(task, cfg, batch, bf16, comp, args.warmup + (2 if comp else 0), args.repeats)
        base.setdefault(model, seconds)
        print(
            f"| {model} | {name} | {seconds:.3f} | {audio / seconds:.1f} | {base[model] / seconds:.2f}x | {loss:.3f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
