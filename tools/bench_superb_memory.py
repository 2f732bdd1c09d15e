#!/usr/bin/env python
"""Peak memory of a SUPERB run as the task's corpus grows: hidden states cached on disk and read batch by
batch (``states=cache``), recomputed by the upstream each batch (``states=online``), and, for comparison,
every state held in memory (what the cache did before: ``--in-memory``, measured by loading them all).

The task dir is replicated 1x and 4x by segments (utterance ``r<i>-<utt>`` is its recording cut a few ms
shorter each time, so each copy is a distinct utterance to the cache), and every (mode, size) runs in a
fresh process: cache extraction (not timed), then the task's head for ``--steps`` steps; the peak RSS of
the process is reported.

    python tools/bench_superb_memory.py --tasks <recipe>/superb --task sid --upstream <recipe>/exp/hubert_it2/final
"""

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

from speechssl.utils.memory import peak_rss_bytes, reset_peak_rss


def replicate(task_dir: Path, factor: int, out: Path):
    from speechssl.data.kaldi_dir import DataDir

    for split in ("train", "dev", "test"):
        if not (task_dir / split).is_dir():
            continue
        d = DataDir.read(task_dir / split)
        durs = d.utt2dur or d.compute_utt2dur()
        rep = DataDir(segments={})
        for u in d.utt_ids:
            src, start, end = d.audio_source(u)
            rep.wav_scp[u] = src
        for i in range(factor):
            for u in d.utt_ids:
                new = f"r{i}-{u}"
                rep.segments[new] = (u, 0.0, round(durs[u] - 0.005 * i, 3))
                rep.utt2spk[new] = d.utt2spk[u]
                for name, table in d.extra.items():
                    if u in table:
                        rep.extra.setdefault(name, {})[new] = table[u]
                if d.text and u in d.text:
                    rep.text = rep.text or {}
                    rep.text[new] = d.text[u]
        rep.write(out / split)
    if (task_dir / "task.json").is_file():
        (out / "task.json").write_text((task_dir / "task.json").read_text())


def child(mode: str, task: str, tasks: str, upstream: str, out: str, steps: int):
    import torch

    torch.set_num_threads(2)
    from speechssl.tasks.superb import run_benchmark

    overrides = [f"trainer.max_steps={steps}", f"trainer.val_every_steps={steps}", "trainer.progress_bar=false"]
    if mode == "online":
        overrides.append("states=online")
    reset_peak_rss()  # this child's peak, not the one Linux carries over from its parent
    t0 = time.time()
    if mode == "in-memory":  # the old path: every cached state in memory
        from speechssl.data.kaldi_dir import DataDir
        from speechssl.downstream.cache import load_cached_states
        from speechssl.hub import load_upstream

        dirs = [
            DataDir.read(Path(tasks) / task / s) for s in ("train", "dev", "test") if (Path(tasks) / task / s).is_dir()
        ]
        disk, _ = load_cached_states(
            Path(out) / "cache", upstream, dirs, lambda: load_upstream(upstream), progress=False
        )
        held = {k: disk.get(k) for k in disk.index}
        result = {"value": None, "states_held_MiB": round(sum(v.numel() * 2 for v in held.values()) / 2**20, 1)}
    else:
        result = run_benchmark([f"x={upstream}"], [task], tasks, out, overrides=overrides)[0]
    rss = peak_rss_bytes() / 2**20
    print(
        json.dumps(
            {
                "value": result.get("value"),
                "seconds": round(time.time() - t0, 1),
                "rss_MiB": round(rss, 1),
                **({"states_held_MiB": result["states_held_MiB"]} if "states_held_MiB" in result else {}),
            }
        )
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", required=True)
    ap.add_argument("--task", default="sid")
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--out", default="exp/bench_superb_memory")
    ap.add_argument("--factors", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--modes", nargs="+", default=["cache", "online", "in-memory"])
    ap.add_argument("--child", nargs=3, metavar=("MODE", "TASKS", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], args.task, args.child[1], args.upstream, args.child[2], args.steps)
        return
    cpu = next(
        (l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor()
    )
    print(f"CPU: {cpu}; task {args.task}, upstream {args.upstream}, {args.steps} head steps")
    out = Path(args.out)
    rows = []
    for f in args.factors:
        tasks = out / f"tasks_{f}x"
        replicate(Path(args.tasks) / args.task, f, tasks / args.task)
        for mode in args.modes:
            run_out = out / f"run_{f}x_{mode if mode != 'in-memory' else 'cache'}"
            r = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--tasks",
                    args.tasks,
                    "--task",
                    args.task,
                    "--upstream",
                    args.upstream,
                    "--steps",
                    str(args.steps),
                    "--child",
                    mode,
                    str(tasks),
                    str(run_out),
                ],
                capture_output=True,
                text=True,
            )
            if r.returncode:
                raise SystemExit(r.stderr[-3000:])
            row = {"mode": mode, "corpus": f"{f}x", **json.loads(r.stdout.strip().splitlines()[-1])}
            rows.append(row)
            print(json.dumps(row), flush=True)
    print("\n| states | corpus | peak RSS MiB | states held MiB | test value | seconds |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['mode']} | {r['corpus']} | {r['rss_MiB']} | {r.get('states_held_MiB', '')} | {r['value']} "
            f"| {r['seconds']} |"
        )
    (out / "bench_superb_memory.json").write_text(json.dumps({"cpu": cpu, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
