"""The LibriSpeech layout as Kaldi data dirs (as Kaldi's ``local/data_prep.sh``), and frame labels from CTM."""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np

from .kaldi_dir import DataDir, DataDirError


def prepare_librispeech(corpus_dir: os.PathLike, subset: str, out_dir: os.PathLike) -> DataDir:
    """LibriSpeech layout (``SUBSET/SPK/CHAPTER/SPK-CHAPTER-UTT.flac`` and
    ``SPK-CHAPTER.trans.txt``) -> a data dir, as Kaldi's ``local/data_prep.sh``: speaker =
    reader-chapter, ``spk2gender`` from ``SPEAKERS.TXT`` when present.

    A subset made by ``speechssl corpus synth`` also yields its labels: ``text.phone``
    (phone sequence), ``alignments.ctm``, ``utt2kind``, ``utt2keyword``, ``utt2intent``
    (``action|object|location``) and ``utt2reader`` (the reader across chapters).
    """

    corpus_dir = Path(corpus_dir)
    src = corpus_dir / subset
    if not src.is_dir():
        raise DataDirError(f"{src}: LibriSpeech subset directory not found")
    d = DataDir(text={})
    extra = {"utt2reader": {}}
    read_chapters(src, d, extra["utt2reader"])
    if not d.utt2spk:
        raise DataDirError(f"{src}: no */*/*.trans.txt transcripts found")
    speakers_txt = next((p for p in (corpus_dir / "SPEAKERS.TXT", src.parent / "SPEAKERS.TXT") if p.exists()), None)
    if speakers_txt is not None:
        gender = {}
        for line in speakers_txt.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith(";") or "|" not in line:
                continue
            cols = [c.strip() for c in line.split("|")]
            gender[cols[0]] = cols[1].lower()
        spk_gender = {spk: gender[spk.split("-")[0]] for spk in set(d.utt2spk.values()) if spk.split("-")[0] in gender}
        if spk_gender:
            d.verbatim["spk2gender"] = "".join(f"{s} {g}\n" for s, g in sorted(spk_gender.items()))
    d.extra.update(extra)
    meta = src / "metadata.jsonl"
    if meta.exists():  # the synthetic corpus: task labels and phone alignments
        kinds, keywords, intents = {}, {}, {}
        for line in meta.read_text().splitlines():
            m = json.loads(line)
            if m["utt"] not in d.utt2spk:
                continue
            kinds[m["utt"]] = m["kind"]
            if m.get("keyword"):
                keywords[m["utt"]] = m["keyword"]
            if m.get("intent"):
                intents[m["utt"]] = "|".join(m["intent"]).replace(" ", "_")
        d.extra.update({"utt2kind": kinds, "utt2keyword": keywords, "utt2intent": intents})
        ctm = (src / "alignments.ctm").read_text()
        d.verbatim["alignments.ctm"] = ctm
        phones: Dict[str, List[str]] = defaultdict(list)
        for line in ctm.splitlines():
            utt, _, _, _, phone = line.split()
            if phone != "SIL":
                phones[utt].append(phone)
        d.extra["text.phone"] = {u: " ".join(p) for u, p in phones.items() if u in d.utt2spk}
    d.compute_utt2dur()
    d.write(out_dir)
    return d


def read_chapters(src: Path, d: DataDir, utt2reader: Dict[str, str]) -> None:
    """Add every ``SPK/CHAPTER/SPK-CHAPTER.trans.txt`` under ``src`` to ``d`` (audio = the ``.flac`` or
    ``.wav`` beside it; speaker = reader-chapter, as Kaldi's ``local/data_prep.sh``)."""
    for trans in sorted(Path(src).glob("*/*/*.trans.txt")):
        reader, chapter = trans.parent.parent.name, trans.parent.name
        for n, line in enumerate(trans.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            parts = line.split(maxsplit=1)
            utt = parts[0]
            if not utt.startswith(f"{reader}-{chapter}-"):
                raise DataDirError(f"{trans}:{n}: utterance {utt!r} does not belong to {reader}-{chapter}")
            audio = next(
                (trans.parent / f"{utt}{ext}" for ext in (".flac", ".wav") if (trans.parent / f"{utt}{ext}").exists()),
                None,
            )
            if audio is None:
                raise DataDirError(f"{trans}:{n}: no audio file {utt}.flac next to it")
            d.wav_scp[utt] = str(audio.resolve())
            d.text[utt] = parts[1].strip() if len(parts) > 1 else ""
            d.utt2spk[utt] = f"{reader}-{chapter}"
            utt2reader[utt] = reader


def find_librispeech_root(corpus_dir: os.PathLike, subsets: List[str]) -> Path:
    """The folder holding the subsets: ``corpus_dir`` itself (``/data/LibriSpeech``) or its ``LibriSpeech/``
    (``/data``), whichever holds the first subset; an error names both places looked at."""
    corpus_dir = Path(corpus_dir)
    for root in (corpus_dir, corpus_dir / "LibriSpeech"):
        if subsets and (root / subsets[0]).is_dir():
            return root
    raise DataDirError(
        f"{corpus_dir}: subset {subsets[0] if subsets else '?'} found neither in it nor in "
        f"{corpus_dir / 'LibriSpeech'} (point --corpus-dir at either, or pass --download true)"
    )


def read_ctm_frames(ctm_text: str, frame_shift: float = 0.01) -> Dict[str, List[str]]:
    """Frame-level labels (one per ``frame_shift``) from a CTM ``utt 1 start dur label``; a
    frame takes the label covering its centre."""
    segs: Dict[str, List[Tuple[float, float, str]]] = defaultdict(list)
    for line in ctm_text.splitlines():
        utt, _, s, dur, label = line.split()
        segs[utt].append((float(s), float(s) + float(dur), label))
    out = {}
    for utt, ss in segs.items():
        end = ss[-1][1]
        n = int(round(end / frame_shift))
        centres = (np.arange(n) + 0.5) * frame_shift
        starts = np.array([s for s, _, _ in ss])
        idx = np.clip(np.searchsorted(starts, centres, side="right") - 1, 0, len(ss) - 1)
        out[utt] = [ss[i][2] for i in idx]
    return out
