"""SUPERB tasks that only the mini corpus prepares here: SF (the intent's spoken slots tagged), QbE (keyword
utterances as queries, the rest as documents) and SD (two-speaker mixtures with an RTTM from the phone
alignments). :func:`speechssl.corpus.superb_prep.prepare_mini` calls them."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List

from ..data.kaldi_dir import DataDir
from ..errors import MissingInputError
from ..utils.atomic import write_text

SPLITS = ("train", "dev", "test")


SLOT_TYPES = ("object", "location")  # the mini corpus's commands: FSC's intent slots that are spoken


def tag_slots(text: str, intent: str) -> str:
    """``text`` with SUPERB's slot tags around the intent's object and location where they are spoken:
    ``TURN ON THE B-object LIGHTS E-object IN THE B-location KITCHEN E-location``."""
    words = text.split()
    _, *values = intent.split("|")
    spans = []
    for kind, value in zip(SLOT_TYPES, values):
        if value in ("none", ""):
            continue
        target = value.replace("_", " ").upper().split()
        for i in range(len(words) - len(target) + 1):
            if words[i : i + len(target)] == target and not any(a <= i < b for a, b, _ in spans):
                spans.append((i, i + len(target), kind))
                break
    for start, end, kind in sorted(spans, reverse=True):
        words[start:end] = [f"B-{kind}"] + words[start:end] + [f"E-{kind}"]
    return " ".join(words)


def prepare_mini_qbe(d: Dict[str, DataDir], out: Path) -> dict:
    """QbE from the mini corpus: the keyword utterances of dev / test are the spoken queries (their keyword
    is the term), the other utterances of the split with their transcripts are the documents searched."""
    counts = {}
    for s in ("dev", "test"):
        src = d[s]
        kinds, keyword = src.extra.get("utt2kind", {}), src.extra.get("utt2keyword", {})
        queries = [
            u
            for u in src.utt_ids
            if kinds.get(u) == "keyword" and keyword.get(u, "_") not in ("_unknown_", "_silence_")
        ]
        docs = [u for u in src.utt_ids if kinds.get(u) != "keyword" and src.text and u in src.text]
        q = src.subset(queries)
        q.extra, q.text, q.verbatim = {"utt2label": {u: keyword[u] for u in queries}}, None, {}
        q.write(out / f"{s}_queries")
        docs_dir = src.subset(docs)
        docs_dir.extra, docs_dir.verbatim = {}, {}
        docs_dir.write(out / s)
        words = {w for u in docs for w in src.text[u].lower().split()}
        counts[s] = {
            "queries": len(queries),
            "documents": len(docs),
            "queries_with_a_match": sum(keyword[u] in words for u in queries),
        }
    return counts


def _speech_segments(ctm_lines: List[str], gap: float = 0.15) -> List[tuple]:
    """Merged non-silence spans ``(start, end)`` of one utterance's CTM lines (gaps under ``gap`` bridged)."""
    spans = []
    for line in ctm_lines:
        _, _, start, dur, sym = line.split()[:5]
        if sym.lower() in ("sil", "sp", "spn", "<eps>"):
            continue
        a, b = float(start), float(start) + float(dur)
        if spans and a - spans[-1][1] < gap:
            spans[-1] = (spans[-1][0], max(spans[-1][1], b))
        else:
            spans.append((a, b))
    return spans


def prepare_mini_sd(
    d: Dict[str, DataDir], out: Path, data_root: Path, seed: int = 0, most: Dict[str, int] = None
) -> dict:
    """SD from the mini corpus: two-speaker mixtures with overlap, written as 16 kHz files with an RTTM of
    who speaks when (from the corpus's phone alignments): the second talker starts 30-80 % into the first."""
    import random

    import numpy as np

    from ..audio.io import save

    most = most or {"train": 300, "dev": 40, "test": 40}
    counts = {}
    for s in SPLITS:
        src = d[s]
        ctm_file = data_root / s / "alignments.ctm"
        if not ctm_file.is_file():
            raise MissingInputError(f"{ctm_file}: the mini corpus's alignments give SD its reference")
        ctm: Dict[str, List[str]] = {}
        for line in ctm_file.read_text().splitlines():
            if line.strip():
                ctm.setdefault(line.split()[0], []).append(line)
        utts = [u for u in src.utt_ids if u in ctm]
        rng = random.Random(f"sd/{seed}/{s}")
        rows, rttm = [], []
        (out / s / "wav").mkdir(parents=True, exist_ok=True)
        for m in range(min(most[s], len(utts) // 2)):
            a = rng.choice(utts)
            b = rng.choice([u for u in utts if src.utt2spk[u] != src.utt2spk[a]] or utts)
            wa, wb = src.load_audio(a), src.load_audio(b)
            wa, wb = wa / (np.sqrt(np.mean(wa**2)) + 1e-8), wb / (np.sqrt(np.mean(wb**2)) + 1e-8)
            offset = int(rng.uniform(0.3, 0.8) * len(wa))
            mix = np.zeros(max(len(wa), offset + len(wb)), np.float32)
            mix[: len(wa)] += wa
            mix[offset : offset + len(wb)] += wb
            mix *= 0.5 / max(float(np.abs(mix).max()), 1e-8)
            name = f"mix{m:04d}-{a}-{b}"
            wav = out / s / "wav" / f"{name}.wav"
            save(wav, mix, 16000)
            rows.append({"utt": name, "wav": str(wav.resolve()), "spk": name})
            shift = offset / 16000
            for utt, spk, delta in ((a, src.utt2spk[a], 0.0), (b, src.utt2spk[b], shift)):
                for start, end in _speech_segments(ctm[utt]):
                    rttm.append(f"SPEAKER {name} 1 {start + delta:.3f} {end - start:.3f} <NA> <NA> {spk} <NA> <NA>")
        mixtures = DataDir()
        for r in rows:
            mixtures.wav_scp[r["utt"]], mixtures.utt2spk[r["utt"]] = r["wav"], r["spk"]
        mixtures.write(out / s)
        write_text(out / s / "rttm", "\n".join(rttm) + "\n")
        counts[s] = len(rows)
    return counts


__all__ = ["SLOT_TYPES", "prepare_mini_qbe", "prepare_mini_sd", "tag_slots"]
