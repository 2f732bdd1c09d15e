"""HiFi-GAN's losses: least-squares GAN, feature matching and mel-spectrogram L1.

The generator's total is ``adv + 2 * feature_matching + 45 * mel_l1`` (Kong et al. 2020, section 2.3,
lambda_fm = 2 and lambda_mel = 45); the discriminators minimise ``(1 - D(x))^2 + D(G(s))^2``.
Each ``outputs`` argument is what a multi-period or multi-scale discriminator returns: a list of
``(scores [B, N], feature_maps [tensor, ...])``, one per sub-discriminator.
"""

from __future__ import annotations

from typing import List, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..constants import SAMPLE_RATE

DiscOutputs = Sequence[Tuple[torch.Tensor, List[torch.Tensor]]]


def discriminator_loss(real: DiscOutputs, fake: DiscOutputs) -> torch.Tensor:
    """Least squares: real scores to 1, generated to 0, summed over sub-discriminators."""
    return sum(torch.mean((1 - r) ** 2) + torch.mean(f**2) for (r, _), (f, _) in zip(real, fake))


def generator_adversarial_loss(fake: DiscOutputs) -> torch.Tensor:
    return sum(torch.mean((1 - f) ** 2) for f, _ in fake)


def feature_matching_loss(real: DiscOutputs, fake: DiscOutputs) -> torch.Tensor:
    """L1 between the discriminators' feature maps on real and generated audio (real side detached)."""
    return sum(F.l1_loss(gf, rf.detach()) for (_, rmaps), (_, gmaps) in zip(real, fake) for rf, gf in zip(rmaps, gmaps))


class LogMel(nn.Module):
    """``wav [B, T] -> log mel [B, n_mels, T / hop]``: HiFi-GAN's loss spectrogram (Slaney mel, log-clamped
    magnitude), at 16 kHz with a 1024-point FFT and a 256-sample hop by default."""

    def __init__(
        self,
        sample_rate: int = SAMPLE_RATE,
        n_fft: int = 1024,
        hop_length: int = 256,
        win_length: int = 1024,
        n_mels: int = 80,
        fmin: float = 0.0,
        fmax: float = 8000.0,
    ):
        super().__init__()
        import librosa

        mel = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
        self.register_buffer("mel_basis", torch.from_numpy(mel).float(), persistent=False)
        self.register_buffer("window", torch.hann_window(win_length), persistent=False)
        self.n_fft, self.hop_length, self.win_length = n_fft, hop_length, win_length

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        pad = (self.n_fft - self.hop_length) // 2
        x = F.pad(wav[:, None, :], (pad, pad), mode="reflect").squeeze(1)
        spec = torch.stft(
            x, self.n_fft, self.hop_length, self.win_length, self.window, center=False, return_complex=True
        )
        mag = torch.sqrt(spec.real**2 + spec.imag**2 + 1e-9)
        return torch.log(torch.clamp(self.mel_basis @ mag, min=1e-5))


def mel_l1_loss(log_mel: LogMel, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return F.l1_loss(log_mel(fake), log_mel(real))


def generator_loss(
    real_outputs: Sequence[DiscOutputs],
    fake_outputs: Sequence[DiscOutputs],
    mel_l1: torch.Tensor,
    fm_weight: float = 2.0,
    mel_weight: float = 45.0,
) -> dict:
    """The generator's total over several discriminators (MPD, MSD) and its parts, for logging."""
    adv = sum(generator_adversarial_loss(f) for f in fake_outputs)
    fm = sum(feature_matching_loss(r, f) for r, f in zip(real_outputs, fake_outputs))
    return {"loss": adv + fm_weight * fm + mel_weight * mel_l1, "adv": adv, "fm": fm, "mel": mel_l1}
