"""The distillation teacher (LightHuBERT): a frozen upstream seen through the average of its last ``k`` layers."""

from __future__ import annotations

from typing import Optional

import torch

from ..errors import InputError
from .upstream import UpstreamBase, UpstreamOutput


class LayerAverage(UpstreamBase):
    """An upstream whose one output is the average of ``upstream``'s last ``k`` layers (the targets),
    each first layer-normalised (no affine) when ``norm`` is ``layer_norm``."""

    def __init__(self, upstream, k: int, name: str = "teacher", norm: str = "none"):
        super().__init__()
        if k > upstream.num_layers:
            raise InputError(f"{name}: target_layers={k} but the teacher has only {upstream.num_layers} layers")
        self.upstream, self.k, self.norm = upstream, k, norm
        self.downsample_rate, self.hidden_size, self.num_layers = upstream.downsample_rate, upstream.hidden_size, 0

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return self.upstream.output_lengths(lengths)

    def forward(
        self, wavs: torch.Tensor, lengths: Optional[torch.Tensor] = None, *, num_layers: Optional[int] = None
    ) -> UpstreamOutput:
        layers = self.upstream(wavs, lengths)
        top = layers.hidden_states[-self.k :]
        if self.norm == "layer_norm":
            top = [torch.nn.functional.layer_norm(h.float(), h.shape[-1:]) for h in top]
        return UpstreamOutput(hidden_states=[torch.stack(top).mean(0)], lengths=layers.lengths)
