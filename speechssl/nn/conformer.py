"""Conformer encoder (Gulati et al. 2020), as wav2vec2-conformer and w2v-BERT use it.

Block: half-step FFN, MHSA, convolution module, half-step FFN, final layer norm. The convolution
module zeroes padded frames before its depthwise convolution, so a padded batch gives the same
valid frames as each utterance alone.
"""

from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from .attention import MultiheadSelfAttention
from .transformer import FeedForward
from .utils import activation, run_layers


class ConvolutionModule(nn.Module):
    """``LN -> pointwise (2D) -> GLU -> depthwise -> BN|LN -> activation -> pointwise -> dropout``.

    Args:
        norm: ``"batch_norm"`` (Conformer paper, wav2vec2-conformer) or ``"layer_norm"`` (w2v-BERT 2.0).
        causal: left-only padding of the depthwise convolution (w2v-BERT 2.0); otherwise "same".
    """

    def __init__(
        self,
        dim: int,
        kernel_size: int = 31,
        norm: str = "batch_norm",
        causal: bool = False,
        activation_name: str = "swish",
        dropout: float = 0.0,
        bias: bool = False,
        eps: float = 1e-5,
    ):
        super().__init__()
        if not causal and kernel_size % 2 == 0:
            raise InputError(f"a non-causal depthwise kernel must be odd for 'same' padding, got {kernel_size}")
        if norm not in ("batch_norm", "layer_norm"):
            raise InputError(f"conv module norm must be batch_norm or layer_norm, got {norm!r}")
        self.layer_norm = nn.LayerNorm(dim, eps=eps)
        self.pointwise_conv1 = nn.Conv1d(dim, 2 * dim, 1, bias=bias)
        self.depthwise_conv = nn.Conv1d(dim, dim, kernel_size, groups=dim, bias=bias)
        self.depthwise_norm = nn.BatchNorm1d(dim) if norm == "batch_norm" else nn.LayerNorm(dim, eps=eps)
        self.activation = activation(activation_name)
        self.pointwise_conv2 = nn.Conv1d(dim, dim, 1, bias=bias)
        self.dropout = nn.Dropout(dropout)
        self.padding = (kernel_size - 1, 0) if causal else ((kernel_size - 1) // 2,) * 2

    def forward(self, x: torch.Tensor, valid: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``x [B, T, D]`` -> ``[B, T, D]``."""
        x = self.layer_norm(x)
        if valid is not None:
            x = x * valid[..., None].to(x.dtype)
        x = F.glu(self.pointwise_conv1(x.transpose(1, 2)), dim=1)
        x = self.depthwise_conv(F.pad(x, self.padding))
        if isinstance(self.depthwise_norm, nn.LayerNorm):
            x = self.depthwise_norm(x.transpose(1, 2)).transpose(1, 2)
        else:
            x = self.depthwise_norm(x)
        x = self.pointwise_conv2(self.activation(x))
        return self.dropout(x).transpose(1, 2)


class ConformerLayer(nn.Module):
    def __init__(
        self,
        dim: int,
        num_heads: int,
        ffn_dim: int,
        depthwise_kernel: int = 31,
        conv_norm: str = "batch_norm",
        causal_conv: bool = False,
        dropout: float = 0.1,
        attention_dropout: float = 0.1,
        activation_dropout: float = 0.0,
        activation_name: str = "swish",
        eps: float = 1e-5,
        position: str = "rel_pos",
        **position_kwargs,
    ):
        super().__init__()
        self.ffn1_norm = nn.LayerNorm(dim, eps=eps)
        self.ffn1 = FeedForward(dim, ffn_dim, activation_name, activation_dropout, dropout)
        self.self_attn_norm = nn.LayerNorm(dim, eps=eps)
        self.self_attn = MultiheadSelfAttention(dim, num_heads, attention_dropout, position, **position_kwargs)
        self.self_attn_dropout = nn.Dropout(dropout)
        self.conv_module = ConvolutionModule(
            dim, depthwise_kernel, conv_norm, causal_conv, activation_name, dropout, eps=eps
        )
        self.ffn2_norm = nn.LayerNorm(dim, eps=eps)
        self.ffn2 = FeedForward(dim, ffn_dim, activation_name, activation_dropout, dropout)
        self.final_norm = nn.LayerNorm(dim, eps=eps)

    def forward(self, x: torch.Tensor, valid: Optional[torch.Tensor] = None) -> torch.Tensor:
        x = x + 0.5 * self.ffn1(self.ffn1_norm(x))
        x = x + self.self_attn_dropout(self.self_attn(self.self_attn_norm(x), valid))
        x = x + self.conv_module(x, valid)
        x = x + 0.5 * self.ffn2(self.ffn2_norm(x))
        return self.final_norm(x)


class ConformerEncoder(nn.Module):
    """``num_layers`` :class:`ConformerLayer`, optionally followed by a final layer norm.

    ``forward(x [B, T, D], valid [B, T]) -> (hidden_states, last)`` as :class:`TransformerEncoder`.
    """

    def __init__(
        self,
        dim: int,
        num_layers: int,
        num_heads: int,
        ffn_dim: int,
        depthwise_kernel: int = 31,
        conv_norm: str = "batch_norm",
        causal_conv: bool = False,
        dropout: float = 0.1,
        attention_dropout: float = 0.1,
        activation_dropout: float = 0.0,
        activation_name: str = "swish",
        layerdrop: float = 0.0,
        eps: float = 1e-5,
        position: str = "rel_pos",
        final_layer_norm: bool = True,
        **position_kwargs,
    ):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(
            ConformerLayer(
                dim,
                num_heads,
                ffn_dim,
                depthwise_kernel,
                conv_norm,
                causal_conv,
                dropout,
                attention_dropout,
                activation_dropout,
                activation_name,
                eps,
                position,
                **position_kwargs,
            )
            for _ in range(num_layers)
        )
        self.layer_norm = nn.LayerNorm(dim, eps=eps) if final_layer_norm else None
        self.layerdrop = layerdrop

    def forward(
        self, x: torch.Tensor, valid: Optional[torch.Tensor] = None, num_layers: Optional[int] = None
    ) -> Tuple[List[torch.Tensor], torch.Tensor]:
        if valid is not None:
            x = x * valid[..., None].to(x.dtype)
        x = self.dropout(x)
        hidden_states = run_layers(self.layers[:num_layers], x, valid, self.layerdrop, self.training)
        x = hidden_states[-1]
        last = self.layer_norm(x) if self.layer_norm is not None else x
        return hidden_states, last
