"""The upstream contract every model implements (see docs/DESIGN.md).

An upstream maps a padded batch of 16 kHz waveforms to all of its hidden states:
``forward(wavs [B, T], lengths [B] | None, *, num_layers=None) -> UpstreamOutput``, and says how
it is shaped through ``sample_rate``, ``downsample_rate``, ``num_layers`` and ``hidden_size``.
:class:`Upstream` is the ``typing.Protocol`` that downstream code types against;
:class:`UpstreamBase` holds what every implementation shares (the default lengths, the frame rate).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Protocol, runtime_checkable

import torch
from torch import nn

from ..constants import SAMPLE_RATE
from ..errors import InputError


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


@runtime_checkable
class Upstream(Protocol):
    """What downstream code may rely on: any model with these members works with any task."""

    sample_rate: int

    @property
    def downsample_rate(self) -> int: ...

    @property
    def num_layers(self) -> int: ...

    @property
    def hidden_size(self) -> int: ...

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor: ...

    def __call__(
        self, wavs: torch.Tensor, lengths: Optional[torch.Tensor] = None, *, num_layers: Optional[int] = None
    ) -> UpstreamOutput: ...


class UpstreamBase(nn.Module):
    """Shared by every upstream: the input rate, the frame rate, and input checks."""

    sample_rate: int = SAMPLE_RATE

    @property
    def frame_rate(self) -> float:
        """Output frames per second."""
        return self.sample_rate / self.downsample_rate

    @staticmethod
    def check_input(wavs: torch.Tensor, lengths: Optional[torch.Tensor]) -> torch.Tensor:
        """``lengths`` for ``wavs [B, T]`` (all ``T`` when None); refuses any other shape."""
        if wavs.dim() != 2:
            raise InputError(f"expected wavs [B, T], got shape {tuple(wavs.shape)}")
        if lengths is None:
            lengths = torch.full((wavs.shape[0],), wavs.shape[1], dtype=torch.long, device=wavs.device)
        return lengths
