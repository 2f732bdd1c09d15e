"""Libri-light's limited-supervision sets (``librispeech_finetuning/``) as Kaldi data dirs.

Layout (Kahn et al. 2020): ``1h/{0..5}/{clean,other}/SPK/CHAPTER/*.flac`` (six 10-minute folds),
``9h/{clean,other}/...``, and ``phones/{10min,1h,10h}_phones.txt`` (``utt id id ...``, ids mapped to IPA
phones by ``phones/phones_mapping.json``). The standard sets: ``10min`` = fold ``1h/0``, ``1h`` = the six
folds, ``10h`` = ``1h`` + ``9h``. Each set's data dir gets ``text`` (words), ``text.phone`` (the phone
transcription, when the phones file covers it), ``utt2reader`` and ``utt2cond`` (clean / other).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Dict, List, Tuple

from .kaldi_dir import DataDir, DataDirError
from .librispeech import read_chapters

log = logging.getLogger(__name__)

SETS = ("10min", "1h", "9h", "10h") + tuple(f"1h/{k}" for k in range(6))
PHONES_FILE = {"10min": "10min_phones.txt", "1h": "1h_phones.txt", "9h": "10h_phones.txt", "10h": "10h_phones.txt"}


def find_librilight_root(corpus_dir: os.PathLike) -> Path:
    """``corpus_dir`` itself or its ``librispeech_finetuning/``, whichever holds ``1h/``."""
    corpus_dir = Path(corpus_dir)
    for root in (corpus_dir, corpus_dir / "librispeech_finetuning"):
        if (root / "1h").is_dir():
            return root
    raise DataDirError(
        f"{corpus_dir}: no Libri-light limited-supervision set (1h/) in it or in "
        f"{corpus_dir / 'librispeech_finetuning'}"
    )


def _folders(root: Path, name: str) -> List[Tuple[str, Path]]:
    """``(condition, folder)`` of each LibriSpeech-layout folder a set is made of."""
    if name not in SETS:
        raise DataDirError(f"Libri-light set {name!r}: expected one of {', '.join(SETS)}")
    parts = {
        "10min": ["1h/0"],
        "1h": [f"1h/{k}" for k in range(6)],
        "9h": ["9h"],
        "10h": [f"1h/{k}" for k in range(6)] + ["9h"],
    }.get(name, [name])
    folders = []
    for part in parts:
        if not (root / part).is_dir():
            raise DataDirError(f"{root / part}: missing (Libri-light set {name} needs it)")
        for cond in ("clean", "other"):
            if (root / part / cond).is_dir():
                folders.append((cond, root / part / cond))
            else:  # 9h/clean is absent from some copies: say so, never silently
                log.warning("%s: missing; Libri-light set %s is prepared without it", root / part / cond, name)
    return folders


def read_phone_transcripts(root: Path, name: str) -> Dict[str, str]:
    """``utt -> "p1 p2 ..."`` (IPA symbols) from the set's phones file; an id outside the mapping is an
    error naming the file and line."""
    phones_dir = root / "phones"
    mapping_file = phones_dir / "phones_mapping.json"
    path = phones_dir / PHONES_FILE.get(name, "1h_phones.txt")
    if not path.is_file() or not mapping_file.is_file():
        return {}
    symbols = {int(i): p for p, i in json.loads(mapping_file.read_text(encoding="utf-8")).items()}
    out = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        try:
            out[parts[0]] = " ".join(symbols[int(i)] for i in parts[1:])
        except (KeyError, ValueError) as e:
            raise DataDirError(f"{path}:{n}: phone id {e} is not in {mapping_file.name}") from None
    return out


def prepare_librilight(corpus_dir: os.PathLike, name: str, out_dir: os.PathLike) -> DataDir:
    """One Libri-light set (``10min``, ``1h``, ``1h/K``, ``9h``, ``10h``) -> a data dir at ``out_dir``."""
    root = find_librilight_root(corpus_dir)
    d = DataDir(text={})
    utt2reader: Dict[str, str] = {}
    utt2cond: Dict[str, str] = {}
    for cond, folder in _folders(root, name):
        before = set(d.utt2spk)
        read_chapters(folder, d, utt2reader)
        utt2cond.update({u: cond for u in set(d.utt2spk) - before})
    if not d.utt2spk:
        raise DataDirError(f"{root}: no */*/*.trans.txt transcripts in Libri-light set {name}")
    d.extra.update({"utt2reader": utt2reader, "utt2cond": utt2cond})
    phones = read_phone_transcripts(root, name.split("/")[0] if name.startswith("1h/") else name)
    if phones:
        covered = {u: p for u, p in phones.items() if u in d.utt2spk}
        missing = len(d.utt2spk) - len(covered)
        if missing:
            log.warning(
                "Libri-light %s: %d of %d utterances have no phone transcription", name, missing, len(d.utt2spk)
            )
        d.extra["text.phone"] = covered
    d.compute_utt2dur()
    d.write(out_dir)
    return d


__all__ = ["SETS", "find_librilight_root", "prepare_librilight", "read_phone_transcripts"]
