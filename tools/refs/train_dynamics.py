"""HuBERT training dynamics beside fairseq: ``fairseq-hydra-train`` (fairseq's HuBERT task, model and criterion)
and ``speechssl pretrain hubert`` on the same data dir and k-means labels, the same tiny model, schedule, batch
size in audio seconds, masking and loss weights, for the same number of updates. What cannot be the same is
the randomness (batches, crops, masks, initial weights): the two curves are compared within a band.

    .refs/venv/bin/python tools/refs/train_dynamics.py --data ../shared/testdata/librispeech --work /tmp/dyn \
        [--updates 300] [--k 20] [--plot docs/figures/crosscheck_hubert_dynamics.png]

Writes WORK/curves.json ({"fairseq": {seed: [[update, loss_m, acc_m], ...]}, "speechssl": ...}: means over windows
of --log-every updates, losses in nats; fairseq logs bits, converted here) and WORK/summary.json (the mean of the
last updates of each run), and prints them. Labels: MFCC + deltas (fairseq's float-scale recipe),
faiss k-means by ``speechssl kmeans``; exported to fairseq's layout (train.tsv, train.km, dict.km.txt) here.
"""

import argparse
import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import soundfile as sf

MODEL = dict(
    conv_feature_layers="[(32, 10, 5)] + [(32, 3, 2)] * 4 + [(32, 2, 2)] * 2",
    encoder_layers=2,
    encoder_embed_dim=64,
    encoder_ffn_embed_dim=128,
    encoder_attention_heads=4,
    conv_pos=16,
    conv_pos_groups=4,
    final_dim=32,
    layer_norm_first=True,
)
OURS_MODEL = dict(
    conv_layers=[[32, 10, 5]] + [[32, 3, 2]] * 4 + [[32, 2, 2]] * 2,
    hidden_size=64,
    num_layers=2,
    num_heads=4,
    ffn_dim=128,
    pos_conv_kernel=16,
    pos_conv_groups=4,
    layer_norm_first=True,
    dropout=0.0,
    attention_dropout=0.0,
    feature_dropout=0.0,
    layerdrop=0.0,
)


def run(cmd, log: Path, env=None):
    print("+", " ".join(map(str, cmd)), flush=True)
    with open(log, "w") as f:
        done = subprocess.run([str(c) for c in cmd], stdout=f, stderr=subprocess.STDOUT, env=env)
    if done.returncode:
        sys.exit(f"failed ({done.returncode}): see {log}")


def speechssl(*args):
    return [sys.executable, "-m", "speechssl.cli.main", *args]


def as_16k_data_dir(data: Path, work: Path) -> Path:
    """The data dir with every recording read by speechssl (16 kHz mono) and written as 16-bit wav, so that both
    toolkits read the same samples (fairseq refuses other rates)."""
    import numpy as np

    from speechssl.audio.io import load

    out = work / "data"
    (out / "audio").mkdir(parents=True, exist_ok=True)
    lines = []
    for line in (data / "wav.scp").read_text().splitlines():
        utt, path = line.split(maxsplit=1)
        src = Path(path) if Path(path).is_absolute() else data / path
        dst = out / "audio" / f"{utt}.wav"
        if not dst.exists():
            sf.write(str(dst), np.clip(load(src), -1, 1), 16000, subtype="PCM_16")
        lines.append(f"{utt} {dst}")
    (out / "wav.scp").write_text("\n".join(lines) + "\n")
    for name in ("utt2spk", "spk2utt", "text"):
        if (data / name).is_file():
            (out / name).write_text((data / name).read_text())
    return out


def labels_and_manifest(data: Path, work: Path, k: int):
    """MFCC k-means labels by speechssl, then fairseq's manifest + .km + dict of the same utterances."""
    if not (work / "km/train/labels.txt").is_file():
        run(
            speechssl(
                "features",
                "--data",
                data,
                "--out",
                work / "mfcc",
                "--type",
                "mfcc",
                "--deltas",
                "--cmvn",
                "utt",
                "--scale",
                "float",
            ),
            work / "features.log",
        )
        run(
            speechssl(
                "kmeans",
                "learn",
                "--feats",
                work / "mfcc",
                "-k",
                k,
                "--out",
                work / "km",
                "--restarts",
                1,
                "--niter",
                50,
            ),
            work / "learn.log",
        )
        run(
            speechssl("kmeans", "assign", "--model", work / "km", "--feats", work / "mfcc", "--out", work / "km/train"),
            work / "assign.log",
        )
    labels = dict(line.split(maxsplit=1) for line in (work / "km/train/labels.txt").read_text().splitlines())
    fs = work / "fairseq_data"
    fs.mkdir(exist_ok=True)
    rows, kms = [], []
    for line in (data / "wav.scp").read_text().splitlines():
        utt, path = line.split(maxsplit=1)
        path = Path(path) if Path(path).is_absolute() else (data / path)
        rows.append(f"{path.resolve()}\t{sf.info(str(path)).frames}")
        kms.append(labels[utt].strip())
    for split in ("train", "valid"):
        (fs / f"{split}.tsv").write_text("/\n" + "\n".join(rows) + "\n")
        (fs / f"{split}.km").write_text("\n".join(kms) + "\n")
    (fs / "dict.km.txt").write_text("".join(f"{i} 1\n" for i in range(k)))
    return fs


def fairseq_run(fs_data: Path, work: Path, a, seed: int) -> list:
    out = work / f"fairseq_run{seed}"
    cfg = {
        "common": {"cpu": True, "log_format": "json", "log_interval": a.log_every, "seed": seed},
        "checkpoint": {"no_save": True},
        "distributed_training": {"distributed_world_size": 1},
        "task": {
            "_name": "hubert_pretraining",
            "data": str(fs_data),
            "label_dir": str(fs_data),
            "labels": ["km"],
            "label_rate": 100.0,
            "sample_rate": 16000,
            "max_sample_size": int(a.crop_seconds * 16000),
            "min_sample_size": 16000,
            "pad_audio": False,
            "random_crop": True,
            "normalize": False,
        },
        "dataset": {
            "num_workers": 0,
            "max_tokens": int(a.batch_seconds * 16000),
            "validate_interval": 10_000,
            "disable_validation": True,
            "skip_invalid_size_inputs_valid_test": True,
        },
        "criterion": {"_name": "hubert", "pred_masked_weight": 1.0, "pred_nomask_weight": 0.0, "loss_weights": [10.0]},
        "optimization": {"max_update": a.updates, "lr": [a.lr], "clip_norm": 10.0},
        "optimizer": {"_name": "adam", "adam_betas": "(0.9,0.98)", "adam_eps": 1e-06, "weight_decay": 0.01},
        "lr_scheduler": {"_name": "polynomial_decay", "warmup_updates": a.warmup, "total_num_update": a.updates},
        "model": {
            "_name": "hubert",
            "label_rate": 100.0,
            "mask_prob": 0.8,
            "mask_length": 10,
            "extractor_mode": "default",
            "encoder_layerdrop": 0.0,
            "dropout_input": 0.0,
            "dropout_features": 0.0,
            "dropout": 0.0,
            "attention_dropout": 0.0,
            "activation_dropout": 0.0,
            "feature_grad_mult": 0.1,
            "untie_final_proj": True,
            **MODEL,
        },
        "hydra": {"run": {"dir": str(out)}},
    }
    conf = work / "fairseq_conf"
    conf.mkdir(exist_ok=True)
    import yaml

    (conf / f"tiny{seed}.yaml").write_text(yaml.safe_dump(cfg))
    log = work / f"fairseq_train{seed}.log"
    env = {**os.environ, "OMP_NUM_THREADS": str(a.threads)}
    run(
        [Path(sys.executable).parent / "fairseq-hydra-train", "--config-dir", conf, "--config-name", f"tiny{seed}"],
        log,
        env,
    )
    curve = []
    for line in log.read_text().splitlines():
        if "train_inner" not in line or "{" not in line:
            continue
        rec = json.loads(line[line.index("{") :])
        curve.append([int(rec["num_updates"]), float(rec["loss_m_0"]) * math.log(2), float(rec["correct_m_0"])])
    return curve


def with_fairseq_specials(work: Path) -> Path:
    """Our labels as fairseq's ``Dictionary`` numbers them: four special symbols (bos, pad, eos, unk) first, so
    cluster ``c`` is class ``c + 4`` of ``k + 4``. fairseq's HuBERT scores every frame against all ``k + 4``
    label embeddings (the four never being a target); this makes our run do the same."""
    src, dst = work / "km/train", work / "km_fairseq_ids/train"
    dst.mkdir(parents=True, exist_ok=True)
    meta = json.loads((src / "kmeans.json").read_text())
    meta["k"] += 4
    (dst / "kmeans.json").write_text(json.dumps(meta))
    lines = []
    for line in (src / "labels.txt").read_text().splitlines():
        utt, *ids = line.split()
        lines.append(" ".join([utt] + [str(int(i) + 4) for i in ids]))
    (dst / "labels.txt").write_text("\n".join(lines) + "\n")
    return dst


def ours_run(data: Path, work: Path, a, seed: int) -> list:
    """Our run, logged every update and averaged over windows of ``a.log_every`` updates as fairseq's
    ``train_inner`` lines are."""
    import yaml

    out = work / f"ours_run{seed}"
    labels = str(with_fairseq_specials(work) if a.fairseq_specials else work / "km/train")
    cfg = {
        "model": "hubert_small",
        "model_overrides": OURS_MODEL,
        "data": {
            "train": str(data),
            "valid": str(data),
            "train_labels": [labels],
            "valid_labels": [labels],
            "batch_seconds": a.batch_seconds,
            "crop_seconds": a.crop_seconds,
            "num_workers": 0,
        },
        "objective": {
            "mask_prob": 0.8,
            "mask_length": 10,
            "pred_nomask_weight": 0.0,
            "feature_pen_weight": 10.0,
            "feature_grad_mult": 0.1,
            "final_dim": MODEL["final_dim"],
        },
        "optim": {
            "lr": a.lr,
            "warmup_steps": a.warmup,
            "total_steps": a.updates,
            "betas": [0.9, 0.98],
            "eps": 1e-6,
            "weight_decay": 0.01,
            "grad_clip": 10.0,
        },
        "trainer": {
            "out_dir": str(out),
            "max_steps": a.updates,
            "val_every_steps": None,
            "log_every_steps": 1,
            "checkpoint_every_steps": a.updates,
            "progress_bar": False,
            "precision": "32-true",
            "seed": seed,
            "accelerator": "cpu",
            "devices": 1,
        },
    }
    (work / f"ours{seed}.yaml").write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "OMP_NUM_THREADS": str(a.threads)}
    run(speechssl("pretrain", "hubert", "--config", work / f"ours{seed}.yaml"), work / f"ours_train{seed}.log", env)
    metrics = sorted(out.glob("logs/version_*/metrics.csv"))[-1]
    steps = {}
    with open(metrics) as f:
        for row in csv.DictReader(f):
            if row.get("train/loss_m"):
                steps[int(row["step"]) + 1] = (float(row["train/loss_m"]), float(row["train/acc_m"]))
    curve = []
    for end in range(a.log_every, a.updates + 1, a.log_every):
        window = [steps[u] for u in range(end - a.log_every + 1, end + 1) if u in steps]
        if window:
            curve.append([end, sum(w[0] for w in window) / len(window), sum(w[1] for w in window) / len(window)])
    return curve


def tail_mean(curve, key, last):
    pts = [c[key] for c in curve if c[0] > curve[-1][0] - last]
    return sum(pts) / len(pts)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--updates", type=int, default=300)
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--batch-seconds", type=float, default=8.0)
    ap.add_argument("--crop-seconds", type=float, default=4.0)
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--fairseq-specials",
        type=int,
        default=1,
        help="1: our run also scores against fairseq's 4 "
        "special-symbol classes (the same softmax); 0: our default, the k clusters only",
    )
    ap.add_argument("--seeds", type=int, default=3, help="runs of each toolkit, seeds 1..N")
    ap.add_argument("--plot", type=Path)
    a = ap.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    work = a.work.resolve()
    data = as_16k_data_dir(a.data.resolve(), work)
    fs_data = labels_and_manifest(data, work, a.k)
    runs = {"fairseq": {}, "speechssl": {}}
    for seed in range(1, a.seeds + 1):
        runs["fairseq"][seed] = fairseq_run(fs_data, work, a, seed)
        runs["speechssl"][seed] = ours_run(data, work, a, seed)
    (work / "curves.json").write_text(json.dumps(runs))
    last = max(50, a.updates // 6)
    summary = {}
    for name, by_seed in runs.items():
        finals = {seed: (tail_mean(c, 1, last), tail_mean(c, 2, last)) for seed, c in by_seed.items()}
        losses, accs = [f[0] for f in finals.values()], [f[1] for f in finals.values()]
        summary[name] = {"first_loss_m": [c[0][1] for c in by_seed.values()], "loss_m": losses, "acc_m": accs}
        print(
            f"{name}: mean of the last {last} updates over seeds {sorted(finals)}: loss_m "
            + ", ".join(f"{x:.3f}" for x in losses)
            + f" (mean {sum(losses) / len(losses):.3f}, spread {max(losses) - min(losses):.3f}); acc_m "
            + ", ".join(f"{x:.3f}" for x in accs)
            + f" (mean {sum(accs) / len(accs):.3f}, spread {max(accs) - min(accs):.3f})"
        )
    (work / "summary.json").write_text(json.dumps(summary, indent=1))
    if a.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
        for (name, by_seed), colour in zip(runs.items(), ("C0", "C1")):
            for i, c in enumerate(by_seed.values()):
                axes[0].plot([p[0] for p in c], [p[1] for p in c], colour, alpha=0.8, label=name if i == 0 else None)
                axes[1].plot([p[0] for p in c], [p[2] for p in c], colour, alpha=0.8)
        axes[0].set(xlabel="update", ylabel="masked loss (nats)")
        axes[1].set(xlabel="update", ylabel="masked accuracy")
        axes[0].legend()
        fig.tight_layout()
        a.plot.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(a.plot, dpi=100)
        print(f"plot: {a.plot}")


if __name__ == "__main__":
    main()
