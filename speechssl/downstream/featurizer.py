"""The SUPERB featurizer: a learnt softmax-weighted sum of an upstream's hidden states."""
from typing import List, Optional

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


def weights_plot(weights: List[float], path, title: Optional[str] = None) -> None:
    """A bar chart of learnt layer weights (layer 0 = encoder input) written to ``path`` (PNG)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(3.0, 0.35 * len(weights) + 1.5), 2.6))
    ax.bar(range(len(weights)), weights, color="#4472c4")
    ax.axhline(1 / len(weights), color="grey", lw=0.8, ls="--", label="uniform")
    ax.set_xlabel("hidden state (0 = encoder input)")
    ax.set_ylabel("softmax weight")
    ax.set_xticks(range(len(weights)))
    ax.legend(frameon=False, fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
