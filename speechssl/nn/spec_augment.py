"""SpecAugment on a sequence of feature vectors (Park et al. 2019), as s3prl applies it to the SUPERB ASR and SF
heads' input: a time warp, then masks along the feature axis, then masks along time, all filled with zeros.

Masks are drawn per utterance and stay inside its valid frames, so padding is never touched and an utterance's
augmentation does not depend on what it was batched with. In eval mode the module is the identity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError


@dataclass
class SpecAugmentConfig:
    """s3prl's ``downstream/asr/config.yaml`` ``specaug`` block (widths are ``[low, high)`` in frames / dims)."""

    enabled: bool = False
    time_warp_window: int = 5  # 0: no warp
    num_time_masks: int = 2
    time_mask_width: int = 40  # widths drawn from [0, time_mask_width)
    num_freq_masks: int = 4
    freq_mask_width: int = 50
    # Adaptive SpecAugment (s3prl's SF config: ratio 0.04, at most 20): per utterance of n frames,
    # min(int(ratio * n), max_adaptive_time_masks) time masks of widths below min(time_mask_width, int(ratio * n)).
    adaptive_ratio: float = 0.0  # 0: off
    max_adaptive_time_masks: int = 20

    def validate(self) -> None:
        for key in (
            "time_warp_window",
            "num_time_masks",
            "time_mask_width",
            "num_freq_masks",
            "freq_mask_width",
            "adaptive_ratio",
            "max_adaptive_time_masks",
        ):
            if getattr(self, key) < 0:
                raise InputError(f"specaug.{key} must be >= 0, got {getattr(self, key)}")

    def time_masks(self, frames: int) -> tuple:
        """``(number, width bound)`` of the time masks for an utterance of ``frames`` frames."""
        if self.adaptive_ratio > 0:
            n = int(self.adaptive_ratio * frames)
            return min(n, self.max_adaptive_time_masks), min(self.time_mask_width, n)
        return self.num_time_masks, self.time_mask_width


def time_warp(x: torch.Tensor, window: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """``x [T, D]`` -> ``[T, D]``: the frames before a random centre are stretched or squeezed onto
    ``[0, warped)`` and the rest onto ``[warped, T)`` (bicubic, as s3prl and ESPnet). Too short: unchanged."""
    t = x.shape[0]
    if window < 1 or t - window <= window:
        return x
    centre = int(torch.randint(window, t - window, (1,), generator=generator))
    warped = int(torch.randint(centre - window, centre + window, (1,), generator=generator)) + 1
    img = x[None, None]  # [1, 1, T, D]: resized along T only
    left = F.interpolate(img[:, :, :centre], size=(warped, x.shape[1]), mode="bicubic", align_corners=False)
    right = F.interpolate(img[:, :, centre:], size=(t - warped, x.shape[1]), mode="bicubic", align_corners=False)
    return torch.cat([left, right], dim=2)[0, 0]


def band_mask(size: int, num: int, max_width: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """``[size]`` bool: ``num`` bands of widths drawn from ``[0, max_width)`` at random starts inside ``size``."""
    mask = torch.zeros(size, dtype=torch.bool)
    if num < 1 or max_width < 1 or size < 1:
        return mask
    widths = torch.randint(0, max_width, (num,), generator=generator).clamp(max=size)
    for w in widths.tolist():
        start = int(torch.randint(0, size - w + 1, (1,), generator=generator))
        mask[start : start + w] = True
    return mask


class SpecAugment(nn.Module):
    """``[B, T, D]`` features and ``[B]`` lengths -> augmented ``[B, T, D]`` (training mode only)."""

    def __init__(self, cfg: SpecAugmentConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg

    def forward(
        self, x: torch.Tensor, lengths: torch.Tensor, generator: Optional[torch.Generator] = None
    ) -> torch.Tensor:
        if not self.training:
            return x
        cfg, out = self.cfg, x.clone()
        for i, n in enumerate(lengths.tolist()):
            y = time_warp(x[i, :n], cfg.time_warp_window, generator)
            freq = band_mask(x.shape[-1], cfg.num_freq_masks, cfg.freq_mask_width, generator).to(x.device)
            time = band_mask(n, *cfg.time_masks(n), generator).to(x.device)
            out[i, :n] = y.masked_fill(freq[None, :] | time[:, None], 0.0)
        return out

    def extra_repr(self) -> str:
        c = self.cfg
        return (
            f"time_warp={c.time_warp_window}, time_masks={c.num_time_masks}x[0,{c.time_mask_width}), "
            f"freq_masks={c.num_freq_masks}x[0,{c.freq_mask_width})"
        )
