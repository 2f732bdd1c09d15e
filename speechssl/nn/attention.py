"""Multi-head self-attention through ``scaled_dot_product_attention``, with relative positions.

Position schemes (``position``):

* ``"none"``: plain attention (positions come from elsewhere, e.g. a conv positional embedding).
* ``"rel_pos"``: Transformer-XL relative positions with learnt u/v biases over a sinusoid table
  (Conformer, wav2vec2-conformer). ``score(i, j) = (q_i + u) k_j + (q_i + v) W_p r_{i-j}``.
* ``"relative_key"``: Shaw et al. clipped relative keys (w2v-BERT 2.0):
  ``score(i, j) = q_i k_j + q_i e_{clip(j - i, -left, right)}``.
* ``"rotary"``: rotary embeddings, applied (as fairseq and transformers do) to the layer input
  before the query/key projections.
* ``"gated_bucket"``: WavLM's gated relative position bias. The encoder computes one bucketed bias
  ``b [H, T, T]`` (:class:`RelativePositionBuckets`) and hands it to every layer, which scales it per
  query by a gate read from the layer input: ``score(i, j) = q_i k_j / sqrt(d) + g_i b_{ij}``.

Position scores are added to the key padding mask and handed to SDPA as one float bias, so the
fused kernel still does the softmax and the value product.
"""

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError

POSITION_TYPES = ("none", "rel_pos", "relative_key", "rotary", "gated_bucket")


def sinusoid_relative_table(length: int, dim: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """Sinusoids for relative positions ``length-1 ... -(length-1)``: ``[2*length-1, dim]``."""
    pos = torch.arange(length - 1, -length, -1, dtype=torch.float32, device=device)[:, None]
    div = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32, device=device) * -(math.log(10000.0) / dim))
    table = torch.zeros(2 * length - 1, dim, device=device)
    table[:, 0::2] = torch.sin(pos * div)
    table[:, 1::2] = torch.cos(pos * div)
    return table.to(dtype)


def rotary_tables(length: int, head_dim: int, base: float = 10000.0, device=None, dtype=torch.float32):
    """``(cos, sin)`` each ``[length, head_dim]`` (halves duplicated, the GPT-NeoX layout)."""
    inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, device=device).float() / head_dim))
    freqs = torch.arange(length, device=device).float()[:, None] * inv_freq
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, num_heads: int) -> torch.Tensor:
    """Rotate ``x [B, T, H*d]`` head by head."""
    B, T, D = x.shape
    x = x.view(B, T, num_heads, D // num_heads)
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    x = x * cos[None, :, None, :] + rotated * sin[None, :, None, :]
    return x.reshape(B, T, D)


class MultiheadSelfAttention(nn.Module):
    """Self-attention over ``[B, T, D]`` with a key padding mask.

    Args:
        dim, num_heads: model width and heads (``dim % num_heads == 0``).
        dropout: attention-probability dropout.
        position: one of :data:`POSITION_TYPES`.
        left_max_position, right_max_position: clipping for ``"relative_key"``.
        rotary_base: base of the rotary frequencies.
        bias: biases on the q/k/v/out projections.
        head_dim: width of one head (default ``dim // num_heads``). Another value gives an attention
            width ``num_heads * head_dim`` that differs from ``dim`` (LightHuBERT subnets), with plain
            positions only.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        dropout: float = 0.0,
        position: str = "none",
        left_max_position: int = 64,
        right_max_position: int = 8,
        rotary_base: float = 10000.0,
        bias: bool = True,
        head_dim: Optional[int] = None,
    ):
        super().__init__()
        if head_dim is None and dim % num_heads:
            raise InputError(f"model dim {dim} is not divisible by {num_heads} heads")
        if position not in POSITION_TYPES:
            raise InputError(f"unknown position type {position!r}; choose from {POSITION_TYPES}")
        self.dim, self.num_heads = dim, num_heads
        self.head_dim = head_dim or dim // num_heads
        self.attention_dim = num_heads * self.head_dim
        if self.attention_dim != dim and position != "none":
            raise InputError(
                f"position {position!r} needs heads x head_dim = dim ({num_heads} x {self.head_dim} != {dim})"
            )
        self.dropout, self.position = dropout, position
        self.q_proj = nn.Linear(dim, self.attention_dim, bias=bias)
        self.k_proj = nn.Linear(dim, self.attention_dim, bias=bias)
        self.v_proj = nn.Linear(dim, self.attention_dim, bias=bias)
        self.out_proj = nn.Linear(self.attention_dim, dim, bias=bias)
        if position == "rel_pos":
            self.pos_proj = nn.Linear(dim, dim, bias=False)
            self.pos_bias_u = nn.Parameter(torch.zeros(num_heads, self.head_dim))
            self.pos_bias_v = nn.Parameter(torch.zeros(num_heads, self.head_dim))
        elif position == "relative_key":
            self.left_max_position, self.right_max_position = left_max_position, right_max_position
            self.distance_embedding = nn.Embedding(left_max_position + right_max_position + 1, self.head_dim)
        elif position == "rotary":
            self.rotary_base = rotary_base
        elif position == "gated_bucket":  # WavLM's shapes, so its weights load unchanged
            self.gate_const = nn.Parameter(torch.ones(1, num_heads, 1, 1))
            self.gate_proj = nn.Linear(self.head_dim, 8)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        return x.view(B, T, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(
        self, x: torch.Tensor, valid: Optional[torch.Tensor] = None, position_bias: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """``x [B, T, D]``, ``valid [B, T]`` (True on real frames) -> ``[B, T, D]``.
        ``position_bias [H, T, T]``: the encoder's shared bias (``"gated_bucket"`` only)."""
        B, T, _ = x.shape
        qk_in = x
        if self.position == "rotary":
            cos, sin = rotary_tables(T, self.head_dim, self.rotary_base, x.device, x.dtype)
            qk_in = apply_rotary(x, cos, sin, self.num_heads)
        q = self._heads(self.q_proj(qk_in))
        k = self._heads(self.k_proj(qk_in))
        v = self._heads(self.v_proj(x))
        scale = self.head_dim**-0.5

        bias = None
        if self.position == "rel_pos":
            bias = self._rel_pos_scores(q, T) * scale
            q = q + self.pos_bias_u[None, :, None, :]
        elif self.position == "relative_key":
            bias = self._relative_key_scores(q, T) * scale
        elif self.position == "gated_bucket":
            bias = self._gate(x) * position_bias[None].to(x.dtype)

        mask = None
        if valid is not None:
            key_ok = valid[:, None, None, :]
            if bias is None:
                mask = key_ok
            else:
                mask = bias.masked_fill(~key_ok, float("-inf"))
        elif bias is not None:
            mask = bias
        if mask is not None and mask.dtype != torch.bool:
            mask = mask.to(q.dtype)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0)
        return self.out_proj(out.transpose(1, 2).reshape(B, T, self.attention_dim))

    def _gate(self, x: torch.Tensor) -> torch.Tensor:
        """WavLM's per-query gate from the layer input split into heads: ``[B, H, T, 1]``."""
        B, T, _ = x.shape
        proj = self.gate_proj(x.view(B, T, self.num_heads, -1).transpose(1, 2))  # [B, H, T, 8]
        gate_a, gate_b = torch.sigmoid(proj.view(B, self.num_heads, T, 2, 4).sum(-1)).chunk(2, dim=-1)
        return gate_a * (gate_b * self.gate_const - 1.0) + 2.0

    def _rel_pos_scores(self, q: torch.Tensor, T: int) -> torch.Tensor:
        """``(q + v) W_p r_{i-j}``: ``[B, H, T, T]``."""
        table = sinusoid_relative_table(T, self.dim, q.device, q.dtype)  # [2T-1, D]
        p = self.pos_proj(table).view(2 * T - 1, self.num_heads, self.head_dim)  # [2T-1, H, d]
        scores = torch.einsum("bhtd,rhd->bhtr", q + self.pos_bias_v[None, :, None, :], p)
        # row r of the table is relative position T-1-r; (i, j) needs i-j, i.e. r = T-1-i+j
        idx = T - 1 - torch.arange(T, device=q.device)[:, None] + torch.arange(T, device=q.device)[None, :]
        return scores.gather(-1, idx.expand(*scores.shape[:2], T, T))

    def _relative_key_scores(self, q: torch.Tensor, T: int) -> torch.Tensor:
        """``q_i . e_{clip(j-i)}`` via one product with the few distinct embeddings: ``[B, H, T, T]``."""
        per_distance = torch.matmul(q, self.distance_embedding.weight.to(q.dtype).t())  # [B, H, T, L+R+1]
        pos = torch.arange(T, device=q.device)
        dist = (pos[None, :] - pos[:, None]).clamp(-self.left_max_position, self.right_max_position)
        idx = dist + self.left_max_position
        return per_distance.gather(-1, idx.expand(*per_distance.shape[:2], T, T))


class RelativePositionBuckets(nn.Module):
    """WavLM's (after T5's) bucketed relative position bias: ``T -> [H, T, T]``.

    Half the buckets for each direction; in each half, the first ``num_buckets // 4`` distances exactly,
    then logarithmically wider buckets up to ``max_distance``.
    """

    def __init__(self, num_heads: int, num_buckets: int = 320, max_distance: int = 800):
        super().__init__()
        self.num_buckets, self.max_distance = num_buckets, max_distance
        self.embedding = nn.Embedding(num_buckets, num_heads)

    def buckets(self, T: int, device=None) -> torch.Tensor:
        pos = torch.arange(T, device=device)
        rel = pos[None, :] - pos[:, None]  # key minus query
        half = self.num_buckets // 2
        bucket = (rel > 0).long() * half
        rel = rel.abs()
        exact = half // 2
        wide = (
            exact
            + (
                torch.log(rel.float().clamp_min(1) / exact) / math.log(self.max_distance / exact) * (half - exact)
            ).long()
        )
        return bucket + torch.where(rel < exact, rel, wide.clamp_max(half - 1))

    def forward(self, T: int) -> torch.Tensor:
        return self.embedding(self.buckets(T, self.embedding.weight.device)).permute(2, 0, 1)
