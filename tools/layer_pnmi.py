"""PNMI of k-means labels per layer of one or more models: which layer to cluster for the next
HuBERT iteration, and whether training beat the untrained copy (``OUT/init``).

    python tools/layer_pnmi.py --models exp/hubert_it1/final exp/hubert_it1/init \\
        --data data/train --layers 1,2,3,4,5,6 -k 100 --mfcc exp/mfcc/train

Extracts the layers into a temporary folder, learns k-means on them (one restart) and prints a
Markdown table of PNMI / phone purity, with MFCC at the same k as a row when ``--mfcc`` is given.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", required=True)
    ap.add_argument("--data", required=True, help="data dir with alignments.ctm")
    ap.add_argument("--layers", default="all")
    ap.add_argument("-k", type=int, default=100)
    ap.add_argument("--mfcc", help="MFCC features of the same data dir (a `speechssl features` folder)")
    ap.add_argument("--json", help="write the results here too")
    args = ap.parse_args()

    from speechssl import load_model
    from speechssl.clustering import FeatureSource, assign_labels, evaluate_labels, learn_kmeans, read_labels
    from speechssl.pipelines.extract import extract_features, parse_layers

    def quality(src: FeatureSource, work: Path) -> dict:
        km = learn_kmeans(src, args.k, restarts=1)
        assign_labels(km, src, work, progress=False)
        return evaluate_labels(read_labels(work), args.data, src.frame_rate, args.k)

    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        if args.mfcc:
            rows["mfcc"] = {"-": quality(FeatureSource.open(args.mfcc), Path(tmp) / "mfcc")}
        for i, m in enumerate(args.models):
            model = load_model(m)
            layers = parse_layers(args.layers, model.num_layers)
            out = Path(tmp) / f"m{i}"
            extract_features(model, args.data, out, layers, fmt="npy", progress=False)
            rows[m] = {
                str(layer): quality(FeatureSource.open(f"{out}:{layer}"), out / f"km{layer}") for layer in layers
            }
    print(f"\nPNMI (phone purity) with k={args.k} on {args.data}\n")
    print("| features | layer | PNMI | phone purity | cluster purity |\n|---|---:|---:|---:|---:|")
    for name, per_layer in rows.items():
        for layer, q in per_layer.items():
            print(f"| {name} | {layer} | {q['pnmi']:.4f} | {q['phone_purity']:.4f} | {q['cluster_purity']:.4f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
