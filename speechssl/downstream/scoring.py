"""A decode directory in the manner of Kaldi's scoring: hypotheses, references, per-utterance
alignments and the summary line, plus ``results.json``.

Layout of ``out``::

    hyp.txt, ref.txt     ``utt text`` per line (Kaldi text format)
    per_utt              aligned ref / hyp / op rows and #csid counts per utterance (Kaldi's wer_details)
    wer / per            ``%WER 12.34 [ 56 / 454, 3 ins, 10 del, 43 sub ] out`` (and %CER), as compute-wer prints
    results.json         the same numbers, machine-readable
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Sequence

from ..utils.artifacts import DecodeResult
from ..utils.atomic import write_text
from .metrics import error_counts, per_utt_listing


def write_scoring(
    out, utts: Sequence[str], refs: Sequence[str], hyps: Sequence[str], unit: str = "char", extra: Dict = None
) -> Dict:
    """Score and write ``out``; ``unit`` is the vocabulary's (``phone`` gives PER, otherwise WER + CER)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "hyp.txt", "".join(f"{u} {h}".rstrip() + "\n" for u, h in zip(utts, hyps)))
    write_text(out / "ref.txt", "".join(f"{u} {r}".rstrip() + "\n" for u, r in zip(utts, refs)))
    write_text(out / "per_utt", per_utt_listing(utts, refs, hyps))
    result: Dict = {"utterances": len(utts), **(extra or {})}
    if unit == "phone":
        per = error_counts(refs, hyps, "word")
        lines = [per.line("PER", str(out))]
        result["per"] = per.as_dict()
        write_text(out / "per", lines[0] + "\n")
    else:
        wer, cer = error_counts(refs, hyps, "word"), error_counts(refs, hyps, "char")
        lines = [wer.line("WER", str(out)), cer.line("CER", str(out))]
        result["wer"], result["cer"] = wer.as_dict(), cer.as_dict()
        write_text(out / "wer", "\n".join(lines) + "\n")
    DecodeResult.write(out / "results.json", result)
    result["lines"] = lines
    return result
