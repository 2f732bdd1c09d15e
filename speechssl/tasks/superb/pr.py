"""PR: phoneme recognition, a linear CTC head over phones, PER."""

from __future__ import annotations

from torch import nn

from ...downstream.heads import LinearCTC
from .base import NoHeadConfig, register
from .ctc import CtcRecognition


@register
class PhonemeRecognition(CtcRecognition):
    name, metric, order = "pr", "PER", 0
    label_file, unit = "text.phone", "phone"

    def head(self, dim: int, cfg: NoHeadConfig, num_out) -> nn.Module:
        return LinearCTC(dim, num_out)
