"""Query-by-example spoken term detection: subsequence DTW between a spoken query and each document over
one layer's features, scored as SUPERB scores QbE (QUESST 2014): MTWV, with MAP beside it.

* Distance: cosine distance ``1 - cos`` between frames, each sequence normalised per dimension first
  (s3prl's ``feature_normalization``).
* Subsequence DTW with the asymmetric step pattern (every query frame is matched once; the match may
  start and end anywhere in the document): ``D[i, j] = d[i, j] + min(D[i-1, j], D[i-1, j-1], D[i-1, j-2])``,
  cost ``min_j D[Tq-1, j] / Tq``; the detection score is its negative.
* TWV (NIST STD 2006, the QUESST 2014 evaluation plan): for a threshold theta, over the terms that occur,
  ``TWV = 1 - mean_t [P_miss(t) + beta P_fa(t)]``, ``P_fa`` over the documents without the term;
  ``beta = (C_fa / C_miss) (1 / P_target - 1)`` with QUESST's ``C_miss = 100, C_fa = 1, P_target = 0.0008``
  (beta = 12.49). MTWV is the TWV at the best single threshold.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

QUESST_BETA = (1.0 / 100.0) * (1.0 / 0.0008 - 1.0)  # 12.49


def _normalise(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float32)
    x = (x - x.mean(0, keepdims=True)) / (x.std(0, keepdims=True) + 1e-5)
    return x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-8)


def subsequence_dtw_cost(query: np.ndarray, doc: np.ndarray) -> float:
    """Length-normalised cost of the best match of ``query [Tq, D]`` anywhere in ``doc [Td, D]``."""
    q, d = _normalise(query), _normalise(doc)
    dist = 1.0 - q @ d.T  # [Tq, Td]
    acc = dist[0].copy()
    inf = np.full(2, np.inf, dtype=acc.dtype)
    for i in range(1, len(q)):
        prev = np.concatenate([inf, acc])  # prev[j + 2] = acc[j]
        acc = dist[i] + np.minimum(np.minimum(prev[2:], prev[1:-1]), prev[:-2])
    return float(acc.min() / len(q))


def mtwv(scores: np.ndarray, truth: np.ndarray, beta: float = QUESST_BETA) -> float:
    """Maximum TWV over one global threshold. ``scores``, ``truth``: ``[queries, documents]``."""
    has = truth.any(1)
    scores, truth = scores[has], truth[has].astype(bool)
    if not len(scores):
        return 0.0
    n_true = truth.sum(1)
    n_false = (~truth).sum(1)
    best = -np.inf
    for theta in np.unique(scores):
        detected = scores >= theta
        p_miss = 1.0 - (detected & truth).sum(1) / n_true
        p_fa = (detected & ~truth).sum(1) / np.maximum(n_false, 1)
        best = max(best, 1.0 - float(np.mean(p_miss + beta * p_fa)))
    return max(best, 0.0)  # detecting nothing has TWV 0: a threshold above every score is always allowed


def mean_average_precision(scores: np.ndarray, truth: np.ndarray) -> float:
    """MAP over the queries that have a true document, documents ranked by score."""
    aps = []
    for s, t in zip(scores, truth.astype(bool)):
        if not t.any():
            continue
        order = np.argsort(-s, kind="stable")
        hits = t[order]
        precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
        aps.append(float((precision * hits).sum() / hits.sum()))
    return float(np.mean(aps)) if aps else 0.0


def score_matrix(queries: Sequence[np.ndarray], docs: Sequence[np.ndarray]) -> np.ndarray:
    """Detection scores ``[queries, documents]`` (negative DTW costs)."""
    return np.array([[-subsequence_dtw_cost(q, d) for d in docs] for q in queries])


def truth_matrix(query_terms: Sequence[str], doc_words: Sequence[set]) -> np.ndarray:
    return np.array([[term in words for words in doc_words] for term in query_terms])


__all__ = ["QUESST_BETA", "mean_average_precision", "mtwv", "score_matrix", "subsequence_dtw_cost", "truth_matrix"]
