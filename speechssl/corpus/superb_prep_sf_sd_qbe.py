"""SUPERB task dirs for SF, SD and QbE from the layouts the benchmark uses.

  * Audio SNIPS (SF; s3prl downstream/ctc/snips.yaml): ``all.iob.snips.txt`` (``<spk>-snips-<split>-<n> BOS
    words EOS<TAB>O iob-tags intent``) and ``{train,valid,test}/<spk>-snips-<split>-<n>.wav``; the benchmark's
    speaker split (8 synthetic voices train, 4 dev, 4 test).
  * LibriMix (SD; s3prl downstream/diarization, Libri2Mix 16 kHz ``max``):
    ``Libri2Mix/wav16k/max/metadata/mixture_{train-100,dev,test}_mix_both.csv`` with the mixtures, and the
    LibriSpeech speech-activity RTTMs ``metadata/LibriSpeech/{train_clean_100,dev_clean,test_clean}.rttm``
    that give who speaks when (both sources start at 0 in a LibriMix mixture).
  * QUESST 2014 (QbE; English queries and documents, as SUPERB): ``Audio/``, ``dev_queries/``,
    ``eval_queries/``, ``scoring/language_key_{utterances,dev,eval}.lst`` and
    ``scoring/groundtruth_quesst14_{dev,eval}/quesst14_{dev,eval}.rttm`` (``LEXEME <document> ... <query>``).

Every missing file or malformed line raises an error naming the file (and line) and the reason.
"""

from __future__ import annotations

import csv
import logging
import re
from pathlib import Path
from typing import Dict, List

from ..errors import InputError, MissingInputError
from ..utils.atomic import write_text
from .task_dirs import need as _need
from .task_dirs import task_json as _task_json
from .task_dirs import write_split

log = logging.getLogger(__name__)

SPLITS = ("train", "dev", "test")


# ------------------------------------------------------------------------------------ Audio SNIPS (SF)
SNIPS_SPEAKERS = {
    "train": ("Ivy", "Joanna", "Joey", "Justin", "Kendra", "Kimberly", "Matthew", "Salli"),
    "dev": ("Aditi", "Amy", "Geraint", "Nicole"),
    "test": ("Brian", "Emma", "Raveena", "Russell"),
}
SNIPS_DIRS = {"train": "train", "dev": "valid", "test": "test"}


def iob_to_slot_text(words: List[str], tags: List[str]) -> str:
    """IOB tags -> the slot text SF's CTC head learns: ``PLAY B-artist ADELE E-artist``.

    A span opens at ``B-x`` (or at an ``I-x`` that does not continue an ``x`` span) and closes before the
    next word outside it."""
    out, open_kind = [], None
    for word, tag in zip(words, tags):
        kind = tag[2:] if tag[:2] in ("B-", "I-") else None
        if open_kind is not None and (kind != open_kind or tag.startswith("B-")):
            out.append(f"E-{open_kind}")
            open_kind = None
        if kind is not None and open_kind is None:
            out.append(f"B-{kind}")
            open_kind = kind
        out.append(word.upper())
    if open_kind is not None:
        out.append(f"E-{open_kind}")
    return " ".join(out)


def read_snips_labels(path: Path) -> Dict[str, dict]:
    """``{uid: {text, slots, intent}}`` from ``all.iob.snips.txt``."""
    labels = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        head, sep, iob = line.partition("\t")
        words, tags = head.split(), iob.split()
        if not sep or len(words) < 3 or words[1] != "BOS" or words[-1] != "EOS":
            raise InputError(f"{path}:{n}: expected '<uid> BOS words EOS<TAB>O tags intent', got {line[:80]!r}")
        words = words[2:-1]
        if len(tags) != len(words) + 2:
            raise InputError(f"{path}:{n}: {len(words)} words but {len(tags) - 2} slot tags")
        labels[head.split()[0]] = {
            "text": " ".join(w.upper() for w in words),
            "slots": iob_to_slot_text(words, tags[1:-1]),
            "intent": tags[-1],
        }
    return labels


def prepare_snips(root, out_root) -> Dict[str, int]:
    """SF on Audio SNIPS as SUPERB runs it: ``text.slot`` (slot-tagged words), ``text`` and
    ``utt2label`` (the intent) per split, the benchmark's voices per split. Recordings without a label
    line are counted and reported, not guessed."""
    root, out = Path(root), Path(out_root)
    labels = read_snips_labels(_need(root / "all.iob.snips.txt", "Audio SNIPS transcripts with IOB slot tags"))
    counts = {}
    for split in SPLITS:
        wav_dir = _need(root / SNIPS_DIRS[split], f"Audio SNIPS {SNIPS_DIRS[split]} recordings")
        rows, unlabelled = [], []
        for wav in sorted(wav_dir.glob("*.wav")):
            spk = wav.stem.split("-")[0]
            if spk not in SNIPS_SPEAKERS[split]:
                continue
            if wav.stem not in labels:
                unlabelled.append(wav.name)
                continue
            lab = labels[wav.stem]
            rows.append(
                {
                    "utt": wav.stem,
                    "wav": str(wav.resolve()),
                    "spk": spk,
                    "text": lab["text"],
                    "slots": lab["slots"],
                    "label": lab["intent"],
                }
            )
        if unlabelled:
            log.warning(
                "%s: %d recordings have no line in all.iob.snips.txt and are left out (first: %s)",
                wav_dir,
                len(unlabelled),
                unlabelled[0],
            )
        write_split(out / split, rows, ["text.slot", "utt2label", "text"])
        counts[split] = len(rows)
    _task_json(out, task="sf", layout="snips", source=str(root.resolve()), counts=counts)
    return counts


# ------------------------------------------------------------------------------------ LibriMix (SD)
LIBRIMIX_SPLITS = {
    "train": ("train-100", "train_clean_100"),
    "dev": ("dev", "dev_clean"),
    "test": ("test", "test_clean"),
}


def _read_activity_rttm(path: Path) -> Dict[str, List[tuple]]:
    """``{utterance: [(speaker, start, end)]}`` from a LibriSpeech speech-activity RTTM."""
    out: Dict[str, List[tuple]] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        f = line.split()
        if not f:
            continue
        if f[0] != "SPEAKER" or len(f) < 8:
            raise InputError(f"{path}:{n}: expected an RTTM SPEAKER line, got {line[:80]!r}")
        try:
            start, dur = float(f[3]), float(f[4])
        except ValueError:
            raise InputError(f"{path}:{n}: start and duration must be numbers, got {f[3]!r} {f[4]!r}") from None
        out.setdefault(f[1], []).append((f[7], start, start + dur))
    return out


def prepare_librimix(root, out_root, mode: str = "max", rate: str = "16k") -> Dict[str, int]:
    """SD on Libri2Mix as SUPERB runs it: each mixture a recording, its RTTM the two sources' speech
    activity (LibriSpeech utterance ids ``spk-chapter-n`` joined by ``_`` in ``mixture_ID``)."""
    root, out = Path(root), Path(out_root)
    base = root / "Libri2Mix" / f"wav{rate}" / mode
    counts = {}
    for split, (mix_split, rttm_name) in LIBRIMIX_SPLITS.items():
        meta = _need(base / "metadata" / f"mixture_{mix_split}_mix_both.csv", "Libri2Mix mixture metadata")
        activity = _read_activity_rttm(
            _need(root / "metadata" / "LibriSpeech" / f"{rttm_name}.rttm", "LibriSpeech speech activity of the sources")
        )
        rows, rttm = [], []
        with open(meta, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            for field in ("mixture_ID", "mixture_path"):
                if field not in (reader.fieldnames or []):
                    raise InputError(f"{meta}: no {field} column (columns: {reader.fieldnames})")
            for n, rec in enumerate(reader, 2):
                mix_id = rec["mixture_ID"]
                wav = Path(rec["mixture_path"])
                if not wav.is_file():  # metadata written on another machine: the standard place
                    wav = base / mix_split / "mix_both" / f"{mix_id}.wav"
                if not wav.is_file():
                    raise MissingInputError(
                        f"{meta}:{n}: mixture {mix_id}: neither {rec['mixture_path']} nor {wav} exists"
                    )
                sources = mix_id.split("_")
                if len(sources) != 2:
                    raise InputError(f"{meta}:{n}: mixture_ID {mix_id!r} is not two utterance ids joined by '_'")
                for src in sources:
                    spk = src.split("-")[0]
                    segs = activity.get(src) or activity.get(src[len(spk) + 1 :])
                    if segs is None:
                        raise MissingInputError(
                            f"{meta}:{n}: source {src} of {mix_id} has no speech activity in {rttm_name}.rttm"
                        )
                    for _seg_spk, start, end in segs:
                        rttm.append(f"SPEAKER {mix_id} 1 {start:.3f} {end - start:.3f} <NA> <NA> {spk} <NA> <NA>")
                rows.append({"utt": mix_id, "wav": str(wav.resolve()), "spk": mix_id})
        write_split(out / split, rows)
        write_text(out / split / "rttm", "\n".join(rttm) + "\n")
        counts[split] = len(rows)
    _task_json(out, task="sd", layout="librimix", source=str(root.resolve()), mode=mode, counts=counts)
    return counts


# ------------------------------------------------------------------------------------ QUESST 2014 (QbE)
_QUERY = re.compile(r"^quesst14_(dev|eval)_\d+$")


def _quesst_list(root: Path, name: str, language: str) -> List[Path]:
    """The audio files of ``scoring/<name>`` in ``language`` (lines ``<db>/<dir>/<file>.wav <language>``)."""
    lst = _need(root / "scoring" / name, "QUESST 2014 language key")
    paths = []
    for n, line in enumerate(lst.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2:
            raise InputError(f"{lst}:{n}: expected '<path> <language>', got {line!r}")
        if parts[1] != language:
            continue
        rel = Path(parts[0])
        wav = root / rel if (root / rel).is_file() else root / Path(*rel.parts[1:])  # paths start with the db folder
        if not wav.is_file():
            raise MissingInputError(f"{lst}:{n}: {wav} does not exist")
        paths.append(wav)
    if not paths:
        raise InputError(f"{lst}: no {language} recordings")
    return paths


def _quesst_truth(path: Path) -> Dict[str, set]:
    """``{document: {queries it contains}}`` from a QUESST ground-truth RTTM's LEXEME lines."""
    found: Dict[str, set] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        f = line.split()
        if not f or f[0] != "LEXEME":
            continue
        query = next((x for x in f[2:] if _QUERY.match(x)), None)
        if query is None:
            raise InputError(f"{path}:{n}: a LEXEME line without a query id: {line[:80]!r}")
        found.setdefault(f[1], set()).add(query)
    return found


def prepare_quesst14(root, out_root, language: str = "nnenglish") -> Dict[str, dict]:
    """QbE on QUESST 2014 as SUPERB runs it (English only): ``{dev,test}_queries`` (``utt2label``: the
    query's own id) and ``{dev,test}`` (every document, ``utt2terms``: the queries it contains, from the
    ground truth). Dev and test search the same documents with their own queries."""
    root, out = Path(root), Path(out_root)
    docs = _quesst_list(root, "language_key_utterances.lst", language)
    counts = {}
    for split, key in (("dev", "dev"), ("test", "eval")):
        queries = _quesst_list(root, f"language_key_{key}.lst", language)
        truth = _quesst_truth(
            _need(root / "scoring" / f"groundtruth_quesst14_{key}" / f"quesst14_{key}.rttm", "QUESST 2014 ground truth")
        )
        q_rows = [{"utt": q.stem, "wav": str(q.resolve()), "spk": q.stem, "label": q.stem} for q in queries]
        d_rows = [
            {"utt": d.stem, "wav": str(d.resolve()), "spk": d.stem, "terms": " ".join(sorted(truth.get(d.stem, ())))}
            for d in docs
        ]
        write_split(out / f"{split}_queries", q_rows, ["utt2label"])
        write_split(out / split, d_rows, ["utt2terms"])
        ids = {r["utt"] for r in q_rows}
        counts[split] = {
            "queries": len(q_rows),
            "documents": len(d_rows),
            "queries_with_a_match": len(ids & {q for t in truth.values() for q in t}),
        }
    _task_json(out, task="qbe", layout="quesst14", source=str(root.resolve()), language=language, counts=counts)
    return counts


__all__ = ["iob_to_slot_text", "prepare_librimix", "prepare_quesst14", "prepare_snips", "read_snips_labels"]
