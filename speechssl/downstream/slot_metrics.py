"""Slot filling metrics as SUPERB computes them (s3prl ``downstream/ctc/metric.py``): transcripts carry slots
as ``B-<type> value words E-<type>``.

* slot-type F1: per utterance, F1 between the sets of slot types in hypothesis and reference (1 when both
  have none, 0 when only one has), averaged over utterances;
* slot-value CER: for every reference slot value, the hypothesis value of the same type with the lowest
  CER ("" when the type is missing), then the CER over all those pairs.
"""

from __future__ import annotations

import re
from typing import Dict, List, Sequence, Tuple

_SLOT = re.compile(r"B-(\S+) (.+?) E-\1")


def slots_of(text: str) -> Dict[str, List[str]]:
    """``{type: [values]}`` of a tagged transcript (tags inside a value are dropped)."""
    text = re.sub(r" +", " ", text)
    out: Dict[str, List[str]] = {}
    for kind, value in _SLOT.findall(text):
        value = re.sub(r"[BE]-\S+ ?", "", value).strip()
        out.setdefault(kind, []).append(value)
    return out


def strip_slots(text: str) -> str:
    return " ".join(w for w in text.split() if not re.match(r"^[BE]-\S+$", w))


def _edit_distance(a: Sequence, b: Sequence) -> int:
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def cer(hyps: Sequence[str], refs: Sequence[str]) -> float:
    errors = sum(_edit_distance(h, r) for h, r in zip(hyps, refs))
    return errors / max(1, sum(len(r) for r in refs))


def slot_type_f1(hyps: Sequence[str], refs: Sequence[str]) -> float:
    scores = []
    for h, r in zip(hyps, refs):
        hs, rs = set(slots_of(h)), set(slots_of(r))
        if not hs and not rs:
            scores.append(1.0)
        elif not hs or not rs:
            scores.append(0.0)
        else:
            p, rec = len(hs & rs) / len(hs), len(hs & rs) / len(rs)
            scores.append(2 * p * rec / (p + rec) if p + rec else 0.0)
    return sum(scores) / max(1, len(scores))


def slot_value_pairs(hyps: Sequence[str], refs: Sequence[str]) -> Tuple[List[str], List[str]]:
    """(hypothesis values, reference values) paired as the slot-value CER pairs them."""
    hv, rv = [], []
    for h, r in zip(hyps, refs):
        hd, rd = slots_of(h), slots_of(r)
        for kind, values in rd.items():
            for ref_value in values:
                cands = hd.get(kind, [])
                best = min(cands, key=lambda c: cer([c], [ref_value])) if cands else ""
                hv.append(best)
                rv.append(ref_value)
    return hv, rv


def slot_value_cer(hyps: Sequence[str], refs: Sequence[str]) -> float:
    hv, rv = slot_value_pairs(hyps, refs)
    return cer(hv, rv) if rv else 0.0


__all__ = ["cer", "slot_type_f1", "slot_value_cer", "slot_value_pairs", "slots_of", "strip_slots"]
