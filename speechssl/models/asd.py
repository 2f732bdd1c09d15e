"""Active speaker detection: a face track and the audio -> is this face speaking, frame by frame (25 fps).

In the manner of Light-ASD (Liao et al., CVPR 2023): a light visual front end of factorised 3-D
convolutions (spatial 1x3x3, then temporal 3x1x1) over grayscale face crops (112 x 112, or ``face_size``
where a CPU budget needs less: the cost goes with the pixels), an audio branch, fusion,
a bidirectional GRU, and per-frame logits for the fused stream and (auxiliary) the visual stream alone.

The audio branch is where this toolkit differs: either the 13-dim MFCC baseline of TalkNet / Light-ASD
(100 Hz, 4 frames per video frame) or any upstream's hidden states through the upstream contract
(a learnt weighted sum of layers; 2 frames per video frame at 50 Hz, 1 for w2v-BERT's 25 Hz), averaged onto
the video frames.

``visual [B, T, S, S] (S = face_size), audio [B, 4T, 13] or hidden states [[B, 2T, D], ...]
-> logits_av [B, T], logits_v [B, T]``
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from ..nn.weighted_sum import WeightedSum


@dataclass
class AsdConfig:
    audio: str = "mfcc"  # mfcc | ssl | none (visual only)
    mfcc_dim: int = 13
    ssl_layers: int = 0  # upstream hidden states (num_layers + 1); set from the upstream
    ssl_dim: int = 0
    ssl_frames_per_video_frame: int = 2  # 50 Hz upstreams at 25 fps; w2v-BERT's 25 Hz: 1 (set from the upstream)
    face_size: int = 112  # crops are resized to S x S when tracks load (Light-ASD: 112)
    channels: List[int] = field(default_factory=lambda: [32, 64, 128])  # visual front end widths
    dim: int = 128
    fusion: str = "add"  # add | cross_attention
    gru_layers: int = 1
    dropout: float = 0.1
    visual_loss_weight: float = 0.5

    def validate(self) -> AsdConfig:
        if self.audio not in ("mfcc", "ssl", "none"):
            raise InputError(f"asd: audio must be mfcc, ssl or none, got {self.audio!r}")
        if self.fusion not in ("add", "cross_attention"):
            raise InputError(f"asd: fusion must be add or cross_attention, got {self.fusion!r}")
        if self.face_size < 2 ** len(self.channels) * 2:
            raise InputError(f"asd: face_size {self.face_size} is too small for {len(self.channels)} visual stages")
        if self.audio == "ssl" and (self.ssl_layers < 1 or self.ssl_dim < 1):
            raise InputError("asd: audio=ssl needs ssl_layers and ssl_dim (taken from the upstream)")
        return self


class VisualBlock(nn.Module):
    """Spatial (1x3x3) then temporal (3x1x1) convolution, batch norm, ReLU, spatial max-pool by 2."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.spatial = nn.Conv3d(c_in, c_out, (1, 3, 3), padding=(0, 1, 1), bias=False)
        self.temporal = nn.Conv3d(c_out, c_out, (3, 1, 1), padding=(1, 0, 0), bias=False)
        self.norm = nn.BatchNorm3d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.norm(self.temporal(self.spatial(x))))
        return F.max_pool3d(x, (1, 2, 2))


class VisualFrontend(nn.Module):
    """``[B, T, H, W]`` uint8 or float -> ``[B, T, dim]``: the blocks, then global spatial average."""

    def __init__(self, channels: Sequence[int], dim: int):
        super().__init__()
        chans = [1, *channels]
        self.stem = nn.Sequential(
            nn.Conv3d(1, chans[1], (1, 5, 5), stride=(1, 2, 2), padding=(0, 2, 2), bias=False),
            nn.BatchNorm3d(chans[1]),
            nn.ReLU(),
        )
        self.blocks = nn.Sequential(*[VisualBlock(chans[i], chans[i + 1]) for i in range(1, len(channels))])
        self.proj = nn.Linear(chans[-1], dim)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = frames.float()
        if frames.dtype == torch.uint8:
            x = x / 255.0
        x = (x - 0.5)[:, None]  # [B, 1, T, H, W]
        x = self.blocks(self.stem(x))
        return self.proj(x.mean((3, 4)).transpose(1, 2))


def to_video_rate(x: torch.Tensor, per_frame: int, frames: int) -> torch.Tensor:
    """``[B, N, D]`` at ``per_frame`` x the video rate -> ``[B, frames, D]`` (mean over each video frame's span;
    padded with the last frame or cut so the lengths agree)."""
    need = frames * per_frame
    if x.shape[1] < need:
        x = torch.cat([x, x[:, -1:].expand(-1, need - x.shape[1], -1)], 1)
    return x[:, :need].reshape(x.shape[0], frames, per_frame, x.shape[-1]).mean(2)


class ActiveSpeakerModel(nn.Module):
    def __init__(self, cfg: AsdConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.visual = VisualFrontend(cfg.channels, cfg.dim)
        if cfg.audio == "mfcc":
            self.audio = nn.Sequential(
                nn.Conv1d(cfg.mfcc_dim, cfg.dim, 3, padding=1),
                nn.ReLU(),
                nn.Conv1d(cfg.dim, cfg.dim, 3, padding=1),
                nn.ReLU(),
            )
        elif cfg.audio == "ssl":
            self.weighted_sum = WeightedSum(cfg.ssl_layers)
            self.audio = nn.Sequential(nn.Linear(cfg.ssl_dim, cfg.dim), nn.ReLU(), nn.Linear(cfg.dim, cfg.dim))
        if cfg.fusion == "cross_attention" and cfg.audio != "none":
            self.cross_v = nn.MultiheadAttention(cfg.dim, 4, batch_first=True)
            self.cross_a = nn.MultiheadAttention(cfg.dim, 4, batch_first=True)
        self.dropout = nn.Dropout(cfg.dropout)
        self.gru = nn.GRU(cfg.dim, cfg.dim, cfg.gru_layers, batch_first=True, bidirectional=True)
        self.head_av = nn.Linear(2 * cfg.dim, 1)
        self.head_v = nn.Linear(cfg.dim, 1)

    def audio_features(
        self, frames: int, mfcc: Optional[torch.Tensor] = None, hidden_states: Optional[List[torch.Tensor]] = None
    ) -> Optional[torch.Tensor]:
        """-> ``[B, T, dim]`` at the video rate, or None for visual only."""
        if self.cfg.audio == "none":
            return None
        if self.cfg.audio == "mfcc":
            if mfcc is None:
                raise InputError("asd: the MFCC model needs mfcc [B, 4T, 13]")
            a = self.audio(mfcc.transpose(1, 2)).transpose(1, 2)  # 100 Hz
            return to_video_rate(a, 4, frames)
        if hidden_states is None:
            raise InputError("asd: the SSL model needs the upstream's hidden states")
        return to_video_rate(self.audio(self.weighted_sum(hidden_states)), self.cfg.ssl_frames_per_video_frame, frames)

    def forward(
        self,
        visual: torch.Tensor,
        mfcc: Optional[torch.Tensor] = None,
        hidden_states: Optional[List[torch.Tensor]] = None,
    ):
        """-> ``(logits_av [B, T], logits_v [B, T])``."""
        T = visual.shape[1]
        v = self.visual(visual)
        a = self.audio_features(T, mfcc, hidden_states)
        if a is None:
            x = v
        elif self.cfg.fusion == "add":
            x = v + a
        else:
            x = self.cross_v(v, a, a, need_weights=False)[0] + self.cross_a(a, v, v, need_weights=False)[0]
        h, _ = self.gru(self.dropout(x))
        return self.head_av(h).squeeze(-1), self.head_v(v).squeeze(-1)

    def loss(
        self,
        logits_av: torch.Tensor,
        logits_v: torch.Tensor,
        labels: torch.Tensor,
        valid: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """Audio-visual BCE plus ``visual_loss_weight`` x the visual-only auxiliary BCE, over valid frames."""
        valid = torch.ones_like(labels, dtype=torch.bool) if valid is None else valid
        y = labels.float()[valid]
        loss = F.binary_cross_entropy_with_logits(logits_av[valid], y)
        return loss + self.cfg.visual_loss_weight * F.binary_cross_entropy_with_logits(logits_v[valid], y)
