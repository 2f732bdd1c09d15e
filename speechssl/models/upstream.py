"""The upstream contract every model implements (see DESIGN.md)."""
from dataclasses import dataclass
from typing import List, Optional

import torch


@dataclass
class UpstreamOutput:
    """What an upstream returns.

    Attributes:
        hidden_states: ``num_layers + 1`` tensors ``[B, T', D]``: the encoder input (after the
            frontend, projection and positional embedding) and each layer's output, counted as
            Hugging Face and s3prl count them. Padded frames hold no meaning.
        lengths: ``[B]`` valid frames per utterance.
        last_hidden_state: the encoder output; differs from ``hidden_states[-1]`` in pre-norm
            models, whose final layer norm is applied here only (as in transformers).
        features: ``[B, T', C]`` frontend output before projection (targets for some objectives).
    """

    hidden_states: List[torch.Tensor]
    lengths: torch.Tensor
    last_hidden_state: Optional[torch.Tensor] = None
    features: Optional[torch.Tensor] = None

    @property
    def padding_mask(self) -> torch.Tensor:
        """``[B, T']`` bool, True on padded frames."""
        T = self.hidden_states[0].shape[1]
        return torch.arange(T, device=self.lengths.device)[None, :] >= self.lengths[:, None]
