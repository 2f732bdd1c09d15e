"""Batches of utterances bounded by padded duration, from length-sorted lists."""

from typing import Dict, List, Optional, Sequence


def duration_batches(
    utts: Sequence[str], durations: Dict[str, float], max_seconds: float, max_utts: Optional[int] = None
) -> List[List[str]]:
    """Sort by duration and cut batches whose *padded* size (``len * longest``) stays under ``max_seconds``.

    An utterance longer than ``max_seconds`` gets a batch of its own rather than being dropped.
    """
    order = sorted(utts, key=lambda u: (durations[u], u))
    batches: List[List[str]] = []
    cur: List[str] = []
    for u in order:
        longest = durations[u]  # sorted ascending: the newcomer is the longest
        if cur and ((len(cur) + 1) * longest > max_seconds or (max_utts and len(cur) >= max_utts)):
            batches.append(cur)
            cur = []
        cur.append(u)
    if cur:
        batches.append(cur)
    return batches


def padding_ratio(batches: Sequence[Sequence[str]], durations: Dict[str, float]) -> float:
    """Fraction of padded (wasted) time over all batches."""
    padded = sum(len(b) * max(durations[u] for u in b) for b in batches)
    real = sum(durations[u] for b in batches for u in b)
    return 1.0 - real / padded if padded else 0.0
