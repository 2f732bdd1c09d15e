"""SUPERB task dirs on real speech from the recipe's Mini LibriSpeech + Libri-light data dirs
(``run.sh --corpus mini_librispeech`` stage 1 writes them; ``data prep-superb --layout mini_librispeech``).

Neither corpus ships a dev or test set, so each task is cut from what exists, its splits stated in task.json:

* **PR** on Libri-light's own phone transcriptions (``text.phone``, its 70-odd IPA symbols): train on the 1 h
  set's folds 0-3, dev on fold 4, test on fold 5 (``librilight_1h``, ``librilight_1h_4``, ``librilight_1h_5``).
* **ASR** (characters, as SUPERB): train on the whole 1 h set, dev and test the held-out readers of
  train-clean-5 (``dev``, ``test``: none of them reads in the 1 h set).
* **SID**: the training readers of train-clean-5, utterances split per reader (the 2nd, 12th, 22nd ... to dev,
  the 3rd, 13th ... to test, the rest to train): an utterance-level split over the same readers, as SUPERB's
  VoxCeleb1 one.
* **ASV**: the x-vector head trains on the training readers of train-clean-5; trials among the utterances of the
  readers it never heard (the held-out dev and test readers, and Libri-light's 1 h readers who do not read in
  train-clean-5): per utterance, up to ``trials_per_utt`` same-reader and as many other-reader partners.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Dict, List

from ..data.heldout import utt2reader
from ..data.kaldi_dir import DataDir
from ..errors import InputError
from ..utils.atomic import write_text
from .task_dirs import need, task_json

TASKS = ("pr", "asr", "sid", "asv")


def _read(src: Path, name: str, what: str) -> DataDir:
    return DataDir.read(need(src / name, f"{what}; run.sh --corpus mini_librispeech stage 1 writes it"))


def _write(d: DataDir, utts: List[str], out: Path, labels: Dict[str, str] = None, keep=()) -> int:
    sub = d.subset(utts)
    sub.extra = {k: v for k, v in sub.extra.items() if k in keep}
    if labels is not None:
        sub.extra["utt2label"] = {u: labels[u] for u in utts}
    if "text" not in keep:
        sub.text = None
    sub.verbatim = {}
    sub.write(out)
    return len(sub)


def prepare_mini_librispeech(task: str, src, out, trials_per_utt: int = 5, seed: int = 0) -> dict:
    """The task dir of ``task`` (one of :data:`TASKS`) from the data dirs under ``src``; returns its counts."""
    if task not in TASKS:
        raise InputError(f"layout mini_librispeech prepares {', '.join(TASKS)}, not {task}")
    src, out = Path(src), Path(out)
    counts: Dict[str, int] = {}
    if task == "pr":
        whole = _read(src, "librilight_1h", "Libri-light's 1 h set (--librilight-sets 1h)")
        dev = _read(src, "librilight_1h_4", "Libri-light fold 4 (--librilight-sets 1h/4)")
        test = _read(src, "librilight_1h_5", "Libri-light fold 5 (--librilight-sets 1h/5)")
        phones = whole.extra.get("text.phone") or {}
        held = set(dev.utt_ids) | set(test.utt_ids)
        splits = {"train": [u for u in whole.utt_ids if u not in held], "dev": dev.utt_ids, "test": test.utt_ids}
        for name, utts in splits.items():
            missing = [u for u in utts if u not in phones]
            if missing:
                raise InputError(
                    f"{src / 'librilight_1h'}/text.phone: no phones for {len(missing)} utterances (first: {missing[0]})"
                )
            counts[name] = _write(whole, utts, out / name, keep=("text.phone",))
        source = "Libri-light 1 h: folds 0-3 train, 4 dev, 5 test; its phone transcriptions"
    elif task == "asr":
        for name, d in (
            ("train", _read(src, "librilight_1h", "Libri-light's 1 h set")),
            ("dev", _read(src, "dev", "the held-out dev readers")),
            ("test", _read(src, "test", "the held-out test readers")),
        ):
            counts[name] = _write(d, d.utt_ids, out / name, keep=("text",))
        source = "Libri-light 1 h train; train-clean-5's held-out readers as dev and test"
    elif task == "sid":
        d = _read(src, "train", "train-clean-5's training readers")
        readers = utt2reader(d)
        splits = {"train": [], "dev": [], "test": []}
        by_reader: Dict[str, List[str]] = {}
        for u in d.utt_ids:
            by_reader.setdefault(readers[u], []).append(u)
        for utts in by_reader.values():  # a reader with under 3 utterances trains only
            for i, u in enumerate(utts):
                split = "dev" if i % 10 == 1 else "test" if i % 10 == 2 else "train"
                splits[split if len(utts) >= 3 else "train"].append(u)
        for name, utts in splits.items():
            counts[name] = _write(d, sorted(utts), out / name, labels=readers)
        counts["speakers"] = len(by_reader)
        source = "train-clean-5's training readers, utterances split per reader (every 10th to dev, the next to test)"
    else:
        train = _read(src, "train", "train-clean-5's training readers")
        train_readers = set(utt2reader(train).values())
        counts["train"] = _write(train, train.utt_ids, out / "train", labels=utt2reader(train))
        pool: Dict[str, str] = {}
        sources = {}
        for name in ("dev", "test", "librilight_1h"):
            if (src / name).is_dir():
                d = DataDir.read(src / name)
                sources[name] = d
                pool.update({u: r for u, r in utt2reader(d).items() if r not in train_readers})
        if len({*pool.values()}) < 2:
            raise InputError(f"{src}: fewer than two readers outside training for ASV trials")
        test = DataDir()
        for d in sources.values():
            part = d.subset([u for u in d.utt_ids if u in pool])
            test.wav_scp.update(part.wav_scp)
            test.utt2spk.update(part.utt2spk)
            if part.segments:
                test.segments = {**(test.segments or {}), **part.segments}
        test.extra = {"utt2label": dict(pool)}
        test.write(out / "test")
        rng = random.Random(seed)
        utts = sorted(pool)
        trials = set()
        for a in utts:
            same = [b for b in utts if b != a and pool[b] == pool[a]]
            other = [b for b in utts if pool[b] != pool[a]]
            for b in rng.sample(same, min(trials_per_utt, len(same))) + rng.sample(
                other, min(trials_per_utt, len(other))
            ):
                trials.add(tuple(sorted((a, b))))
        lines = [f"{a} {b} {'target' if pool[a] == pool[b] else 'nontarget'}" for a, b in sorted(trials)]
        write_text(out / "test" / "trials", "\n".join(lines) + "\n")
        counts.update(
            test=len(pool),
            trials=len(lines),
            target_trials=sum(x.endswith(" target") for x in lines),
            test_readers=len(set(pool.values())),
        )
        source = (
            "x-vector trained on train-clean-5's training readers; trials among unseen readers ("
            + ", ".join(sources)
            + ")"
        )
    task_json(out, task=task, layout="mini_librispeech", source=str(src.resolve()), splits=source, counts=counts)
    return {"task": task, "out": str(out), **counts}
