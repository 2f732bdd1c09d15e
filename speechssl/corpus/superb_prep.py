"""Task dirs for SUPERB evaluation from the real datasets' layouts and from the mini corpus.

A task dir holds ``train/``, ``dev/`` and ``test/`` Kaldi data dirs (ASV: ``train/`` and ``test/``
with ``test/trials``) and ``task.json`` saying where it came from. Targets: ``text.phone`` (PR),
``text`` (ASR), ``utt2label`` (KS keyword, IC ``action|object|location``, SID / ASV speaker).

Layouts read:
  * LibriSpeech data dirs (``speechssl data prep-librispeech``) + a pronunciation lexicon -> PR, ASR
  * Speech Commands v0.01 (``<word>/<spk>_nohash_<n>.wav``, ``validation_list.txt``,
    ``testing_list.txt``, ``_background_noise_/``; optionally the separate test set) -> KS
  * Fluent Speech Commands (``data/{train,valid,test}_data.csv``, ``wavs/speakers/...``) -> IC
  * VoxCeleb1 (``wav/<id>/<video>/<n>.wav``, ``iden_split.txt``, ``veri_test.txt``) -> SID, ASV
  * IEMOCAP (``Session<k>/dialog/EmoEvaluation/*.txt``, ``Session<k>/sentences/wav/...``) -> ER, one fold
  * Audio SNIPS -> SF, Libri2Mix -> SD, QUESST 2014 -> QbE (:mod:`.superb_prep_sf_sd_qbe`)
  * the mini corpus's data dirs (``speechssl demo`` / recipe stage 1) -> all six tasks
"""

from __future__ import annotations

import csv
import itertools
import logging
import re
from pathlib import Path
from typing import Dict, Iterable, List, Optional

from ..constants import SUPERB_LAYOUT_TASKS, SUPERB_MINI_TASKS
from ..data.kaldi_dir import DataDir
from ..errors import InputError, MissingInputError
from ..utils.atomic import write_text
from .superb_mini import prepare_mini_qbe, prepare_mini_sd, tag_slots
from .superb_prep_sf_sd_qbe import prepare_librimix, prepare_quesst14, prepare_snips
from .task_dirs import need as _need
from .task_dirs import seconds as _seconds
from .task_dirs import task_json as _task_json
from .task_dirs import write_split as _write

log = logging.getLogger(__name__)

SPEECH_COMMANDS_WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
SPLITS = ("train", "dev", "test")


# ------------------------------------------------------------------------------------ mini corpus
def prepare_mini(
    data_root, out_root, tasks: Iterable[str] = ("pr", "asr", "ks", "ic", "sid", "asv", "sf", "qbe", "sd")
) -> Dict[str, dict]:
    """All tasks from the mini corpus's data dirs (``train``, ``dev``, ``test``, ``test_unseen_speakers``).

    PR, ASR and SID use every utterance of the three splits (same audio: one feature cache), KS the
    keyword utterances, IC the command utterances; ASV trains on ``train`` speakers and scores all
    pairs of ``test_unseen_speakers`` utterances."""
    root, out_root = Path(data_root), Path(out_root)
    d = {s: DataDir.read(root / s) for s in SPLITS}
    summary = {}
    for task in tasks:
        out = out_root / task
        counts = {}
        if task == "qbe":
            counts = prepare_mini_qbe(d, out)
        elif task == "sd":
            counts = prepare_mini_sd(d, out, root)
        elif task == "asv":
            name = next(
                (n for n in ("test_unseen_speakers", "test-unseen-speakers") if (root / n).is_dir()),
                "test_unseen_speakers",
            )
            unseen = DataDir.read(_need(root / name, "the mini corpus's unseen-speaker split"))
            tr = d["train"].subset(d["train"].utt_ids)
            tr.extra, tr.verbatim = {"utt2label": dict(tr.extra["utt2reader"])}, {}
            tr.write(out / "train")
            te = unseen.subset(unseen.utt_ids)
            te.extra, te.verbatim = {"utt2label": dict(te.extra["utt2reader"])}, {}
            te.write(out / "test")
            spk = te.extra["utt2label"]
            trials = [
                f"{a} {b} {'target' if spk[a] == spk[b] else 'nontarget'}"
                for a, b in itertools.combinations(te.utt_ids, 2)
            ]
            write_text(out / "test" / "trials", "\n".join(trials) + "\n")
            counts = {
                "train": len(tr),
                "test": len(te),
                "trials": len(trials),
                "target_trials": sum(t.endswith(" target") for t in trials),
            }
        else:
            for s in SPLITS:
                src = d[s]
                kinds = src.extra.get("utt2kind", {})
                if task == "ks":
                    utts = [u for u in src.utt_ids if kinds.get(u) == "keyword"]
                    label = src.extra["utt2keyword"]
                elif task in ("ic", "sf"):
                    utts = [u for u in src.utt_ids if kinds.get(u) == "command"]
                    label = src.extra["utt2intent"]
                else:
                    utts, label = src.utt_ids, src.extra.get("utt2reader")
                sub = src.subset(utts)
                keep = {"pr": ("text.phone",), "asr": ()}.get(task, ())
                sub.extra = {k: v for k, v in sub.extra.items() if k in keep}
                if task in ("ks", "ic", "sid"):
                    sub.extra["utt2label"] = {u: label[u] for u in utts}
                if task == "sf":
                    sub.extra["text.slot"] = {u: tag_slots(src.text[u], label[u]) for u in utts}
                if task != "asr" and task != "pr":
                    sub.text = None
                sub.verbatim = {}
                sub.write(out / s)
                counts[s] = len(sub)
        _task_json(out, task=task, layout="mini", source=str(root.resolve()), counts=counts)
        summary[task] = counts
    return summary


# ------------------------------------------------------------------------------------ LibriSpeech PR / ASR
def read_lexicon(path) -> Dict[str, List[str]]:
    """``WORD PH1 PH2 ...`` (CMUdict / librispeech-lexicon.txt): first pronunciation, stress marks removed."""
    lex: Dict[str, List[str]] = {}
    for n, line in enumerate(Path(path).read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip() or line.startswith(";;;"):
            continue
        parts = line.split()
        if len(parts) < 2:
            raise InputError(f"{path}:{n}: a word without a pronunciation: {line!r}")
        word = re.sub(r"\(\d+\)$", "", parts[0]).upper()
        lex.setdefault(word, [re.sub(r"\d", "", p) for p in parts[1:]])
    return lex


def prepare_librispeech_task(
    task: str, splits: Dict[str, str], out_root, lexicon: Optional[str] = None, skip_oov: bool = False
) -> Dict[str, int]:
    """PR (phones through ``lexicon``) or ASR (letters) from LibriSpeech data dirs ``{train, dev, test}``."""
    out = Path(out_root)
    lex = read_lexicon(lexicon) if task == "pr" else None
    if task == "pr" and not lexicon:
        raise InputError("PR from LibriSpeech needs --lexicon (e.g. librispeech-lexicon.txt)")
    counts = {}
    for s in SPLITS:
        if s not in splits:
            raise InputError(f"--src needs train=, dev= and test= data dirs (missing {s})")
        d = DataDir.read(splits[s])
        if d.text is None:
            raise MissingInputError(f"{splits[s]}/text: missing")
        utts = d.utt_ids
        if lex is not None:
            phones, oov = {}, {}
            for u in utts:
                words = d.text.get(u, "").split()
                missing = [w for w in words if w not in lex]
                if missing:
                    oov[u] = missing
                    continue
                phones[u] = " ".join(p for w in words for p in lex[w])
            if oov and not skip_oov:
                words = sorted({w for m in oov.values() for w in m})
                raise InputError(
                    f"{splits[s]}: {len(oov)} utterances have words missing from {lexicon} "
                    f"({', '.join(words[:10])}...); add them or pass --skip-oov"
                )
            if oov:
                log.warning("%s: leaving out %d utterances with out-of-lexicon words", splits[s], len(oov))
            utts = [u for u in utts if u in phones]
        sub = d.subset(utts)
        sub.extra = {"text.phone": phones} if lex is not None else {}
        sub.verbatim = {}
        sub.write(out / s)
        counts[s] = len(sub)
    _task_json(
        out,
        task=task,
        layout="librispeech",
        source={k: str(v) for k, v in splits.items()},
        lexicon=str(lexicon) if lexicon else None,
        counts=counts,
    )
    return counts


# ------------------------------------------------------------------------------------ Speech Commands (KS)
def prepare_speech_commands(root, out_root, test_root=None, silence_seconds: float = 1.0) -> Dict[str, int]:
    """KS as SUPERB defines it: the ten words, ``_unknown_`` for the other words, ``_silence_`` from 1-s
    slices of ``_background_noise_``; dev / test from ``validation_list.txt`` / ``testing_list.txt``, or
    test from the separate test set (``test_root/<label>/*.wav``) when given."""
    root = Path(root)
    val = set(_need(root / "validation_list.txt", "Speech Commands v0.01 split list").read_text().split())
    tst = set(_need(root / "testing_list.txt", "Speech Commands v0.01 split list").read_text().split())
    rows = {s: [] for s in SPLITS}
    for wav in sorted(root.glob("*/*.wav")):
        word = wav.parent.name
        if word.startswith("_"):
            continue
        rel = f"{word}/{wav.name}"
        split = "dev" if rel in val else "test" if rel in tst else "train"
        if split == "test" and test_root:
            continue
        spk = wav.stem.split("_nohash_")[0]
        label = word if word in SPEECH_COMMANDS_WORDS else "_unknown_"
        rows[split].append({"utt": f"{spk}-{word}-{wav.stem}", "wav": str(wav.resolve()), "spk": spk, "label": label})
    noise = sorted((root / "_background_noise_").glob("*.wav"))
    for f in noise:  # non-overlapping 1-s slices: 8 of 10 to train, then dev, then test
        n = int(_seconds(str(f)) // silence_seconds)
        for i in range(n):
            split = ("train",) * 8 + ("dev", "test")
            s = split[i % 10]
            if s == "test" and test_root:
                s = "train"
            rows[s].append(
                {
                    "utt": f"silence-{f.stem}-{i:04d}",
                    "rec": f"silence-{f.stem}",
                    "wav": str(f.resolve()),
                    "spk": "silence",
                    "start": i * silence_seconds,
                    "end": (i + 1) * silence_seconds,
                    "label": "_silence_",
                }
            )
    if test_root:
        for wav in sorted(Path(test_root).glob("*/*.wav")):
            label = wav.parent.name
            spk = wav.stem.split("_nohash_")[0]
            rows["test"].append(
                {
                    "utt": f"{spk}-{label}-{wav.stem}",
                    "wav": str(wav.resolve()),
                    "spk": spk,
                    "label": label if label in SPEECH_COMMANDS_WORDS or label.startswith("_") else "_unknown_",
                }
            )
    out = Path(out_root)
    counts = {}
    for s in SPLITS:
        _write(out / s, _speaker_prefixed(rows[s]), ["utt2label"])
        counts[s] = len(rows[s])
    _task_json(
        out,
        task="ks",
        layout="speech_commands",
        source=str(root.resolve()),
        test_source=str(test_root) if test_root else None,
        counts=counts,
    )
    return counts


def _speaker_prefixed(rows: List[dict]) -> List[dict]:
    """Kaldi wants utterance ids to start with the speaker id; make it so where they do not."""
    for r in rows:
        if not r["utt"].startswith(r["spk"]):
            r["utt"] = f"{r['spk']}-{r['utt']}"
    return rows


# ------------------------------------------------------------------------------------ Fluent Speech Commands (IC)
def prepare_fluent_speech_commands(root, out_root) -> Dict[str, int]:
    """IC from ``data/{train,valid,test}_data.csv`` (columns path, speakerId, transcription, action,
    object, location); the label is ``action|object|location``."""
    root, out = Path(root), Path(out_root)
    counts = {}
    for s, name in zip(SPLITS, ("train", "valid", "test")):
        f = _need(root / "data" / f"{name}_data.csv", "Fluent Speech Commands split")
        rows = []
        with open(f, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            need = {"path", "speakerId", "transcription", "action", "object", "location"}
            if not need <= set(reader.fieldnames or []):
                raise InputError(f"{f}: columns {sorted(need - set(reader.fieldnames or []))} missing")
            for n, r in enumerate(reader, 2):
                wav = root / r["path"]
                if not wav.exists():
                    raise MissingInputError(f"{f}:{n}: {wav} does not exist")
                rows.append(
                    {
                        "utt": f"{r['speakerId']}-{Path(r['path']).stem}",
                        "wav": str(wav.resolve()),
                        "spk": r["speakerId"],
                        "label": f"{r['action']}|{r['object']}|{r['location']}",
                        "text": r["transcription"].upper(),
                    }
                )
        _write(out / s, rows, ["utt2label", "text"])
        counts[s] = len(rows)
    _task_json(out, task="ic", layout="fluent_speech_commands", source=str(root.resolve()), counts=counts)
    return counts


# ------------------------------------------------------------------------------------ IEMOCAP (ER)
IEMOCAP_CLASSES = {"neu": "neu", "hap": "hap", "exc": "hap", "ang": "ang", "sad": "sad"}  # 4 classes, exc -> hap
_EMO_LINE = re.compile(r"^\[(\d+\.\d+) - (\d+\.\d+)\]\t(\S+)\t(\S+)\t")


def prepare_iemocap(root, out_root, test_session: int = 1, dev_ratio: float = 0.2, seed: int = 0) -> Dict[str, int]:
    """ER on IEMOCAP as SUPERB runs it (s3prl downstream/emotion): the four classes neutral, happy (with
    excited merged in), angry and sad; leave-one-session-out: session ``test_session`` is the test set, a seeded
    ``dev_ratio`` of the other sessions' utterances the dev set. Reads
    ``Session<k>/dialog/EmoEvaluation/<dialog>.txt`` and ``Session<k>/sentences/wav/<dialog>/<utt>.wav``.
    The benchmark's score is the mean over the five folds (``--fold 1..5``)."""
    import random

    root, out = Path(root), Path(out_root)
    if not 1 <= test_session <= 5:
        raise InputError(f"IEMOCAP has sessions 1-5; --fold {test_session}")
    rows = {s: [] for s in SPLITS}
    pool = []
    for k in range(1, 6):
        evals = sorted(_need(root / f"Session{k}" / "dialog" / "EmoEvaluation", f"IEMOCAP session {k}").glob("*.txt"))
        if not evals:
            raise MissingInputError(f"{root}/Session{k}/dialog/EmoEvaluation: no evaluation files")
        for f in evals:
            for n, line in enumerate(f.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
                m = _EMO_LINE.match(line)
                if not m or m.group(4) not in IEMOCAP_CLASSES:
                    continue
                utt = m.group(3)
                wav = root / f"Session{k}" / "sentences" / "wav" / f.stem / f"{utt}.wav"
                if not wav.exists():
                    raise MissingInputError(f"{f}:{n}: {wav} does not exist")
                row = {
                    "utt": utt,
                    "wav": str(wav.resolve()),
                    "spk": utt[:5] + utt.split("_")[-1][0],
                    "label": IEMOCAP_CLASSES[m.group(4)],
                }
                (rows["test"] if k == test_session else pool).append(row)
    random.Random(seed).shuffle(pool)
    n_dev = int(round(dev_ratio * len(pool)))
    rows["dev"], rows["train"] = (
        sorted(pool[:n_dev], key=lambda r: r["utt"]),
        sorted(pool[n_dev:], key=lambda r: r["utt"]),
    )
    counts = {}
    for s in SPLITS:
        _write(out / s, sorted(rows[s], key=lambda r: r["utt"]), ["utt2label"])
        counts[s] = len(rows[s])
    _task_json(out, task="er", layout="iemocap", source=str(root.resolve()), fold=test_session, counts=counts)
    return counts


# ------------------------------------------------------------------------------------ VoxCeleb1 (SID, ASV)
def _vox_row(root: Path, rel: str, where: str) -> dict:
    wav = root / "wav" / rel
    if not wav.exists():
        raise MissingInputError(f"{where}: {wav} does not exist")
    spk = rel.split("/")[0]
    return {"utt": rel[:-4].replace("/", "-"), "wav": str(wav.resolve()), "spk": spk, "label": spk}


def prepare_voxceleb1_sid(root, out_root, split_file: str = "iden_split.txt") -> Dict[str, int]:
    """SID from ``iden_split.txt`` (``1`` train, ``2`` dev, ``3`` test)."""
    root, out = Path(root), Path(out_root)
    f = _need(root / split_file, "VoxCeleb1 identification split")
    rows = {s: [] for s in SPLITS}
    for n, line in enumerate(f.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or parts[0] not in ("1", "2", "3"):
            raise InputError(f"{f}:{n}: expected '1|2|3 id/video/n.wav', got {line!r}")
        rows[SPLITS[int(parts[0]) - 1]].append(_vox_row(root, parts[1], f"{f}:{n}"))
    counts = {}
    for s in SPLITS:
        _write(out / s, rows[s], ["utt2label"])
        counts[s] = len(rows[s])
    _task_json(out, task="sid", layout="voxceleb1", source=str(root.resolve()), counts=counts)
    return counts


def prepare_voxceleb1_asv(root, out_root, trials_file: str = "veri_test.txt") -> Dict[str, int]:
    """ASV: train on every speaker outside the trial list (VoxCeleb1 dev), test on the trial list."""
    root, out = Path(root), Path(out_root)
    f = _need(root / trials_file, "VoxCeleb1 verification trials")
    trials, test = [], {}
    for n, line in enumerate(f.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 3 or parts[0] not in ("0", "1"):
            raise InputError(f"{f}:{n}: expected '0|1 enroll.wav test.wav', got {line!r}")
        a, b = (_vox_row(root, p, f"{f}:{n}") for p in parts[1:])
        test[a["utt"]], test[b["utt"]] = a, b
        trials.append(f"{a['utt']} {b['utt']} {'target' if parts[0] == '1' else 'nontarget'}")
    test_spk = {r["spk"] for r in test.values()}
    train = [
        _vox_row(root, str(w.relative_to(root / "wav")), str(w))
        for w in sorted((root / "wav").glob("*/*/*.wav"))
        if w.relative_to(root / "wav").parts[0] not in test_spk
    ]
    _write(out / "train", train, ["utt2label"])
    _write(out / "test", sorted(test.values(), key=lambda r: r["utt"]), ["utt2label"])
    write_text(out / "test" / "trials", "\n".join(trials) + "\n")
    counts = {"train": len(train), "test": len(test), "trials": len(trials)}
    _task_json(out, task="asv", layout="voxceleb1", source=str(root.resolve()), counts=counts)
    return counts


# What each real layout prepares; the mini corpus prepares every task at once.
LAYOUT_TASKS, MINI_TASKS = SUPERB_LAYOUT_TASKS, SUPERB_MINI_TASKS


def prepare_task_dirs(
    layout: str,
    task: str,
    src: str,
    out,
    test_src: Optional[str] = None,
    lexicon: Optional[str] = None,
    skip_oov: bool = False,
    fold: int = 1,
) -> dict:
    """``speechssl data prep-superb``: the task dir(s) of ``task`` (``all`` for the mini layouts) from
    ``src`` in ``layout``; the mini layouts write ``out/<task>``, the others ``out`` itself.
    For ``librispeech``, ``src`` is ``train=DIR,dev=DIR,test=DIR`` or their parent."""
    out = Path(out)
    if layout == "mini":
        return prepare_mini(src, out, MINI_TASKS if task == "all" else [task])
    if layout == "mini_librispeech":  # real speech: the recipe's Mini LibriSpeech + Libri-light data dirs
        from .superb_prep_real_speech import TASKS, prepare_mini_librispeech

        return {t: prepare_mini_librispeech(t, src, out / t) for t in (TASKS if task == "all" else [task])}
    if layout not in LAYOUT_TASKS:
        raise InputError(f"unknown layout {layout!r}; choose mini or one of {', '.join(LAYOUT_TASKS)}")
    expected = LAYOUT_TASKS[layout]
    if task not in expected:
        raise InputError(
            f"layout {layout} prepares {' or '.join(expected)}, not {task}"
            + (" (--task all works with --layout mini)" if task == "all" else "")
        )
    if layout == "librispeech":
        splits = (
            dict(kv.split("=", 1) for kv in src.split(","))
            if "=" in src
            else {s: str(Path(src) / s) for s in ("train", "dev", "test")}
        )
        return prepare_librispeech_task(task, splits, out, lexicon, skip_oov)
    if layout == "speech_commands":
        return prepare_speech_commands(src, out, test_src)
    if layout == "fluent":
        return prepare_fluent_speech_commands(src, out)
    if layout == "iemocap":
        return prepare_iemocap(src, out, fold)
    if layout in ("snips", "librimix", "quesst14"):
        return {"snips": prepare_snips, "librimix": prepare_librimix, "quesst14": prepare_quesst14}[layout](src, out)
    return prepare_voxceleb1_sid(src, out) if task == "sid" else prepare_voxceleb1_asv(src, out)
