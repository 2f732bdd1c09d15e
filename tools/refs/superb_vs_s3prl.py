"""SUPERB KS and SID beside s3prl: s3prl 0.4's own ``run_downstream`` runner and experts (``speech_commands``,
``voxceleb1``) and ``speechssl superb`` on the same upstream, the same task data and the same head, optimiser and
step budget, over several seeds each; the test score at the best dev step of every run, and the spread.

    .refs/venv/bin/python tools/refs/superb_vs_s3prl.py --tasks-dir recipes/librispeech/superb \
        --upstream fbank --upstream hubert_random=/path/to/exported/folder --seeds 3 --work /tmp/s3prl_superb

What is the same: the upstream (s3prl reads ours through speechssl's s3prl contract, ``speechssl.s3prl``), the
audio (our task dir's utterances written once as float WAV into s3prl's layouts), the splits (s3prl's
``split_dataset`` hash is replaced by our train/dev lists; SID's ``iden_split`` file is written from them), the
featurizer (softmax weights from zeros), the head (a 256-d projection, mean pooling over valid frames, a linear
classifier), Adam at a constant rate with gradient clipping at 1, batch, steps and dev cadence. What stays
s3prl's own, on purpose (docs/crosscheck.md): KS's class-balanced sampling and its -3 dB gain, its fixed 12 / 1,251
output classes, SID's 8-s training crops drawn per item, and all of its randomness.

Writes WORK/results.json ({task: {upstream: {"s3prl": [test per seed], "speechssl": [...]}}}) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import soundfile as sf

# the comparison's budget: the mini corpus's SUPERB configs (conf/superb/ks.yaml, sid.yaml) in both runners
BUDGET = {
    "ks": dict(lr=1e-3, batch=32, accumulate=1, steps=600, every=100),
    "sid": dict(lr=1e-3, batch=8, accumulate=4, steps=600, every=100),
}
S3PRL_EXPERT = {"ks": "speech_commands", "sid": "voxceleb1"}


def _wav(out: Path, audio: np.ndarray) -> str:
    out.parent.mkdir(parents=True, exist_ok=True)
    sf.write(out, audio.astype(np.float32), 16000, subtype="FLOAT")
    return str(out)


def export_ks(task_dir: Path, root: Path) -> Dict[str, List[Tuple[str, str]]]:
    """Our KS task dir -> s3prl's Speech Commands layout (``train/<word>/<utt>.wav`` for train and dev,
    ``test/<word>/<utt>.wav``); returns our split lists ``{split: [(word, path)]}`` for s3prl's split."""
    from speechssl.data.kaldi_dir import DataDir

    lists = {}
    for split in ("train", "dev", "test"):
        d = DataDir.read(task_dir / split)
        labels = d.extra["utt2label"]
        sub = "test" if split == "test" else "train"
        lists[split] = [(labels[u], _wav(root / sub / labels[u] / f"{u}.wav", d.load_audio(u))) for u in d.utt_ids]
    return lists


def export_sid(task_dir: Path, root: Path) -> Path:
    """Our SID task dir -> s3prl's VoxCeleb1 layout (``vox/wav/id1XXXX/<speaker>/<utt>.wav``, speakers numbered
    in sorted order) and its ``iden_split.txt`` (1 train, 2 dev, 3 test); returns the split file."""
    from speechssl.data.kaldi_dir import DataDir

    dirs = {s: DataDir.read(task_dir / s) for s in ("train", "dev", "test")}
    speakers = sorted(set(dirs["train"].extra["utt2label"].values()))
    ids = {s: f"id{10001 + i}" for i, s in enumerate(speakers)}
    lines = []
    for code, split in ((1, "train"), (2, "dev"), (3, "test")):
        d = dirs[split]
        for u in d.utt_ids:
            spk = d.extra["utt2label"][u]
            if spk not in ids:
                continue  # a speaker never seen in training: s3prl has no class for it (ours counts it wrong)
            rel = f"{ids[spk]}/{spk}/{u}.wav"
            _wav(root / "vox" / "wav" / rel, d.load_audio(u))
            lines.append(f"{code} {rel}")
    split_file = root / "iden_split.txt"
    split_file.write_text("\n".join(lines) + "\n")
    return split_file


def s3prl_child(argv: List[str]) -> None:
    """Inside the child process: speechssl's upstream as s3prl hub entry ``speechssl``, our splits for KS,
    then s3prl's own ``run_downstream`` main."""
    import s3prl.hub as hub

    from speechssl.s3prl import UpstreamExpert

    hub.speechssl = lambda ckpt, *a, **k: UpstreamExpert(ckpt)
    lists = os.environ.get("SPEECHSSL_KS_LISTS")
    if lists:
        from s3prl.downstream.speech_commands import expert

        splits = json.loads(Path(lists).read_text())
        expert.split_dataset = lambda root, *a, **k: (splits["train"], splits["dev"])
    cache = os.environ.get("SPEECHSSL_SID_CACHE")
    if cache:
        from s3prl.downstream.voxceleb1 import dataset

        dataset.CACHE_PATH = cache  # its file lists are cached in the package folder otherwise, across runs
    sys.argv = ["run_downstream.py", *argv]
    from s3prl import run_downstream

    run_downstream.main()


def s3prl_config(task: str, data: Dict[str, str], out: Path) -> Path:
    b = BUDGET[task]
    datarc = (
        {"speech_commands_root": data["train"], "speech_commands_test_root": data["test"], "batch_size": b["batch"]}
        if task == "ks"
        else {
            "file_path": data["root"],
            "meta_data": data["split"],
            "train_batch_size": b["batch"],
            "eval_batch_size": 1,
            "max_timestep": 128000,
        }
    )
    config = {
        "runner": {
            "total_steps": b["steps"],
            "gradient_clipping": 1,
            "gradient_accumulate_steps": b["accumulate"],
            "log_step": b["every"],
            "eval_step": b["every"],
            "save_step": b["steps"],
            "max_keep": 1,
            "eval_dataloaders": ["dev", "test"],
        },
        "optimizer": {"name": "TorchOptim", "torch_optim_name": "Adam", "lr": b["lr"]},
        "downstream_expert": {
            "datarc": {**datarc, "num_workers": 0},
            "modelrc": {"projector_dim": 256, "select": "UtteranceLevel", "UtteranceLevel": {"pooling": "MeanPooling"}},
        },
    }
    out.write_text(json.dumps(config))  # JSON is YAML
    return out


def test_at_best_dev(log: Path) -> float:
    """s3prl's ``log.log`` -> the test accuracy at the first step of the best dev accuracy (as its dev-best.ckpt)."""
    dev, test = {}, {}
    for line in log.read_text().splitlines():
        m = re.match(r"(dev|test) at step (\d+): ([0-9.eE+-]+)", line)
        if m:
            (dev if m.group(1) == "dev" else test)[int(m.group(2))] = float(m.group(3))
    best = None
    for step in sorted(dev):
        if best is None or dev[step] > dev[best]:
            best = step
    return round(100 * test[best], 3)


def run_s3prl(task, name, spec, seed, data, work: Path, env) -> float:
    exp = work / "s3prl" / task / name / f"seed{seed}"
    exp.mkdir(parents=True, exist_ok=True)
    (exp / "log.log").unlink(missing_ok=True)
    cfg = s3prl_config(task, data, exp / "config.yaml")
    cmd = [sys.executable, __file__, "--s3prl-child", "-m", "train", "-u", "speechssl", "-k", spec, "-d"]
    cmd += [S3PRL_EXPERT[task], "-c", str(cfg), "-p", str(exp), "--seed", str(seed), "--device", "cpu"]
    with open(exp / "stdout.log", "w") as f:
        done = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env)
    if done.returncode:
        sys.exit(f"s3prl {task} {name} seed {seed} failed ({done.returncode}): see {exp / 'stdout.log'}")
    return test_at_best_dev(exp / "log.log")


def run_ours(task, name, spec, seed, task_dir: Path, work: Path) -> float:
    b = BUDGET[task]
    out = work / "speechssl" / task / f"seed{seed}"
    overrides = [
        f"lr={b['lr']}",
        f"batch_size={b['batch']}",
        f"accumulate={b['accumulate']}",
        "grad_clip=1.0",
        "head.project=256",
        f"trainer.max_steps={b['steps']}",
        f"trainer.val_every_steps={b['every']}",
        f"trainer.seed={seed}",
        "trainer.progress_bar=false",
    ]
    cmd = [str(Path(sys.executable).parent / "speechssl"), "superb", "--task", task, "--data", str(task_dir)]
    cmd += ["--upstream", f"{name}={spec}", "--out", str(out), "--cache", str(work / "cache"), *overrides]
    with open(work / f"ours_{task}_{name}_{seed}.log", "w") as f:
        done = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT)
    if done.returncode:
        sys.exit(f"speechssl {task} {name} seed {seed} failed: see {work}/ours_{task}_{name}_{seed}.log")
    return json.loads((out / name / task / "result.json").read_text())["value"]


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--s3prl-child":
        s3prl_child(sys.argv[2:])
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks-dir", required=True, help="parent of the prepared ks/ and sid/ task dirs")
    p.add_argument("--upstream", action="append", required=True, help="NAME=SPEC or SPEC (fbank, a folder)")
    p.add_argument("--tasks", nargs="+", default=["ks", "sid"], choices=sorted(BUDGET))
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--work", required=True)
    p.add_argument("--steps", type=int, help="a smaller budget for both (a smoke run; dev and test every steps / 2)")
    args = p.parse_args()
    if args.steps:
        for b in BUDGET.values():
            b.update(steps=args.steps, every=max(1, args.steps // 2))
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    results_file = work / "results.json"
    results = json.loads(results_file.read_text()) if results_file.is_file() else {}
    for task in args.tasks:
        task_dir = Path(args.tasks_dir).resolve() / task
        data_root = work / "data" / task
        env = dict(os.environ)
        if task == "ks":
            lists = export_ks(task_dir, data_root)
            (work / "ks_lists.json").write_text(json.dumps(lists))
            env["SPEECHSSL_KS_LISTS"] = str(work / "ks_lists.json")
            data = {"train": str(data_root / "train"), "test": str(data_root / "test")}
        else:
            split = export_sid(task_dir, data_root)
            env["SPEECHSSL_SID_CACHE"] = str(work / "sid_lists") + "/"
            data = {"root": str(data_root), "split": str(split)}
        for up in args.upstream:
            name, _, spec = up.rpartition("=")
            name = name or Path(spec).name
            row = results.setdefault(task, {}).setdefault(name, {"s3prl": [], "speechssl": []})
            for seed in range(1, args.seeds + 1):
                if len(row["s3prl"]) < seed:
                    shutil.rmtree(work / "sid_lists", ignore_errors=True)
                    row["s3prl"].append(run_s3prl(task, name, spec, seed, data, work, env))
                if len(row["speechssl"]) < seed:
                    row["speechssl"].append(run_ours(task, name, spec, seed, task_dir, work))
                results_file.write_text(json.dumps(results, indent=1))
                print(task, name, seed, row, flush=True)
    print("| task | upstream | s3prl test acc (seeds) | mean, spread | speechssl test acc (seeds) | mean, spread |")
    print("|---|---|---|---|---|---|")
    for task, rows in results.items():
        for name, r in rows.items():
            cells = []
            for who in ("s3prl", "speechssl"):
                v = r[who]
                cells += [", ".join(f"{x:.2f}" for x in v), f"{np.mean(v):.2f}, {max(v) - min(v):.2f}"]
            print(f"| {task} | {name} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
