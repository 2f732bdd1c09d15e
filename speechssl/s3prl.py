"""s3prl's upstream contract for any speechssl upstream, so s3prl's downstream runner (and anything
written against ``torch.hub.load("s3prl/s3prl", ...)``) consumes our models unchanged.

The contract (s3prl ``upstream/README.md``, "1-for-all interface"): ``UpstreamExpert(ckpt, **kwds)``;
``forward(wavs)`` takes a list of unpadded 16 kHz waveforms ``[T_i]`` and returns a dict whose
``"hidden_states"`` is a list of padded ``[B, T', D]`` tensors, one per layer (the first is the encoder
input); ``get_downsample_rates(key)`` gives input samples per output frame. To register it in an s3prl
checkout, add ``s3prl/upstream/speechssl/expert.py`` re-exporting :class:`UpstreamExpert`, and a
hubconf entry ``def speechssl(ckpt, *args, **kwargs): return UpstreamExpert(ckpt)``.
"""
from __future__ import annotations

from typing import Dict, List

import torch
from torch import nn
from torch.nn.utils.rnn import pad_sequence


class UpstreamExpert(nn.Module):
    """Wrap ``ckpt`` (anything :func:`speechssl.hub.load_upstream` takes, or a loaded upstream module)."""

    def __init__(self, ckpt, **kwds):
        super().__init__()
        if isinstance(ckpt, nn.Module):
            self.model = ckpt
        else:
            from .hub import load_upstream
            self.model = load_upstream(str(ckpt), random_init=bool(kwds.get("random_init", False)))
        self.model.eval()

    def get_downsample_rates(self, key: str = None) -> int:
        return int(self.model.downsample_rate)

    def forward(self, wavs: List[torch.Tensor]) -> Dict[str, List[torch.Tensor]]:
        lengths = torch.tensor([len(w) for w in wavs], device=wavs[0].device)
        out = self.model(pad_sequence(list(wavs), batch_first=True), lengths)
        states = list(out.hidden_states)
        return {"hidden_states": states, "last_hidden_state": states[-1], "lengths": out.lengths,
                **{f"hidden_state_{i}": h for i, h in enumerate(states)}}


__all__ = ["UpstreamExpert"]
