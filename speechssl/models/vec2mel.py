"""A WavThruVec vocoder that needs no GAN: SSL features -> log-mel spectrogram (a residual dilated-conv
network, L1-trained), then Griffin-Lim phase reconstruction (librosa) -> 16 kHz waveform.

``features [B, T, F], speaker [B, S] -> Vec2MelGenerator -> log-mel [B, T * R, n_mels]``, R = ``hop_length /
mel_hop_length`` mel frames per feature frame (2 for a 25 Hz upstream and 50 Hz mels).

Why it exists: on 2 CPU cores a HiFi-GAN generator trained for the demo's minutes stays unintelligible
(resynthesis WER about 95 % against a 46 % floor), while Griffin-Lim inverts the *true* 80-bin, 50 Hz log-mel
of the mini corpus at 50.3 % with the same judge (``tools/griffin_lim_ceiling.py``). The mel regression trains
in a few minutes; the price is Griffin-Lim's phasey sound, which an intelligibility judge barely hears. The mel
is HiFi-GAN's loss spectrogram (:class:`speechssl.objectives.gan.LogMel`: Slaney mel, natural log of the
clamped magnitude), so a neural mel vocoder can replace Griffin-Lim later without retraining this model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List

import numpy as np
import torch
from torch import nn

from ..constants import SAMPLE_RATE
from ..errors import InputError
from .speaker_conditioning import SpeakerConditioned


@dataclass
class Vec2MelConfig:
    feature_dim: int = 768
    hop_length: int = 320  # waveform samples per feature frame (the upstream's downsample rate)
    mel_hop_length: int = 320  # waveform samples per mel frame; divides hop_length
    n_mels: int = 80
    n_fft: int = 1024
    fmax: float = 8000.0
    channels: int = 256
    kernel_size: int = 5
    dilations: List[int] = field(default_factory=lambda: [1, 2, 4, 1, 2, 4])
    griffin_lim_iters: int = 32  # librosa's default
    # speaker conditioning and input bottleneck: as in Vec2WavConfig
    speaker_dim: int = 0
    num_speakers: int = 0
    speaker_standardize: bool = False
    feature_dropout: float = 0.0
    codebook_size: int = 0

    @property
    def mels_per_frame(self) -> int:
        return self.hop_length // self.mel_hop_length

    def validate(self) -> Vec2MelConfig:
        if self.hop_length % self.mel_hop_length:
            raise InputError(
                f"vec2mel: mel_hop_length {self.mel_hop_length} must divide the feature hop "
                f"{self.hop_length} (one feature frame -> a whole number of mel frames)"
            )
        if self.kernel_size % 2 == 0:
            raise InputError(f"vec2mel: kernel_size must be odd (same-length convolutions), got {self.kernel_size}")
        if self.num_speakers and not self.speaker_dim:
            raise InputError("vec2mel: num_speakers > 0 needs speaker_dim > 0")
        return self


class ResidualConv(nn.Module):
    """``x + conv1x1(gelu(conv_dilated(gelu(x))))`` on ``[B, C, T]``, length preserved."""

    def __init__(self, channels: int, kernel: int, dilation: int):
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, kernel, dilation=dilation, padding=dilation * (kernel - 1) // 2)
        self.mix = nn.Conv1d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mix(nn.functional.gelu(self.conv(nn.functional.gelu(x))))


class Vec2MelGenerator(SpeakerConditioned):
    """``features [B, T, F] (+ speaker) -> log-mel [B, T * R, n_mels]``; :meth:`waveform` adds Griffin-Lim."""

    name = "vec2mel"

    def __init__(self, cfg: Vec2MelConfig):
        super().__init__()
        cfg.validate()
        C = cfg.channels
        self.init_conditioning(cfg, C)
        self.conv_pre = nn.Conv1d(cfg.feature_dim, C, cfg.kernel_size, padding=cfg.kernel_size // 2)
        self.blocks = nn.ModuleList(ResidualConv(C, cfg.kernel_size, d) for d in cfg.dilations)
        self.conv_post = nn.Conv1d(C, cfg.n_mels * cfg.mels_per_frame, 1)
        # the training set's mean log-mel (set when training starts): the network learns the deviation from it
        self.register_buffer("mel_mean", torch.zeros(cfg.n_mels))
        # per bin, how much more the true log-mel varies within an utterance than the prediction (set at export):
        # an L1 regression averages the plausible spectra, and Griffin-Lim reads the flattened contrast badly
        self.register_buffer("mel_spread", torch.ones(cfg.n_mels))
        self._register_load_state_dict_pre_hook(self._older_exports)

    def _older_exports(self, state_dict, prefix, *args) -> None:
        """Exports made before ``mel_spread`` existed load with the identity spread (their audio is unchanged)."""
        state_dict.setdefault(prefix + "mel_spread", torch.ones(self.cfg.n_mels))

    @property
    def hop_length(self) -> int:
        return self.cfg.hop_length

    def forward(self, features: torch.Tensor, speaker=None, speaker_ids=None) -> torch.Tensor:
        x = self.add_speaker(self.conv_pre(self.inputs(features).transpose(1, 2)), speaker, speaker_ids)
        for block in self.blocks:
            x = block(x)
        y = self.conv_post(nn.functional.gelu(x)).transpose(1, 2)  # [B, T, R * n_mels]
        B, T, _ = y.shape
        return y.reshape(B, T * self.cfg.mels_per_frame, self.cfg.n_mels) + self.mel_mean

    def restore_spread(self, mel: torch.Tensor) -> torch.Tensor:
        """``[B, N, n_mels]`` -> the same with each bin's deviation from its utterance mean widened by
        ``mel_spread`` (the global-variance compensation of statistical parametric synthesis). Whole, unpadded
        utterances only: padding would move the mean."""
        centre = mel.mean(1, keepdim=True)
        return centre + self.mel_spread * (mel - centre)

    @torch.no_grad()
    def waveform(self, features: torch.Tensor, **speaker) -> torch.Tensor:
        """``[B, T, F]`` (whole utterances) -> ``wav [B, T * hop_length]`` in [-1, 1]: Griffin-Lim on each item's
        mel after :meth:`restore_spread`."""
        mels = self.restore_spread(self(features, **speaker)).float().cpu().numpy()
        wavs = [griffin_lim(m, self.cfg) for m in mels]
        return torch.from_numpy(np.stack(wavs)).to(features.device)


def griffin_lim(log_mel: np.ndarray, cfg: Vec2MelConfig) -> np.ndarray:
    """``[N, n_mels]`` natural-log mel magnitudes -> ``[N * mel_hop_length]`` samples, peak-normalised to 0.9
    (the mel's absolute level is not the speaker's: the upstreams normalise their input waveform)."""
    import librosa

    # librosa's centred frames: N * hop samples have N + 1 of them, so the last mel frame is repeated
    mag = np.exp(np.concatenate([log_mel, log_mel[-1:]]).T.astype(np.float64))
    stft = librosa.feature.inverse.mel_to_stft(mag, sr=SAMPLE_RATE, n_fft=cfg.n_fft, power=1.0, fmax=cfg.fmax)
    wav = librosa.griffinlim(
        stft,
        n_iter=cfg.griffin_lim_iters,
        hop_length=cfg.mel_hop_length,
        n_fft=cfg.n_fft,
        length=len(log_mel) * cfg.mel_hop_length,
        random_state=0,
    )  # seeded: reproducible
    return (0.9 * wav / max(float(np.abs(wav).max()), 1e-3)).astype(np.float32)
