"""Metrics of the downstream tasks: error rates (WER / CER / PER, by jiwer) with Kaldi-style
per-utterance listings, accuracy, and the equal error rate of verification trials."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import jiwer
import numpy as np

from ..errors import InputError


@dataclass
class ErrorCounts:
    """Edit operations against ``ref`` tokens: the numbers of Kaldi's ``%WER`` line."""

    ref: int = 0
    sub: int = 0
    dele: int = 0
    ins: int = 0

    @property
    def errors(self) -> int:
        return self.sub + self.dele + self.ins

    @property
    def rate(self) -> float:
        """Errors per reference token, in percent (``inf`` on an empty reference set with errors)."""
        if self.ref == 0:
            return 0.0 if self.errors == 0 else float("inf")
        return 100.0 * self.errors / self.ref

    def line(self, name: str = "WER", where: str = "") -> str:
        """``%WER 12.34 [ 56 / 454, 3 ins, 10 del, 43 sub ] where`` as Kaldi's compute-wer prints it."""
        return (
            f"%{name} {self.rate:.2f} [ {self.errors} / {self.ref}, {self.ins} ins, {self.dele} del, "
            f"{self.sub} sub ] {where}"
        ).rstrip()

    def as_dict(self) -> Dict[str, float]:
        return {
            "rate": round(self.rate, 4),
            "errors": self.errors,
            "ref_tokens": self.ref,
            "sub": self.sub,
            "del": self.dele,
            "ins": self.ins,
        }


def _tokens(refs: Sequence[str], hyps: Sequence[str], unit: str) -> Tuple[List[List[str]], List[List[str]]]:
    if len(refs) != len(hyps):
        raise InputError(f"{len(refs)} references but {len(hyps)} hypotheses")
    if unit == "word":
        return [r.split() for r in refs], [h.split() for h in hyps]
    if unit == "char":  # characters of the words, spaces left out (CER as wav2letter/fairseq count it)
        return [list(r.replace(" ", "")) for r in refs], [list(h.replace(" ", "")) for h in hyps]
    raise InputError(f"unit must be word or char, got {unit!r}")


def error_counts(refs: Sequence[str], hyps: Sequence[str], unit: str = "word") -> ErrorCounts:
    """Total substitutions / deletions / insertions (jiwer's Levenshtein alignment).

    ``unit="word"`` splits on whitespace (WER, and PER when tokens are phones); ``"char"`` counts characters
    without the spaces (CER)."""

    r_tok, h_tok = _tokens(refs, hyps, unit)
    total = ErrorCounts()
    keep = [i for i, r in enumerate(r_tok) if r or h_tok[i]]
    for i in keep:
        if not r_tok[i]:  # jiwer refuses empty references: everything hypothesised is inserted
            total.ins += len(h_tok[i])
            continue
        out = jiwer.process_words(" ".join(r_tok[i]), " ".join(h_tok[i]) if h_tok[i] else "")
        total.ref += len(r_tok[i])
        total.sub, total.dele, total.ins = (
            total.sub + out.substitutions,
            total.dele + out.deletions,
            total.ins + out.insertions,
        )
    return total


def per_utt_listing(utts: Sequence[str], refs: Sequence[str], hyps: Sequence[str]) -> str:
    """Kaldi's ``scoring/wer_details/per_utt``: aligned ``ref`` / ``hyp`` / ``op`` rows and ``#csid`` counts
    (``***`` marks an insertion or deletion; ops ``C S I D``)."""

    lines = []
    for utt, ref, hyp in zip(utts, refs, hyps):
        r, h = ref.split(), hyp.split()
        if not r:
            ref_row, hyp_row, ops = ["***"] * len(h), h, ["I"] * len(h)
        else:
            out = jiwer.process_words(" ".join(r), " ".join(h))
            ref_row, hyp_row, ops = [], [], []
            for c in out.alignments[0]:
                rs, hs = r[c.ref_start_idx : c.ref_end_idx], h[c.hyp_start_idx : c.hyp_end_idx]
                if c.type in ("equal", "substitute"):
                    ref_row += rs
                    hyp_row += hs
                    ops += ["C" if c.type == "equal" else "S"] * len(rs)
                elif c.type == "delete":
                    ref_row += rs
                    hyp_row += ["***"] * len(rs)
                    ops += ["D"] * len(rs)
                else:
                    ref_row += ["***"] * len(hs)
                    hyp_row += hs
                    ops += ["I"] * len(hs)
        widths = [max(len(a), len(b), 1) for a, b in zip(ref_row, hyp_row)]

        def fmt(row, widths=widths):
            return " ".join(t.ljust(w) for t, w in zip(row, widths)).rstrip()

        lines += [
            f"{utt} ref  {fmt(ref_row)}",
            f"{utt} hyp  {fmt(hyp_row)}",
            f"{utt} op   {fmt(ops)}",
            f"{utt} #csid {ops.count('C')} {ops.count('S')} {ops.count('I')} {ops.count('D')}",
        ]
    return "\n".join(lines) + ("\n" if lines else "")


def accuracy(pred: Sequence, target: Sequence) -> float:
    """Share of exact matches, in percent."""
    if len(pred) != len(target):
        raise InputError(f"{len(pred)} predictions but {len(target)} targets")
    if not len(target):
        raise InputError("accuracy of an empty set")
    return 100.0 * float(np.mean([p == t for p, t in zip(pred, target)]))


def equal_error_rate(scores: Sequence[float], labels: Sequence[int]) -> Tuple[float, float]:
    """EER (percent) and its threshold for verification ``scores`` with ``labels`` 1 = target trial.

    The ROC is swept over every distinct score (ties move together); the EER is where the miss rate
    and the false-alarm rate cross, interpolated linearly between the two ROC points around the
    crossing (what s3prl computes with ``brentq`` on the interpolated ROC)."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(bool)
    if s.shape != y.shape or s.ndim != 1:
        raise InputError(f"scores {s.shape} and labels {y.shape} must be 1-D and of one length")
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if not n_pos or not n_neg:
        raise InputError(f"EER needs target and non-target trials (have {n_pos} and {n_neg})")
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    last_of_tie = np.r_[s[1:] != s[:-1], True]
    tpr = np.r_[0.0, np.cumsum(y)[last_of_tie] / n_pos]
    fpr = np.r_[0.0, np.cumsum(~y)[last_of_tie] / n_neg]
    thresholds = np.r_[np.inf, s[last_of_tie]]
    gap = (1 - tpr) - fpr  # miss - false alarm: 1 at the top, -1 at the bottom, non-increasing
    i = int(np.argmax(gap <= 0))
    if gap[i] == 0 or i == 0:
        return 100.0 * float(fpr[i]), float(thresholds[i])
    t = gap[i - 1] / (gap[i - 1] - gap[i])
    eer = fpr[i - 1] + t * (fpr[i] - fpr[i - 1])
    thr = (
        thresholds[i]
        if not np.isfinite(thresholds[i - 1])
        else thresholds[i - 1] + t * (thresholds[i] - thresholds[i - 1])
    )
    return 100.0 * float(eer), float(thr)
