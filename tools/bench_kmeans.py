"""faiss k-means (ours) against scikit-learn's MiniBatchKMeans (fairseq's HuBERT recipe) on the
same features and cluster count, one run each: wall time, inertia per frame, and PNMI of the
labels when the data dir has phone alignments.

    python tools/bench_kmeans.py --feats exp/mfcc/train --data data/train -k 100
    python tools/bench_kmeans.py            # builds the tiny corpus + MFCC in a temp dir

fairseq's settings for the peer: init k-means++, max_iter 100, batch_size 10000, n_init 20,
reassignment_ratio 0, max_no_improvement 100, tol 0 (``learn_kmeans.py``).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from speechssl.utils.memory import peak_rss_bytes, reset_peak_rss


def _peak_mib() -> float:
    return peak_rss_bytes() / 2**20


def main() -> None:
    reset_peak_rss()  # this process's peak, not its parent's (Linux carries the mark across exec)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--feats", help="features (scp / features folder / extract folder:LAYER)")
    ap.add_argument("--data", help="data dir with alignments.ctm (for PNMI)")
    ap.add_argument("-k", type=int, default=100)
    ap.add_argument("--restarts", type=int, default=3, help="our restarts (the peer uses n_init=20 inits)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import faiss
    from sklearn.cluster import MiniBatchKMeans
    from threadpoolctl import threadpool_limits

    from speechssl.clustering import FeatureSource, cluster_quality, learn_kmeans
    from speechssl.clustering.kmeans import sample_frames
    from speechssl.clustering.metrics import frame_phones, joint_counts

    faiss.omp_set_num_threads(args.threads)
    if args.feats is None:
        from speechssl.corpus.synth import synthesize_corpus
        from speechssl.data.librispeech import prepare_librispeech
        from speechssl.pipelines.features import compute_features

        tmp = Path(tempfile.mkdtemp())
        synthesize_corpus(tmp / "corpus", "tiny", progress=False)
        prepare_librispeech(tmp / "corpus", "train", tmp / "data")
        compute_features(tmp / "data", tmp / "mfcc", "mfcc", deltas=True, cmvn="utt", progress=False)
        args.feats, args.data = str(tmp / "mfcc"), str(tmp / "data")
    src = FeatureSource.open(args.feats)
    feats = dict(src)
    x, total = sample_frames(iter(feats.items()), 1.0, 10**9)
    print(
        f"features: {src.path} ({len(feats)} utterances, {total} frames, dim {x.shape[1]}), k={args.k}, "
        f"{args.threads} threads"
    )

    t0 = time.perf_counter()
    ours = learn_kmeans(src, args.k, restarts=args.restarts, threads=args.threads)
    t_ours = time.perf_counter() - t0
    with threadpool_limits(args.threads):
        t0 = time.perf_counter()
        peer = MiniBatchKMeans(
            n_clusters=args.k,
            init="k-means++",
            max_iter=100,
            batch_size=10000,
            n_init=20,
            reassignment_ratio=0.0,
            max_no_improvement=100,
            tol=0.0,
            random_state=0,
            compute_labels=False,
        ).fit(x)
        t_peer = time.perf_counter() - t0

    def inertia(c):
        index = faiss.IndexFlatL2(c.shape[1])
        index.add(np.ascontiguousarray(c, dtype=np.float32))
        d, lab = index.search(x, 1)
        return float(d.mean()), lab[:, 0]

    rows = []
    for name, cent, secs in (
        ("faiss (speechssl)", ours.centroids, t_ours),
        ("sklearn MiniBatchKMeans", peer.cluster_centers_, t_peer),
    ):
        inert, _ = inertia(cent)
        pnmi = None
        if args.data and (Path(args.data) / "alignments.ctm").exists():
            phones = frame_phones((Path(args.data) / "alignments.ctm").read_text(), src.frame_rate)
            index = faiss.IndexFlatL2(cent.shape[1])
            index.add(np.ascontiguousarray(cent, dtype=np.float32))
            pairs = []
            for u, a in feats.items():
                lab = index.search(np.ascontiguousarray(a), 1)[1][:, 0]
                n = min(len(lab), len(phones[u]))
                pairs.append((phones[u][:n], lab[:n]))
            pnmi = cluster_quality(joint_counts(pairs, args.k)[0])["pnmi"]
        rows.append((name, secs, inert, pnmi))
    print("\n| k-means | seconds | inertia / frame | PNMI |\n|---|---:|---:|---:|")
    for name, secs, inert, pnmi in rows:
        print(f"| {name} | {secs:.1f} | {inert:.2f} | {'' if pnmi is None else f'{pnmi:.4f}'} |")
    print(
        f"\ntime ratio sklearn / faiss: {t_peer / t_ours:.2f}x; inertia ratio sklearn / faiss: "
        f"{rows[1][2] / rows[0][2]:.4f}; peak RSS {_peak_mib():.0f} MiB"
    )


if __name__ == "__main__":
    main()
