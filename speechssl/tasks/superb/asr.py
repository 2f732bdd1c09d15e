"""ASR: speech recognition, a BiLSTM CTC head over characters (SUPERB: 2 x 1024), WER."""

from __future__ import annotations

from torch import nn

from ...downstream.heads import BiLSTMCTC
from .base import BiLSTMHeadConfig, register
from .ctc import CtcRecognition


@register
class SpeechRecognition(CtcRecognition):
    name, metric, order = "asr", "WER", 5
    head_config = BiLSTMHeadConfig
    label_file, unit = "text", "char"

    def head(self, dim: int, cfg: BiLSTMHeadConfig, num_out) -> nn.Module:
        return BiLSTMCTC(dim, num_out, cfg.hidden, cfg.layers, cfg.dropout, cfg.project)
