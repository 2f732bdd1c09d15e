"""Masked accuracy and layer PNMI of a HuBERT run against training time: PNG + JSON.

    python tools/plot_hubert_progress.py --run exp/hubert_it1 --data data/dev --layer 4 -k 100 \\
        --mfcc exp/mfcc/dev --out exp/hubert_it1/progress.png

For every checkpoint in RUN/checkpoints (keep them all: ``trainer.keep_checkpoints=-1``) the
encoder's layer is extracted on the data dir, clustered (faiss, k clusters) and scored (PNMI);
the untrained copy (RUN/init) is the point at 0 s. Validation masked accuracy comes from the
run's logs. MFCC at the same k is drawn as a horizontal line.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--layer", type=int, default=4)
    ap.add_argument("-k", type=int, default=100)
    ap.add_argument("--mfcc")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from speechssl import load_model
    from speechssl.clustering import FeatureSource, assign_labels, evaluate_labels, learn_kmeans, read_labels
    from speechssl.pipelines.extract import extract_features
    from speechssl.training import read_metrics

    run = Path(args.run)

    def pnmi(src, work):
        km = learn_kmeans(src, args.k, restarts=1)
        assign_labels(km, src, work, progress=False)
        return evaluate_labels(read_labels(work), args.data, src.frame_rate, args.k)["pnmi"]

    points = []
    model = load_model(run / "init")
    with tempfile.TemporaryDirectory() as tmp:
        ckpts = sorted((run / "checkpoints").glob("step*.ckpt"))
        for i, ckpt in enumerate([None] + ckpts):
            seconds, step = 0.0, 0
            if ckpt is not None:
                state = torch.load(ckpt, map_location="cpu", weights_only=False)
                model.load_state_dict(
                    {k[len("encoder.") :]: v for k, v in state["state_dict"].items() if k.startswith("encoder.")}
                )
                seconds, step = state.get("trained_seconds", 0.0), state["global_step"]
            out = Path(tmp) / f"c{i}"
            extract_features(model.eval(), args.data, out, [args.layer], fmt="npy", progress=False)
            points.append(
                {
                    "step": step,
                    "trained_seconds": round(seconds, 1),
                    "pnmi": pnmi(FeatureSource.open(f"{out}:{args.layer}"), out / "km"),
                }
            )
            print(points[-1], flush=True)
        mfcc = pnmi(FeatureSource.open(args.mfcc), Path(tmp) / "mfcc") if args.mfcc else None
    val = {int(r["step"]): r["val/acc_m"] for r in read_metrics(run) if "val/acc_m" in r}
    for p in points:
        near = [s for s in val if abs(s - p["step"]) <= 1]
        p["val_acc_m"] = val[near[0]] if near else None

    fig, ax = plt.subplots(figsize=(7, 4))
    t = [p["trained_seconds"] / 60 for p in points]
    ax.plot(t, [p["pnmi"] for p in points], "o-", label=f"PNMI, layer {args.layer} (k={args.k})")
    if mfcc is not None:
        ax.axhline(mfcc, color="gray", ls="--", label=f"PNMI, MFCC (k={args.k})")
    acc = [(x, p["val_acc_m"]) for x, p in zip(t, points) if p["val_acc_m"] is not None]
    if acc:
        ax.plot(*zip(*acc), "s-", color="tab:red", label="validation masked accuracy")
    ax.axhline(1 / args.k, color="tab:red", ls=":", lw=0.8, label="chance accuracy")
    ax.set_xlabel("training time (CPU minutes, 2 cores)")
    ax.set_ylim(0, max(0.5, max(p["pnmi"] for p in points) + 0.05))
    ax.legend(fontsize=8)
    ax.set_title(f"{run}: on {args.data}")
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    Path(args.out).with_suffix(".json").write_text(json.dumps({"mfcc_pnmi": mfcc, "points": points}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
