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
        return {
            "hidden_states": states,
            "last_hidden_state": states[-1],
            "lengths": out.lengths,
            **{f"hidden_state_{i}": h for i, h in enumerate(states)},
        }


class S3PRLUpstream(nn.Module):
    """s3prl 0.4's ``S3PRLUpstream`` face on any speechssl upstream: ``forward(wavs [B, T], wavs_len [B]) ->
    (all_hs, all_hs_len)``, one ``[B, T', D]`` tensor and one ``[B]`` length tensor per hidden state, with
    ``num_layers`` (hidden states, the CNN/projection output included), ``downsample_rates`` and
    ``hidden_sizes`` (one per hidden state). ``name`` is anything :func:`speechssl.hub.load_upstream` takes."""

    def __init__(self, name, **kwds):
        super().__init__()
        self.upstream = UpstreamExpert(name, **kwds).model

    @property
    def num_layers(self) -> int:
        return int(self.upstream.num_layers) + 1

    @property
    def downsample_rates(self) -> List[int]:
        return [int(self.upstream.downsample_rate)] * self.num_layers

    @property
    def hidden_sizes(self) -> List[int]:
        return [int(self.upstream.hidden_size)] * self.num_layers

    def forward(self, wavs: torch.Tensor, wavs_len: torch.Tensor):
        if wavs.dim() == 3:  # s3prl passes [B, T, 1]
            wavs = wavs.squeeze(-1)
        out = self.upstream(wavs, wavs_len)
        states = list(out.hidden_states)
        return states, [out.lengths] * len(states)


class Featurizer(nn.Module):
    """s3prl 0.4's ``Featurizer``: the learnt softmax-weighted sum of an :class:`S3PRLUpstream`'s hidden states
    (SUPERB's featurizer, :class:`~speechssl.nn.weighted_sum.WeightedSum`). ``forward(all_hs, all_hs_len) ->
    (hs [B, T', D], hs_len [B])``; ``layer_selections`` keeps only those states."""

    def __init__(self, upstream: S3PRLUpstream, layer_selections: List[int] = None, layer_norm: bool = False):
        super().__init__()
        from .nn.weighted_sum import WeightedSum

        self.layer_selections = list(layer_selections) if layer_selections else list(range(upstream.num_layers))
        self.output_size = upstream.hidden_sizes[0]
        self.downsample_rate = upstream.downsample_rates[0]
        self.weighted_sum = WeightedSum(len(self.layer_selections), layer_norm=layer_norm)

    def forward(self, all_hs: List[torch.Tensor], all_hs_len: List[torch.Tensor]):
        chosen = [all_hs[i] for i in self.layer_selections]
        return self.weighted_sum(chosen), all_hs_len[self.layer_selections[0]]


__all__ = ["Featurizer", "S3PRLUpstream", "UpstreamExpert"]
