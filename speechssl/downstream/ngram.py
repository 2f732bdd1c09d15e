"""A word n-gram LM written as ARPA, for CTC beam search when no LM is at hand.

Interpolated absolute discounting (Ney et al., 1994): for a history ``h`` seen ``c(h)`` times
followed by ``t(h)`` distinct words, ``p(w|h) = max(c(h,w) - D, 0) / c(h) + D t(h) / c(h) * p(w|h')``,
with ``h'`` the history shortened by one word. The interpolation weight is exactly an ARPA backoff
weight, so the model is written losslessly and KenLM reads it. For real corpora prefer KenLM's
``lmplz`` (modified Kneser-Ney); this is for small transcripts such as the mini corpus.
"""

from __future__ import annotations

import collections
import math
from functools import cache
from pathlib import Path
from typing import Dict, Iterable, List, Tuple

from ..data.kaldi_dir import DataDir
from ..errors import InputError
from ..utils.atomic import atomic_path
from ..utils.text import read_text_lines

BOS, EOS, UNK = "<s>", "</s>", "<unk>"


def train_arpa(sentences: Iterable[str], path, order: int = 3, discount: float = 0.5) -> Dict[str, int]:
    """Count ``order``-grams of whitespace-tokenised ``sentences`` and write ``path`` (ARPA).

    Returns the number of n-grams of each order."""
    if order < 1 or not 0 < discount < 1:
        raise InputError(f"order must be >= 1 and 0 < discount < 1 (got {order}, {discount})")
    counts = [collections.Counter() for _ in range(order + 1)]  # counts[n][ngram tuple]
    for s in sentences:
        seq = [BOS] + s.split() + [EOS]
        for n in range(1, order + 1):
            for i in range(max(1, n - 1), len(seq)) if n > 1 else range(1, len(seq)):
                if i - n + 1 >= 0:
                    counts[n][tuple(seq[i - n + 1 : i + 1])] += 1
    if not counts[1]:
        raise InputError("no sentences to count")
    hist_total = [collections.Counter() for _ in range(order + 1)]  # c(h) and t(h) per order
    hist_types = [collections.Counter() for _ in range(order + 1)]
    for n in range(2, order + 1):
        for g, c in counts[n].items():
            hist_total[n][g[:-1]] += c
            hist_types[n][g[:-1]] += 1
    vocab = sorted({g[0] for g in counts[1]} | {EOS, UNK})
    total1, types1 = sum(counts[1].values()), len(counts[1])
    uniform = 1.0 / len(vocab)

    @cache
    def prob(g: Tuple[str, ...]) -> float:
        if len(g) == 1:
            return max(counts[1][g] - discount, 0) / total1 + discount * types1 / total1 * uniform
        n, h = len(g), g[:-1]
        ch = hist_total[n][h]
        if not ch:
            return prob(g[1:])
        return max(counts[n][g] - discount, 0) / ch + discount * hist_types[n][h] / ch * prob(g[1:])

    def bow(h: Tuple[str, ...]) -> float:
        n = len(h) + 1
        if n > order or not hist_total[n][h]:
            return 0.0
        return math.log10(discount * hist_types[n][h] / hist_total[n][h])

    entries = [[] for _ in range(order + 1)]
    for w in vocab + [BOS]:
        lp = -99.0 if w == BOS else math.log10(prob((w,)))
        entries[1].append((lp, (w,), bow((w,))))
    for n in range(2, order + 1):
        for g in sorted(counts[n]):
            entries[n].append((math.log10(prob(g)), g, bow(g)))
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(p) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write("\n\\data\\\n")
        for n in range(1, order + 1):
            f.write(f"ngram {n}={len(entries[n])}\n")
        for n in range(1, order + 1):
            f.write(f"\n\\{n}-grams:\n")
            for lp, g, b in entries[n]:
                f.write(f"{lp:.6f}\t{' '.join(g)}" + (f"\t{b:.6f}" if n < order else "") + "\n")
        f.write("\n\\end\\\n")
    return {f"{n}-grams": len(entries[n]) for n in range(1, order + 1)}


def read_transcripts(paths: Iterable[str]) -> List[str]:
    """The transcripts of data dirs (their ``text``) and Kaldi ``utt words...`` files; empty input fails
    naming it, a line with no words is skipped."""
    texts: List[str] = []
    for t in paths:
        p = Path(t)
        if p.is_dir():
            table = DataDir.read(p).text or {}
        else:
            table = {}
            for line in read_text_lines(p):
                parts = line.split(maxsplit=1)
                if len(parts) == 2:
                    table[parts[0]] = parts[1]
        if not table:
            raise InputError(f"{t}: no transcripts")
        texts += list(table.values())
    return texts
