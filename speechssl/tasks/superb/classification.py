"""Utterance classification shared by KS, SID (one label) and IC (one label per slot)."""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Sequence, Tuple

import torch
from torch import nn

from ...downstream.heads import IntentHead, MeanPoolLinear
from ...downstream.metrics import accuracy
from ...errors import InputError
from ...utils.atomic import write_text
from .base import PoolingHeadConfig, Scored, Split, SuperbTask, read_labels

log = logging.getLogger(__name__)
IGNORE = -100  # a label never seen in training: counted as an error, never learnt


class UtteranceClassification(SuperbTask):
    """One class per utterance from ``utt2label``, mean-pooled linear head, cross-entropy, accuracy."""

    metric, higher_is_better = "accuracy", True
    head_config = PoolingHeadConfig
    label_file = "utt2label"

    def targets(self) -> Tuple[Dict[str, Dict[str, Any]], Any]:
        tables = {s: read_labels(d, self.label_file) for s, d in self.dirs.items()}
        self.classes = sorted(set(tables["train"].values()))
        index = {c: i for i, c in enumerate(self.classes)}
        for s, tab in tables.items():
            unseen = sorted({v for v in tab.values() if v not in index})
            if unseen and s != "train":
                log.warning(
                    "%s/%s: %d labels never seen in train (%s): those utterances count as errors",
                    self.data_root,
                    s,
                    len(unseen),
                    ", ".join(unseen[:5]),
                )
        return {s: {u: index.get(v, IGNORE) for u, v in tab.items()} for s, tab in tables.items()}, len(self.classes)

    def head(self, dim: int, cfg: PoolingHeadConfig, num_out) -> nn.Module:
        return MeanPoolLinear(dim, num_out, cfg.project)

    def loss(self, head_out, targets, head) -> torch.Tensor:
        return nn.functional.cross_entropy(head_out, torch.tensor(targets, device=head_out.device), ignore_index=IGNORE)

    def predictions(self, head_out) -> List[Any]:
        return head_out.argmax(-1).tolist()

    def class_name(self, prediction) -> str:
        return self.classes[prediction]

    def score(self, outputs, split: Split, write: bool) -> Scored:
        utts, preds = [], []
        for ids, out in outputs:
            utts += ids
            preds += self.predictions(out)
        gold = [y.tolist() if torch.is_tensor(y) else y for y in split.targets]
        if write:
            self.out.mkdir(parents=True, exist_ok=True)
            write_text(
                self.out / "predictions.txt", "".join(f"{u} {self.class_name(p)}\n" for u, p in zip(utts, preds))
            )
        return Scored(accuracy(preds, gold), len(gold))


class SlotClassification(UtteranceClassification):
    """Several labels per utterance (``a|b|c`` in ``utt2label``), one linear head per slot."""

    def targets(self):
        tables = {s: read_labels(d, self.label_file) for s, d in self.dirs.items()}
        slots = list(zip(*[v.split("|") for v in tables["train"].values()]))
        self.classes = [sorted(set(s)) for s in slots]
        index = [{c: i for i, c in enumerate(cl)} for cl in self.classes]

        def encode(v: str, u: str, s: str) -> torch.Tensor:
            parts = v.split("|")
            if len(parts) != len(index):
                raise InputError(
                    f"{self.dirs[s].path}/{self.label_file}: {u}: label {v!r} does not have {len(index)} slots"
                )
            return torch.tensor([index[i].get(p, IGNORE) for i, p in enumerate(parts)])

        return {s: {u: encode(v, u, s) for u, v in tab.items()} for s, tab in tables.items()}, [
            len(c) for c in self.classes
        ]

    def head(self, dim: int, cfg: PoolingHeadConfig, num_out) -> nn.Module:
        return IntentHead(dim, num_out, cfg.project)

    def loss(self, head_out: Sequence[torch.Tensor], targets, head) -> torch.Tensor:
        y = torch.stack(list(targets))
        return sum(
            nn.functional.cross_entropy(logits, y[:, i], ignore_index=IGNORE) for i, logits in enumerate(head_out)
        )

    def predictions(self, head_out) -> List[Any]:
        return torch.stack([logits.argmax(-1) for logits in head_out], 1).tolist()

    def class_name(self, prediction) -> str:
        return "|".join(self.classes[i][c] for i, c in enumerate(prediction))
