"""The SUPERB featurizer: a learnt softmax-weighted sum of an upstream's hidden states."""

import torch
from torch import nn

from ..errors import InputError


class WeightedSum(nn.Module):
    """``num_states`` tensors ``[B, T, D]`` -> ``[B, T, D]``, ``sum_l softmax(w)_l * norm(h_l)``.

    The weights start at zero (a plain average), as s3prl's featurizer does. ``layer_norm``
    normalises each state over ``D`` without affine parameters before weighting, which keeps
    states of very different scales (the CNN output against the last layer) comparable.
    """

    def __init__(self, num_states: int, layer_norm: bool = False):
        super().__init__()
        self.weights = nn.Parameter(torch.zeros(num_states))
        self.layer_norm = layer_norm

    @property
    def normalized_weights(self) -> torch.Tensor:
        return torch.softmax(self.weights.detach().float(), dim=0)

    def forward(self, states) -> torch.Tensor:
        """``states``: a list of ``[B, T, D]`` or one ``[L, B, T, D]`` tensor."""
        x = torch.stack(list(states)) if isinstance(states, (list, tuple)) else states
        if x.shape[0] != self.weights.shape[0]:
            raise InputError(f"featurizer expects {self.weights.shape[0]} hidden states, got {x.shape[0]}")
        x = x.float()
        if self.layer_norm:
            x = nn.functional.layer_norm(x, x.shape[-1:])
        w = torch.softmax(self.weights, dim=0)
        return torch.einsum("l,lbtd->btd", w, x)
