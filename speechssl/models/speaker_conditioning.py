"""What WavThruVec's vocoders share in front of their networks: the input features, optionally snapped to
k-means units, and the speaker vector (a reference embedding, standardised or not, or a training speaker's
table row) that every vocoder adds to its first layer's output.

Subclasses call :meth:`SpeakerConditioned.init_conditioning` in ``__init__``; the attribute names
(``speaker_proj``, ``speaker_table``, ``speaker_mean``, ``speaker_std``, ``codebook``) are the state-dict keys
of exported vocoders, so they stay as they are.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ..errors import InputError


class SpeakerConditioned(nn.Module):
    """Base of a vocoder whose config has ``feature_dim``, ``speaker_dim``, ``num_speakers``,
    ``speaker_standardize``, ``feature_dropout`` and ``codebook_size`` (see ``Vec2WavConfig``)."""

    name = "vocoder"

    def init_conditioning(self, cfg, channels: int) -> None:
        """The conditioning modules for a first layer of ``channels`` outputs."""
        self.cfg = cfg
        self.feature_dropout = nn.Dropout(cfg.feature_dropout)
        self.speaker_table = nn.Embedding(cfg.num_speakers, cfg.speaker_dim) if cfg.num_speakers else None
        self.speaker_proj = nn.Linear(cfg.speaker_dim, channels) if cfg.speaker_dim else None
        self.standardize = bool(cfg.speaker_standardize and cfg.speaker_dim and not cfg.num_speakers)
        if self.standardize:
            self.register_buffer("speaker_mean", torch.zeros(cfg.speaker_dim))
            self.register_buffer("speaker_std", torch.ones(cfg.speaker_dim))
        if cfg.codebook_size:
            self.register_buffer("codebook", torch.zeros(cfg.codebook_size, cfg.feature_dim))
        else:
            self.codebook = None

    def quantize(self, features: torch.Tensor) -> torch.Tensor:
        """``[B, T, F]`` -> each frame's nearest codebook centroid (unchanged without a codebook)."""
        if self.codebook is None:
            return features
        c = self.codebook.to(features.dtype)
        dist = (features**2).sum(-1, keepdim=True) - 2 * features @ c.T + (c**2).sum(-1)  # [B, T, K]
        return c[dist.argmin(-1)]

    def inputs(self, features: torch.Tensor) -> torch.Tensor:
        """``[B, T, F]`` checked, quantized (with a codebook) and dropped out (in training)."""
        if features.shape[-1] != self.cfg.feature_dim:
            raise InputError(
                f"{self.name}: features of width {features.shape[-1]}, the model takes "
                f"{self.cfg.feature_dim} (feature_dim)"
            )
        return self.feature_dropout(self.quantize(features))

    def speaker_vector(
        self, speaker: Optional[torch.Tensor] = None, speaker_ids: Optional[torch.Tensor] = None
    ) -> Optional[torch.Tensor]:
        """``[B, S]`` from a reference embedding, or the training speaker's table row."""
        if self.speaker_proj is None:
            return None
        if speaker is None:
            if speaker_ids is None or self.speaker_table is None:
                ids = " or speaker ids" if self.speaker_table is not None else ""
                raise InputError(
                    f"{self.name}: this model is speaker-conditioned: pass a speaker embedding "
                    f"(from reference audio){ids}"
                )
            speaker = self.speaker_table(speaker_ids)
        elif speaker.shape[-1] != self.cfg.speaker_dim:
            raise InputError(
                f"{self.name}: speaker embedding of size {speaker.shape[-1]}, the model takes {self.cfg.speaker_dim}"
            )
        elif self.standardize:
            speaker = (speaker - self.speaker_mean) / self.speaker_std
        return speaker

    def add_speaker(
        self, x: torch.Tensor, speaker: Optional[torch.Tensor] = None, speaker_ids: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """``x [B, C, T]`` + the projected speaker vector at every frame (global conditioning, as VITS's
        ``gin_channels``); ``x`` unchanged without speaker conditioning."""
        g = self.speaker_vector(speaker, speaker_ids)
        return x if g is None else x + self.speaker_proj(g)[..., None]

    def set_speaker_statistics(self, embeddings: torch.Tensor) -> None:
        """Training reference embeddings ``[N, S]`` -> the standardisation buffers (no-op without them)."""
        if self.standardize:
            self.speaker_mean.copy_(embeddings.mean(0))
            self.speaker_std.copy_(embeddings.std(0).clamp_min(1e-6))
