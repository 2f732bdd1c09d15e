"""WavThruVec stage 2 (vec2wav): a HiFi-GAN generator from SSL features to waveform, and its discriminators.

Siuzdak et al. (Interspeech 2022) vocode 50 Hz self-supervised features, conditioned on a speaker
embedding, with the HiFi-GAN V1 generator and the multi-period + multi-scale discriminators of
Kong et al. (2020). One readable file in the manner of HiFi-GAN's ``models.py``:

``features [B, T, F], speaker [B, S] -> Vec2WavGenerator -> wav [B, T * hop]``

The upsampling rates multiply to the feature hop (320 samples at 16 kHz for a 50 Hz upstream);
:meth:`Vec2WavConfig.validate` says so when a config gets it wrong.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm, weight_norm

from ..errors import InputError
from .speaker_conditioning import SpeakerConditioned

LRELU_SLOPE = 0.1


@dataclass
class Vec2WavConfig:
    feature_dim: int = 768  # the upstream layer's width
    hop_length: int = 320  # waveform samples per feature frame (16 kHz / 50 Hz)
    upsample_rates: List[int] = field(default_factory=lambda: [10, 8, 2, 2])
    upsample_kernel_sizes: List[int] = field(default_factory=lambda: [20, 16, 4, 4])
    upsample_initial_channel: int = 512  # HiFi-GAN V1
    resblock_kernel_sizes: List[int] = field(default_factory=lambda: [3, 7, 11])
    resblock_dilations: List[List[int]] = field(default_factory=lambda: [[1, 3, 5], [1, 3, 5], [1, 3, 5]])
    pre_kernel: int = 7
    speaker_dim: int = 0  # 0: no speaker conditioning
    num_speakers: int = 0  # > 0: a lookup table for training speakers (else reference embeddings)
    # standardise reference embeddings per dimension with the training set's mean and std (buffers set when
    # training starts, kept in the export): L2-normalised statistics of different speakers differ in the
    # third digit of their cosine (0.988 same speaker against 0.985 others, log-mel on the mini corpus), a
    # difference the generator can easily ignore
    speaker_standardize: bool = False
    feature_dropout: float = 0.0  # on the input features: robustness to text2vec's predictions
    # > 0: every input frame is replaced by the nearest of this many k-means centroids of the training
    # features (learnt when training starts, kept in the export): a bottleneck that keeps what the units
    # keep (mostly phonetic) and drops speaker detail, so the voice has to come from the speaker input
    # (unit-based resynthesis and conversion, Polyak et al. 2021)
    codebook_size: int = 0

    def validate(self) -> Vec2WavConfig:
        if len(self.upsample_rates) != len(self.upsample_kernel_sizes):
            raise InputError(
                f"vec2wav: {len(self.upsample_rates)} upsample_rates but "
                f"{len(self.upsample_kernel_sizes)} upsample_kernel_sizes"
            )
        product = math.prod(self.upsample_rates)
        if product != self.hop_length:
            raise InputError(
                f"vec2wav: upsample_rates {list(self.upsample_rates)} multiply to {product}, but one "
                f"feature frame is hop_length={self.hop_length} samples (16 kHz / 50 Hz = 320); "
                "change the rates so that their product equals the hop"
            )
        for r, k in zip(self.upsample_rates, self.upsample_kernel_sizes):
            if k < r or (k - r) % 2:
                raise InputError(
                    f"vec2wav: upsample kernel {k} for rate {r}: the kernel must be >= the rate "
                    "and differ from it by an even number (HiFi-GAN uses 2 x rate)"
                )
        if len(self.resblock_kernel_sizes) != len(self.resblock_dilations):
            raise InputError("vec2wav: resblock_kernel_sizes and resblock_dilations differ in length")
        if self.upsample_initial_channel % 2 ** len(self.upsample_rates):
            raise InputError(
                f"vec2wav: upsample_initial_channel {self.upsample_initial_channel} must be divisible "
                f"by 2^{len(self.upsample_rates)} (channels halve at every upsampling)"
            )
        if self.num_speakers and not self.speaker_dim:
            raise InputError("vec2wav: num_speakers > 0 needs speaker_dim > 0")
        return self


def _padding(kernel: int, dilation: int = 1) -> int:
    return (kernel * dilation - dilation) // 2


class ResBlock(nn.Module):
    """HiFi-GAN ResBlock1: per dilation, ``x + conv(lrelu(conv_dilated(lrelu(x))))``; length preserved."""

    def __init__(self, channels: int, kernel: int, dilations: List[int]):
        super().__init__()
        self.convs1 = nn.ModuleList(
            weight_norm(nn.Conv1d(channels, channels, kernel, dilation=d, padding=_padding(kernel, d)))
            for d in dilations
        )
        self.convs2 = nn.ModuleList(
            weight_norm(nn.Conv1d(channels, channels, kernel, padding=_padding(kernel))) for _ in dilations
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for c1, c2 in zip(self.convs1, self.convs2):
            x = x + c2(F.leaky_relu(c1(F.leaky_relu(x, LRELU_SLOPE)), LRELU_SLOPE))
        return x


class Vec2WavGenerator(SpeakerConditioned):
    """``features [B, T, F], speaker [B, S] or speaker_ids [B] -> wav [B, T * hop_length]``.

    The speaker embedding is projected to the first conv's channels and added at every frame
    (:class:`~speechssl.models.speaker_conditioning.SpeakerConditioned`); each upsampling stage is followed by
    the mean of the multi-receptive-field residual blocks.
    """

    name = "vec2wav"

    def __init__(self, cfg: Vec2WavConfig):
        super().__init__()
        cfg.validate()
        ch = cfg.upsample_initial_channel
        self.init_conditioning(cfg, ch)
        self.conv_pre = weight_norm(nn.Conv1d(cfg.feature_dim, ch, cfg.pre_kernel, padding=cfg.pre_kernel // 2))
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        for i, (r, k) in enumerate(zip(cfg.upsample_rates, cfg.upsample_kernel_sizes)):
            c_in, c_out = ch // 2**i, ch // 2 ** (i + 1)
            self.ups.append(weight_norm(nn.ConvTranspose1d(c_in, c_out, k, r, padding=(k - r) // 2)))
            self.resblocks.append(
                nn.ModuleList(
                    ResBlock(c_out, rk, rd) for rk, rd in zip(cfg.resblock_kernel_sizes, cfg.resblock_dilations)
                )
            )
        self.conv_post = weight_norm(nn.Conv1d(ch // 2 ** len(cfg.upsample_rates), 1, 7, padding=3))

    @property
    def hop_length(self) -> int:
        return self.cfg.hop_length

    def forward(
        self, features: torch.Tensor, speaker: Optional[torch.Tensor] = None, speaker_ids: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        x = self.conv_pre(self.inputs(features).transpose(1, 2))  # [B, C, T]
        x = self.add_speaker(x, speaker, speaker_ids)
        for up, blocks in zip(self.ups, self.resblocks):
            x = up(F.leaky_relu(x, LRELU_SLOPE))
            x = sum(b(x) for b in blocks) / len(blocks)
        x = self.conv_post(F.leaky_relu(x))  # HiFi-GAN: default slope (0.01) before the last conv
        return torch.tanh(x).squeeze(1)

    @torch.no_grad()
    def waveform(self, features: torch.Tensor, **speaker) -> torch.Tensor:
        """``[B, T, F]`` -> ``wav [B, T * hop_length]``: what every WavThruVec vocoder offers for inference."""
        return self(features, **speaker)


# ----------------------------------------------------------------------------------------- discriminators
def _score(convs: nn.ModuleList, conv_post: nn.Module, x: torch.Tensor) -> Tuple[torch.Tensor, List[torch.Tensor]]:
    """Conv stack with leaky ReLUs -> ``(scores [B, N], feature maps of every layer)``."""
    fmap = []
    for conv in convs:
        x = F.leaky_relu(conv(x), LRELU_SLOPE)
        fmap.append(x)
    x = conv_post(x)
    fmap.append(x)
    return x.flatten(1), fmap


class PeriodDiscriminator(nn.Module):
    """The waveform folded into ``[B, 1, T / p, p]`` and scored by 2-D convs over time (HiFi-GAN's DiscriminatorP)."""

    def __init__(self, period: int, channels: Tuple[int, ...] = (32, 128, 512, 1024), kernel: int = 5, stride: int = 3):
        super().__init__()
        self.period = period
        chans = (1,) + tuple(channels)
        self.convs = nn.ModuleList(
            weight_norm(nn.Conv2d(chans[i], chans[i + 1], (kernel, 1), (stride, 1), padding=(_padding(kernel), 0)))
            for i in range(len(channels))
        )
        self.convs.append(weight_norm(nn.Conv2d(chans[-1], chans[-1], (kernel, 1), 1, padding=(2, 0))))
        self.conv_post = weight_norm(nn.Conv2d(chans[-1], 1, (3, 1), 1, padding=(1, 0)))

    def forward(self, wav: torch.Tensor) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        x = wav[:, None, :]
        b, c, t = x.shape
        if t % self.period:
            x = F.pad(x, (0, self.period - t % self.period), "reflect")
        return _score(self.convs, self.conv_post, x.view(b, c, -1, self.period))


class ScaleDiscriminator(nn.Module):
    """Grouped 1-D convs over the (average-pooled) waveform (HiFi-GAN's DiscriminatorS / MelGAN's)."""

    def __init__(self, use_spectral_norm: bool = False, width: int = 128):
        super().__init__()
        norm = spectral_norm if use_spectral_norm else weight_norm
        w = width
        spec = [
            (1, w, 15, 1, 1),
            (w, w, 41, 2, 4),
            (w, 2 * w, 41, 2, 16),
            (2 * w, 4 * w, 41, 4, 16),
            (4 * w, 8 * w, 41, 4, 16),
            (8 * w, 8 * w, 41, 1, 16),
            (8 * w, 8 * w, 5, 1, 1),
        ]
        self.convs = nn.ModuleList(
            norm(nn.Conv1d(i, o, k, s, groups=min(g, i, o), padding=k // 2)) for i, o, k, s, g in spec
        )
        self.conv_post = norm(nn.Conv1d(8 * w, 1, 3, 1, padding=1))

    def forward(self, wav: torch.Tensor) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        return _score(self.convs, self.conv_post, wav[:, None, :])


class MultiPeriodDiscriminator(nn.Module):
    def __init__(self, periods: Tuple[int, ...] = (2, 3, 5, 7, 11), channels: Tuple[int, ...] = (32, 128, 512, 1024)):
        super().__init__()
        self.discriminators = nn.ModuleList(PeriodDiscriminator(p, channels) for p in periods)

    def forward(self, wav):
        return [d(wav) for d in self.discriminators]


class MultiScaleDiscriminator(nn.Module):
    """Three scales: the waveform, then average-pooled by 2 and by 4; the first with spectral norm."""

    def __init__(self, width: int = 128):
        super().__init__()
        self.discriminators = nn.ModuleList(
            [ScaleDiscriminator(True, width), ScaleDiscriminator(False, width), ScaleDiscriminator(False, width)]
        )
        self.pool = nn.AvgPool1d(4, 2, padding=2)

    def forward(self, wav):
        out = []
        for i, d in enumerate(self.discriminators):
            if i:
                wav = self.pool(wav[:, None, :]).squeeze(1)
            out.append(d(wav))
        return out
