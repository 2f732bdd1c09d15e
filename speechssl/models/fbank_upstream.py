"""The FBANK baseline of SUPERB as an upstream: log-mel filterbank + deltas, utterance CMVN.

It implements the upstream contract with a single hidden state (``num_layers = 0``), so every
downstream task takes it exactly like a pretrained encoder: it is the zero of the SUPERB score.
"""

from typing import Optional

import torch

from ..audio.features import add_deltas, fbank, utterance_cmvn
from ..errors import InputError
from .upstream import UpstreamBase, UpstreamOutput


class FbankUpstream(UpstreamBase):
    """``wavs [B, T] -> hidden_states [[B, T', num_mel_bins * (delta_order + 1)]]`` at 100 Hz.

    Defaults follow s3prl's ``fbank`` baseline: 80 Kaldi log-mel bins (25 ms / 10 ms, no dither),
    first and second deltas, per-utterance mean and variance normalisation.
    """

    def __init__(self, num_mel_bins: int = 80, delta_order: int = 2, cmvn: bool = True):
        super().__init__()
        self.num_mel_bins, self.delta_order, self.cmvn = num_mel_bins, delta_order, cmvn
        self.metadata = {"upstream": "fbank"}

    downsample_rate = 160
    num_layers = 0

    @property
    def hidden_size(self) -> int:
        return self.num_mel_bins * (self.delta_order + 1)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return torch.where(lengths >= 400, 1 + (lengths - 400) // 160, torch.zeros_like(lengths))

    def forward(
        self, wavs: torch.Tensor, lengths: Optional[torch.Tensor] = None, *, num_layers: Optional[int] = None
    ) -> UpstreamOutput:
        lengths = self.check_input(wavs, lengths)
        # Kaldi's tools see int16 sample values; the energy floor and log offsets assume that scale
        feats, counts = fbank(wavs.float() * 32768, lengths, num_mel_bins=self.num_mel_bins, dither=0.0)
        if (counts <= 0).any():
            raise InputError(
                f"utterances {(counts <= 0).nonzero().flatten().tolist()} of the batch are shorter than one 25 ms frame"
            )
        if self.delta_order:
            feats = add_deltas(feats, self.delta_order, lengths=counts)
        if self.cmvn:
            feats = utterance_cmvn(feats, counts, norm_vars=True)
        return UpstreamOutput(hidden_states=[feats], lengths=counts, last_hidden_state=feats)
