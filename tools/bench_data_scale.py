#!/usr/bin/env python
"""Data loading as the corpus grows: the Kaldi data-dir path (map-style dataset, whole label files in
memory) against the shard path (streamed WebDataset shards, labels inside), side by side.

A data dir with its k-means labels is replicated 1x, 4x and 16x by reference (new utterance ids pointing at
the same audio files; the shards of the 1x corpus written once and linked, with their listings renamed),
and each (path, size, workers) runs in a fresh process: ``--batches`` training batches of
``--batch-seconds`` with 2 s crops, timed, with the peak RSS of the process and of its loader workers.

    python tools/bench_data_scale.py --data <recipe>/data/train --labels <recipe>/exp/kmeans/mfcc_k100/train
"""

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from speechssl.utils.memory import peak_rss_bytes, reset_peak_rss


def replicate_dir(data: Path, labels: Path, factor: int, out: Path):
    """``out/data``, ``out/labels``: every utterance ``factor`` times as ``r<i>-<utt>`` (same audio files)."""
    from speechssl.data.kaldi_dir import DataDir

    d = DataDir.read(data)
    durs = d.utt2dur or d.compute_utt2dur()
    rep = DataDir(utt2dur={})
    for i in range(factor):
        for u in d.utt_ids:
            rep.wav_scp[f"r{i}-{u}"] = d.audio_source(u)[0]
            rep.utt2spk[f"r{i}-{u}"] = f"r{i}-{d.utt2spk[u]}"
            rep.utt2dur[f"r{i}-{u}"] = durs[u]
    rep.write(out / "data")
    (out / "labels").mkdir(parents=True, exist_ok=True)
    lines = (labels / "labels.txt").read_text().splitlines()
    with open(out / "labels" / "labels.txt", "w") as f:
        for i in range(factor):
            for line in lines:
                f.write(f"r{i}-{line}\n")
    shutil.copy(labels / "kmeans.json", out / "labels" / "kmeans.json")


def replicate_shards(base: Path, factor: int, out: Path):
    """``factor`` copies of the 1x shards by symbolic link, listings with ``r<i>-`` ids, a new index."""
    index = json.loads((base / "index.json").read_text())
    out.mkdir(parents=True, exist_ok=True)
    shards = []
    for i in range(factor):
        for s in index["shards"]:
            name = f"shard-{len(shards):06d}"
            link = out / f"{name}.tar"
            if not link.exists():
                link.symlink_to((base / f"{s['name']}.tar").resolve())
            listing = json.loads((base / f"{s['name']}.json").read_text())
            (out / f"{name}.json").write_text(json.dumps([[k, f"r{i}-{u}", sec] for k, u, sec in listing]))
            shards.append({**s, "name": name})
    (out / "index.json").write_text(
        json.dumps(
            {
                **index,
                "shards": shards,
                "utterances": index["utterances"] * factor,
                "seconds": index["seconds"] * factor,
            }
        )
    )


def measure(path: str, root: str, workers: int, batches: int, batch_seconds: float) -> dict:
    """In this (fresh) process: load ``batches`` batches; throughput and peak RSS."""
    reset_peak_rss()  # this process's peak, not its parent's (Linux carries the mark across exec)
    import torch

    torch.set_num_threads(1)
    from speechssl.tasks.common import AudioDataConfig
    from speechssl.tasks.data_source import audio_data_module

    root = Path(root)
    common = dict(
        batch_seconds=batch_seconds,
        crop_seconds=2.0,
        num_workers=workers,
        valid=None,
        persistent_workers=False,
        pin_memory=False,
    )
    t0 = time.perf_counter()
    if path == "kaldi":
        dm = audio_data_module(AudioDataConfig(train=str(root / "data"), **common), [str(root / "labels")])
    else:
        dm = audio_data_module(AudioDataConfig(shards=str(root), **common))
    dm.setup()
    loader = dm.train_dataloader()
    setup_s = time.perf_counter() - t0
    utts = audio = 0.0
    t0 = time.perf_counter()
    for i, batch in enumerate(loader):
        utts += len(batch["utts"])
        audio += float(batch["lengths"].sum()) / 16000
        if i + 1 == batches:
            break
    seconds = time.perf_counter() - t0
    rss = peak_rss_bytes() / 2**20
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {
        "setup_s": round(setup_s, 2),
        "utts_per_s": round(utts / seconds, 1),
        "audio_s_per_s": round(audio / seconds, 1),
        "rss_MiB": round(rss, 1),
        "worker_rss_MiB": round(children, 1),
    }


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True)
    p.add_argument("--labels", required=True, help="a `speechssl kmeans assign` folder for --data")
    p.add_argument("--out", default="exp/bench_data_scale")
    p.add_argument("--factors", type=int, nargs="+", default=[1, 4, 16])
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    p.add_argument("--batches", type=int, default=40)
    p.add_argument("--batch-seconds", type=float, default=40.0)
    p.add_argument("--child", nargs=3, metavar=("PATH", "ROOT", "WORKERS"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(measure(args.child[0], args.child[1], int(args.child[2]), args.batches, args.batch_seconds)))
        return
    out = Path(args.out)
    cpu = next(
        (l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor()
    )
    print(f"CPU: {cpu}, {os.cpu_count()} cores; {args.batches} batches of {args.batch_seconds:g} s, crops of 2 s")
    base = out / "shards_1x"
    if not (base / "index.json").is_file():
        from speechssl.clustering.label_set import read_label_set
        from speechssl.data.shards import write_shards

        t0 = time.perf_counter()
        index = write_shards(args.data, base, [read_label_set(args.labels)], shard_seconds=300, progress=False)
        print(
            f"wrote {len(index['shards'])} shards of the 1x corpus ({index['seconds'] / 3600:.2f} h) in "
            f"{time.perf_counter() - t0:.0f} s"
        )
    rows = []
    for f in args.factors:
        replicate_dir(Path(args.data), Path(args.labels), f, out / f"kaldi_{f}x")
        replicate_shards(base, f, out / f"shards_{f}x")
        for path in ("kaldi", "shards"):
            for w in args.workers:
                root = out / f"{path}_{f}x"
                r = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--data",
                        args.data,
                        "--labels",
                        args.labels,
                        "--batches",
                        str(args.batches),
                        "--batch-seconds",
                        str(args.batch_seconds),
                        "--child",
                        path,
                        str(root),
                        str(w),
                    ],
                    capture_output=True,
                    text=True,
                )
                if r.returncode:
                    raise SystemExit(r.stderr[-3000:])
                row = {"path": path, "corpus": f"{f}x", "workers": w, **json.loads(r.stdout.strip().splitlines()[-1])}
                rows.append(row)
                print(json.dumps(row), flush=True)
    print("\n| path | corpus | workers | setup s | utt/s | audio s/s | peak RSS MiB | worker RSS MiB |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['path']} | {r['corpus']} | {r['workers']} | {r['setup_s']} | {r['utts_per_s']} | "
            f"{r['audio_s_per_s']} | {r['rss_MiB']} | {r['worker_rss_MiB']} |"
        )
    (out / "bench_data_scale.json").write_text(json.dumps({"cpu": cpu, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
