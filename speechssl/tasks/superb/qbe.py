"""QbE: query-by-example spoken term detection (SUPERB: QUESST 2014, MTWV). Nothing trains: every hidden
state is tried with subsequence DTW (:mod:`speechssl.downstream.qbe`), the layer with the best dev MTWV is
scored on test, MAP reported beside it."""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

import numpy as np

from ...downstream.qbe import mean_average_precision, mtwv, score_matrix, truth_matrix
from ...utils.atomic import write_json
from .base import Scored, Split, SuperbTask, read_labels, register


@register
class QueryByExample(SuperbTask):
    name, metric, order = "qbe", "MTWV", 8
    higher_is_better = True
    ideal = 1.0
    trains = False
    splits = ("dev", "test", "dev_queries", "test_queries")

    def targets(self) -> Tuple[Dict[str, Dict[str, Any]], Any]:
        out = {}
        for s, d in self.dirs.items():
            if s.endswith("_queries"):
                out[s] = {u: t.lower() for u, t in read_labels(d, "utt2label").items()}
            else:  # the terms a document contains: its words (mini corpus) or the ids of its queries (QUESST)
                terms = d.extra.get("utt2terms") or read_labels(d, "text")
                out[s] = {u: {w.lower() for w in t.split()} for u, t in terms.items()}
        return out, None

    @staticmethod
    def _layer(split: Split, layer: int) -> List[np.ndarray]:
        feats = []
        for i in range(len(split)):
            states, lengths = split.batch([i])
            feats.append(states[layer, 0, : int(lengths[0])].numpy())
        return feats

    def _measure(self, queries: Split, docs: Split, layer: int) -> Tuple[float, float, np.ndarray]:
        scores = score_matrix(self._layer(queries, layer), self._layer(docs, layer))
        truth = truth_matrix(queries.targets, docs.targets)
        return mtwv(scores, truth), mean_average_precision(scores, truth), scores

    def evaluate_layers(self, splits: Dict[str, Split]) -> Dict[str, Any]:
        """Every layer on dev, the best on test: the result fields the runner writes."""
        num_states = splits["dev"].source.num_states
        dev = [self._measure(splits["dev_queries"], splits["dev"], layer)[:2] for layer in range(num_states)]
        best = int(np.argmax([m for m, _ in dev]))
        value, test_map, scores = self._measure(splits["test_queries"], splits["test"], best)
        self.out.mkdir(parents=True, exist_ok=True)
        write_json(
            self.out / "scores_test.json",
            {
                "queries": splits["test_queries"].utts,
                "documents": splits["test"].utts,
                "layer": best,
                "scores": np.round(scores, 5).tolist(),
            },
        )
        return {
            "value": round(value, 4),
            "dev": round(dev[best][0], 4),
            "best_layer": best,
            "map": round(100 * test_map, 2),
            "dev_per_layer": [
                {"layer": i, "mtwv": round(m, 4), "map": round(100 * a, 2)} for i, (m, a) in enumerate(dev)
            ],
            "layer_weights": [1.0 if i == best else 0.0 for i in range(num_states)],
            "test_utterances": len(splits["test_queries"]) * len(splits["test"]),
        }

    # a QbE run has no head: the training interface is not used
    def head(self, dim, cfg, num_out):
        raise NotImplementedError("QbE trains nothing")

    def loss(self, head_out, targets, head):
        raise NotImplementedError("QbE trains nothing")

    def score(self, outputs, split: Split, write: bool) -> Scored:
        raise NotImplementedError("QbE is scored by evaluate_layers")
