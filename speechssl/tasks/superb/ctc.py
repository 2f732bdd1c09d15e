"""Sequence recognition with CTC shared by PR (phones) and ASR (characters): greedy decoding, Kaldi scoring."""

from __future__ import annotations

import logging
from typing import Any, Dict, Tuple

import torch

from ...data.tokenizers import TokenVocab
from ...downstream.ctc_decode import greedy_decode
from ...downstream.metrics import error_counts
from ...downstream.scoring import write_scoring
from ...objectives.ctc import ctc_loss_per_token
from .base import Scored, Split, SuperbTask, read_labels

log = logging.getLogger(__name__)


class CtcRecognition(SuperbTask):
    """Transcripts from ``label_file`` in ``unit`` tokens; error rate (word-level over the tokens)."""

    higher_is_better = False
    label_file = "text"
    unit = "char"

    def targets(self) -> Tuple[Dict[str, Dict[str, Any]], Any]:
        tables = {s: read_labels(d, self.label_file) for s, d in self.dirs.items()}
        self.vocab = TokenVocab.build(tables["train"].values(), self.unit)
        self.refs = tables
        for s, tab in tables.items():
            empty = [u for u, v in tab.items() if not v.split()]
            if empty:  # CTC has nothing to learn from or score on them: say so, do not hide it
                log.warning(
                    "%s/%s/%s: leaving out %d utterances with empty transcripts (%s)",
                    self.data_root,
                    s,
                    self.label_file,
                    len(empty),
                    ", ".join(empty[:5]),
                )
        return {
            s: {u: torch.tensor(self.vocab.encode(v, u)) for u, v in tab.items() if v.split()}
            for s, tab in tables.items()
        }, len(self.vocab)

    def loss(self, head_out, targets, head) -> torch.Tensor:
        logits, out_len = head_out
        target_len = torch.tensor([len(y) for y in targets])
        # the fine-tuning objective: CTC per target token (targets concatenated, as F.ctc_loss also takes them)
        return ctc_loss_per_token(
            logits.float().log_softmax(-1), out_len, torch.cat(list(targets)), target_len, blank=self.vocab.blank
        )

    def decode(self, outputs, split: Split, write: bool):
        """Greedy hypotheses and references of ``split``; ``write`` leaves a Kaldi-style scoring dir."""
        hyps = []
        for _, (logits, out_len) in outputs:
            hyps += greedy_decode(logits.float().log_softmax(-1), out_len, self.vocab)
        refs = [self.refs[split.name][u] for u in split.utts]
        if write:
            write_scoring(
                self.out / f"decode_{split.name}",
                split.utts,
                refs,
                hyps,
                "word" if self.vocab.unit == "char-slot" else self.vocab.unit,
            )
        return hyps, refs

    def score(self, outputs, split: Split, write: bool) -> Scored:
        hyps, refs = self.decode(outputs, split, write)
        return Scored(error_counts(refs, hyps, "word").rate, len(refs))
