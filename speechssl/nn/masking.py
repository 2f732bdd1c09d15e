"""Span masking for masked prediction (wav2vec 2.0, HuBERT, w2v-BERT) and channel masking.

Two ways to say how much to mask, both in use in the literature:

* ``mode="fraction"`` (fairseq's ``mask_prob``): each utterance of ``L`` valid frames gets
  ``floor(mask_prob * L / mask_length + u)`` spans, ``u ~ U[0, 1)``, with distinct random starts.
  ``mask_prob`` is the fraction of frames the spans would cover if they did not overlap; they
  may overlap, so the covered fraction is lower (0.65 with spans of 10 covers about 49%).
* ``mode="start_prob"`` (the papers' ``p``): every frame that can start a whole span does so
  with probability ``mask_prob``, independently. ``p = 0.065, M = 10`` covers about
  ``1 - (1 - p)^M = 49%`` of frames: fairseq's 0.65 is this ``p`` times ``M``.

Spans never run past an utterance's valid frames. Everything is batched tensor work (no loop
over utterances or frames); pass a ``generator`` for reproducible masks.
"""

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F

from ..errors import ConfigError, InputError
from .utils import lengths_to_mask

MASK_MODES = ("fraction", "start_prob")


@dataclass
class MaskingConfig:
    """The span-masking fields every masked-prediction objective section carries (HuBERT, w2v-BERT, LightHuBERT
    distillation), flat as fairseq names them (``objective.mask_prob``...), checked in one place. A section
    derives from it and may change the defaults (w2v-BERT: ``start_prob`` 0.065, the paper's reading)."""

    mask_prob: float = 0.8  # meaning set by mask_mode
    mask_length: int = 10  # span length in frames
    mask_mode: str = "fraction"  # fraction (fairseq mask_prob: share of frames) | start_prob (paper's p)
    min_masks: int = 2  # spans per utterance at least

    def check_masking(self, section: str = "objective") -> None:
        """Refuse a setting no mask can be drawn from, naming the key."""
        if self.mask_mode not in MASK_MODES:
            raise ConfigError(f"{section}.mask_mode={self.mask_mode!r}; expected one of {MASK_MODES}")
        if not 0.0 <= self.mask_prob <= 1.0:
            raise ConfigError(f"{section}.mask_prob={self.mask_prob}: must be in [0, 1]")
        if self.mask_length < 1:
            raise ConfigError(f"{section}.mask_length={self.mask_length}: must be >= 1")
        if self.min_masks < 0:
            raise ConfigError(f"{section}.min_masks={self.min_masks}: must be >= 0")

    def draw(self, frames: torch.Tensor, width: int, seeds: torch.Tensor) -> torch.Tensor:
        """Per-utterance seeded span masks ``[B, width]`` (bool) for ``frames [B]`` valid frames."""
        return seeded_span_masks(frames, width, seeds, self.mask_prob, self.mask_length, self.min_masks, self.mask_mode)


def _dilate(starts: torch.Tensor, span: int) -> torch.Tensor:
    """Frame t is covered when a span starts in ``[t - span + 1, t]``: ``[B, T]`` bool."""
    x = F.pad(starts.float()[:, None, :], (span - 1, 0))
    return F.max_pool1d(x, span, stride=1)[:, 0, :] > 0


def span_mask(
    lengths: torch.Tensor,
    max_len: int,
    mask_prob: float,
    mask_length: int = 10,
    min_masks: int = 0,
    mode: str = "fraction",
    generator: Optional[torch.Generator] = None,
) -> torch.Tensor:
    """Random spans over ``[B, max_len]`` (True = masked) inside each row's ``lengths``."""
    if mask_length < 1:
        raise InputError(f"mask_length must be >= 1, got {mask_length}")
    if not 0.0 <= mask_prob <= 1.0 and mode == "start_prob":
        raise InputError(f"start probability must be in [0, 1], got {mask_prob}")
    device = lengths.device
    B = lengths.shape[0]
    num_starts = (lengths - mask_length + 1).clamp_min(0)  # frames where a whole span fits
    can_start = lengths_to_mask(num_starts, max_len)
    u = torch.rand(B, max_len, device=device, generator=generator)
    if mode == "start_prob":
        starts = (u < mask_prob) & can_start
        if min_masks > 0:  # top up rows with too few starts from the lowest draws
            starts |= _first_k(u, can_start, torch.full_like(lengths, min_masks))
    elif mode == "fraction":
        extra = torch.rand(B, device=device, generator=generator)
        count = torch.floor(mask_prob * lengths.float() / mask_length + extra).long()
        count = torch.minimum(count.clamp_min(min_masks), num_starts)
        starts = _first_k(u, can_start, count)
    else:
        raise InputError(f"mask mode must be 'fraction' or 'start_prob', got {mode!r}")
    return _dilate(starts, mask_length)


def seeded_span_masks(
    frames: torch.Tensor,
    width: int,
    seeds: torch.Tensor,
    mask_prob: float,
    mask_length: int = 10,
    min_masks: int = 0,
    mode: str = "fraction",
) -> torch.Tensor:
    """``[B, width]`` span masks, row ``b`` drawn over its own ``frames[b]`` with generator seed ``seeds[b]``:
    an utterance's mask does not depend on the batch it is in, its padding, or the process rank.

    An utterance shorter than two spans gets spans of half its length (fairseq shortens them
    too), so one-word utterances are masked rather than silently skipped."""
    rows = []
    for n, s in zip(frames.tolist(), seeds.tolist()):
        g = torch.Generator().manual_seed(int(s))
        span = min(mask_length, max(1, n // 2))
        row = span_mask(torch.tensor([n]), n, mask_prob, span, min_masks, mode, g)
        rows.append(F.pad(row, (0, width - n)))
    return torch.cat(rows).to(frames.device)


def _first_k(scores: torch.Tensor, allowed: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Per row, the ``k[b]`` allowed positions with the lowest scores (sampling without replacement)."""
    scores = scores.masked_fill(~allowed, float("inf"))
    ranks = scores.argsort(dim=1).argsort(dim=1)
    return (ranks < k[:, None]) & allowed


def channel_mask(
    batch: int,
    channels: int,
    mask_prob: float,
    mask_length: int = 10,
    min_masks: int = 0,
    mode: str = "fraction",
    generator: Optional[torch.Generator] = None,
    device=None,
) -> torch.Tensor:
    """Spans over the feature axis: ``[B, channels]`` bool, True = zeroed channel."""
    lengths = torch.full((batch,), channels, dtype=torch.long, device=device)
    return span_mask(lengths, channels, mask_prob, mask_length, min_masks, mode, generator)


def apply_mask(
    x: torch.Tensor,
    time_mask: Optional[torch.Tensor],
    mask_embedding: Optional[torch.Tensor] = None,
    chan_mask: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Replace masked frames of ``x [B, T, D]`` by ``mask_embedding [D]`` (zeros if None) and zero masked channels."""
    if time_mask is not None:
        fill = mask_embedding.to(x.dtype) if mask_embedding is not None else x.new_zeros(x.shape[-1])
        x = torch.where(time_mask[..., None], fill, x)
    if chan_mask is not None:
        x = x.masked_fill(chan_mask[:, None, :], 0.0)
    return x
