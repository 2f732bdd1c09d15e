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


def load_upstream(spec: str, drop_heads: bool = True, trust: bool = False):
    """Any upstream by name or path: ``fbank`` (the SUPERB baseline), our exported folder, a Hugging
    Face folder, a fairseq ``.pt``, or a registered config name (random weights)."""
    import logging
    from pathlib import Path

    if spec == "fbank" and not Path(spec).exists():
        from .fbank_upstream import FbankUpstream
        return FbankUpstream().eval()
    from ..interop import import_checkpoint
    from .registry import available_models, build_model

    if not Path(spec).exists() and spec in available_models():
        logging.getLogger(__name__).warning("%s: a registered config with random weights", spec)
        return build_model(spec).eval()
    return import_checkpoint(spec, drop_heads=drop_heads, trust=trust).eval()
