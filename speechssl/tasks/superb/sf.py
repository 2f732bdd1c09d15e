"""SF: slot filling, a BiLSTM CTC head over characters and slot tags (SUPERB: SNIPS, 2 x 1024); the
benchmark's two metrics, slot-type F1 (the headline) and slot-value CER."""

from __future__ import annotations

from torch import nn

from ...downstream.heads import BiLSTMCTC
from ...downstream.slot_metrics import slot_type_f1, slot_value_cer
from .base import BiLSTMHeadConfig, Scored, Split, register
from .ctc import CtcRecognition


@register
class SlotFilling(CtcRecognition):
    name, metric, order = "sf", "slot-type F1", 7
    head_config = BiLSTMHeadConfig
    higher_is_better = True
    label_file, unit = "text.slot", "char-slot"

    def head(self, dim: int, cfg: BiLSTMHeadConfig, num_out) -> nn.Module:
        return BiLSTMCTC(dim, num_out, cfg.hidden, cfg.layers, cfg.dropout, cfg.project)

    def score(self, outputs, split: Split, write: bool) -> Scored:
        hyps, refs = self.decode(outputs, split, write)
        f1, value_cer = 100 * slot_type_f1(hyps, refs), 100 * slot_value_cer(hyps, refs)
        # the anchors' order: F1, then CER (conf/superb/anchors.yaml)
        return Scored(f1, len(refs), {"values": [round(value_cer, 3)], "slot_value_cer": round(value_cer, 3)})
