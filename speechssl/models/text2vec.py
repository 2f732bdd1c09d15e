"""WavThruVec stage 1 (text2vec): phonemes -> the SSL feature sequence, with learnt durations.

``phones [B, T_x] -> encoder -> (durations) -> length regulator -> decoder -> features [B, T_y, F]``

Durations come from monotonic alignment search between the encoder's projection ``mu [B, T_x, F]`` and
the target features (Glow-TTS with unit variance: the log-likelihood of frame j under token i is
``-||y_j - mu_i||^2 / 2``), or from the corpus's phone alignments where it has them. A duration
predictor learns ``log(1 + d)`` from them for synthesis. The encoder and decoder are the toolkit's
Transformer or Conformer stacks; a speaker embedding (reference audio) or a table row conditions both.

Training loss: ``L1 + (1 - cosine)`` of the predicted features on valid frames, the prior term
``||y - mu_aligned||^2`` that drives the alignment, and the duration MSE.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from ..nn.alignment import durations_from_path, length_regulate, monotonic_alignment_search
from ..nn.conformer import ConformerEncoder
from ..nn.transformer import TransformerEncoder


@dataclass
class Text2VecConfig:
    num_phones: int = 64  # the phone inventory's size + padding id 0
    feature_dim: int = 768  # the SSL layer predicted
    dim: int = 256
    encoder_layers: int = 4
    decoder_layers: int = 4
    heads: int = 2
    ffn_dim: int = 1024
    block: str = "transformer"  # transformer | conformer
    conv_kernel: int = 15  # conformer depthwise kernel
    dropout: float = 0.1
    speaker_dim: int = 0  # 0: no speaker conditioning
    num_speakers: int = 0  # > 0: a lookup table for training speakers
    duration_predictor_channels: int = 256
    duration_predictor_kernel: int = 3
    prior_weight: float = 1.0
    duration_weight: float = 1.0

    def validate(self) -> Text2VecConfig:
        if self.block not in ("transformer", "conformer"):
            raise InputError(f"text2vec: block must be transformer or conformer, got {self.block!r}")
        if self.dim % self.heads:
            raise InputError(f"text2vec: dim {self.dim} is not divisible by heads {self.heads}")
        if self.num_phones < 2:
            raise InputError("text2vec: num_phones must count the phone set plus the padding id 0")
        if self.num_speakers and not self.speaker_dim:
            raise InputError("text2vec: num_speakers > 0 needs speaker_dim > 0")
        return self


def _stack(cfg: Text2VecConfig, layers: int) -> nn.Module:
    if cfg.block == "conformer":
        return ConformerEncoder(
            cfg.dim,
            layers,
            cfg.heads,
            cfg.ffn_dim,
            depthwise_kernel=cfg.conv_kernel,
            conv_norm="layer_norm",
            dropout=cfg.dropout,
            attention_dropout=cfg.dropout,
            position="rel_pos",
        )
    return TransformerEncoder(
        cfg.dim,
        layers,
        cfg.heads,
        cfg.ffn_dim,
        pos_conv_kernel=16,
        pos_conv_groups=16,
        layer_norm_first=True,
        dropout=cfg.dropout,
        attention_dropout=cfg.dropout,
    )


class DurationPredictor(nn.Module):
    """FastSpeech's: two (conv, ReLU, LayerNorm, dropout) blocks and a linear -> ``log(1 + d) [B, T_x]``."""

    def __init__(self, dim: int, channels: int, kernel: int, dropout: float):
        super().__init__()
        self.conv1 = nn.Conv1d(dim, channels, kernel, padding=kernel // 2)
        self.conv2 = nn.Conv1d(channels, channels, kernel, padding=kernel // 2)
        self.norm1, self.norm2 = nn.LayerNorm(channels), nn.LayerNorm(channels)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(channels, 1)

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        m = valid[..., None].to(x.dtype)
        x = self.dropout(self.norm1(F.relu(self.conv1((x * m).transpose(1, 2))).transpose(1, 2)))
        x = self.dropout(self.norm2(F.relu(self.conv2((x * m).transpose(1, 2))).transpose(1, 2)))
        return self.out(x).squeeze(-1) * valid.to(x.dtype)


def _valid(lengths: torch.Tensor, T: int) -> torch.Tensor:
    return torch.arange(T, device=lengths.device)[None, :] < lengths[:, None]


class Text2Vec(nn.Module):
    """``phones [B, T_x], phone_lengths [B] (, features [B, T_y, F], feature_lengths [B]) -> features``."""

    def __init__(self, cfg: Text2VecConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.num_phones, cfg.dim, padding_idx=0)
        self.encoder = _stack(cfg, cfg.encoder_layers)
        self.decoder = _stack(cfg, cfg.decoder_layers)
        self.speaker_table = nn.Embedding(cfg.num_speakers, cfg.speaker_dim) if cfg.num_speakers else None
        self.speaker_proj = nn.Linear(cfg.speaker_dim, cfg.dim) if cfg.speaker_dim else None
        self.mu = nn.Linear(cfg.dim, cfg.feature_dim)
        self.durations = DurationPredictor(
            cfg.dim, cfg.duration_predictor_channels, cfg.duration_predictor_kernel, cfg.dropout
        )
        self.out = nn.Linear(cfg.dim, cfg.feature_dim)

    def _speaker(self, speaker, speaker_ids) -> Optional[torch.Tensor]:
        if self.speaker_proj is None:
            return None
        if speaker is None:
            if speaker_ids is None or self.speaker_table is None:
                raise InputError("text2vec: this model is speaker-conditioned: pass a speaker embedding")
            speaker = self.speaker_table(speaker_ids)
        return self.speaker_proj(speaker)[:, None, :]

    def encode(self, phones, phone_lengths, speaker=None, speaker_ids=None):
        """-> (hidden [B, T_x, D], mu [B, T_x, F], valid [B, T_x])."""
        valid = _valid(phone_lengths, phones.shape[1])
        x = self.embed(phones) * math.sqrt(self.cfg.dim)
        g = self._speaker(speaker, speaker_ids)
        if g is not None:
            x = x + g
        _, h = self.encoder(x, valid)
        if g is not None:
            h = h + g
        return h, self.mu(h), valid

    def decode(self, h, durations, speaker=None, speaker_ids=None, max_frames=None):
        """Expanded encoder states -> ``(features [B, T_y, F], frames [B])``."""
        x, frames = length_regulate(h, durations, max_frames)
        valid = _valid(frames, x.shape[1])
        g = self._speaker(speaker, speaker_ids)
        if g is not None:
            x = x + g
        _, y = self.decoder(x, valid)
        return self.out(y) * valid[..., None].to(y.dtype), frames

    def align(self, mu, features, phone_lengths, feature_lengths) -> torch.Tensor:
        """Durations ``[B, T_x]`` by monotonic alignment search on ``-||y_j - mu_i||^2 / 2``."""
        with torch.no_grad():
            dist = torch.cdist(mu.float(), features.float()) ** 2  # [B, T_x, T_y]
            path = monotonic_alignment_search(-0.5 * dist, phone_lengths, feature_lengths)
        return durations_from_path(path)

    def forward(
        self,
        phones,
        phone_lengths,
        features,
        feature_lengths,
        speaker=None,
        speaker_ids=None,
        durations: Optional[torch.Tensor] = None,
    ) -> Dict[str, torch.Tensor]:
        """Teacher-forced training step: returns the losses and the predicted features."""
        h, mu, valid = self.encode(phones, phone_lengths, speaker, speaker_ids)
        if durations is None:
            durations = self.align(mu, features, phone_lengths, feature_lengths)
        durations = durations * valid.long()
        pred, frames = self.decode(h, durations, speaker, speaker_ids, max_frames=features.shape[1])
        fvalid = _valid(torch.minimum(frames, feature_lengths), features.shape[1])
        n = fvalid.sum().clamp(min=1)
        target = features * fvalid[..., None].to(features.dtype)
        l1 = (pred - target).abs().sum(-1)[fvalid].sum() / (n * features.shape[-1])
        cos = 1 - F.cosine_similarity(pred[fvalid], target[fvalid], dim=-1).mean()
        mu_aligned, _ = length_regulate(mu, durations, max_frames=features.shape[1])
        prior = ((mu_aligned - target) ** 2).sum(-1)[fvalid].sum() / (n * features.shape[-1])
        log_d = torch.log1p(durations.float())
        dur = ((self.durations(h.detach(), valid) - log_d) ** 2)[valid].mean()
        loss = l1 + cos + self.cfg.prior_weight * prior + self.cfg.duration_weight * dur
        return {
            "loss": loss,
            "l1": l1.detach(),
            "cos": cos.detach(),
            "prior": prior.detach(),
            "duration": dur.detach(),
            "features": pred,
            "durations": durations,
        }

    @torch.no_grad()
    def synthesize(self, phones, phone_lengths, speaker=None, speaker_ids=None, length_scale: float = 1.0):
        """Durations from the predictor -> ``(features [B, T_y, F], frames [B])``."""
        h, _, valid = self.encode(phones, phone_lengths, speaker, speaker_ids)
        d = torch.clamp(torch.round(torch.expm1(self.durations(h, valid)) * length_scale), min=1).long()
        return self.decode(h, d * valid.long(), speaker, speaker_ids)
