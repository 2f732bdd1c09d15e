"""SF: slot filling, a BiLSTM CTC head over characters and slot tags (SUPERB: SNIPS, 2 x 1024); the
benchmark's two metrics, slot-type F1 (the headline) and slot-value CER."""
from __future__ import annotations

from torch import nn

from ...downstream.ctc_decode import greedy_decode
from ...downstream.heads import BiLSTMCTC
from ...downstream.scoring import write_scoring
from ...downstream.slot_metrics import slot_type_f1, slot_value_cer
from .base import HeadConfig, Scored, Split, register
from .ctc import CtcRecognition


@register
class SlotFilling(CtcRecognition):
    name, metric, order = "sf", "slot-type F1", 7
    higher_is_better = True
    label_file, unit = "text.slot", "char-slot"

    def head(self, dim: int, cfg: HeadConfig, num_out) -> nn.Module:
        return BiLSTMCTC(dim, num_out, cfg.hidden, cfg.layers, cfg.dropout, cfg.project)

    def score(self, outputs, split: Split, write: bool) -> Scored:
        hyps = []
        for _, (logits, out_len) in outputs:
            hyps += greedy_decode(logits.float().log_softmax(-1), out_len, self.vocab)
        refs = [self.refs[split.name][u] for u in split.utts]
        if write:
            write_scoring(self.out / f"decode_{split.name}", split.utts, refs, hyps, "word")
        f1, value_cer = 100 * slot_type_f1(hyps, refs), 100 * slot_value_cer(hyps, refs)
        # the anchors' order: F1, then CER (conf/superb/anchors.yaml)
        return Scored(f1, len(refs), {"values": [round(value_cer, 3)], "slot_value_cer": round(value_cer, 3)})
