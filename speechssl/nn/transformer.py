"""The wav2vec 2.0 / HuBERT Transformer encoder: conv positional embedding + post- or pre-norm layers."""

from typing import List, Optional, Tuple

import torch
from torch import nn

from .attention import MultiheadSelfAttention, RelativePositionBuckets
from .utils import activation, run_layers


class ConvPositionalEmbedding(nn.Module):
    """Grouped, weight-normalised conv over time whose GELU output is added to the input.

    ``[B, T, D] -> [B, T, D]``; an even kernel drops its last output frame ("same" length).
    """

    def __init__(self, dim: int, kernel_size: int = 128, groups: int = 16):
        super().__init__()
        conv = nn.Conv1d(dim, dim, kernel_size, padding=kernel_size // 2, groups=groups)
        self.conv = nn.utils.parametrizations.weight_norm(conv, name="weight", dim=2)
        self.trim = 1 if kernel_size % 2 == 0 else 0
        self.activation = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x.transpose(1, 2))
        if self.trim:
            y = y[..., : -self.trim]
        return self.activation(y).transpose(1, 2)


class _PlainConvLayer(nn.Module):
    """Conv (no weight norm) -> non-affine layer norm -> GELU, ``[B, D, T] -> [B, D, T]``."""

    def __init__(self, dim: int, kernel_size: int, groups: int):
        super().__init__()
        self.conv = nn.Conv1d(dim, dim, kernel_size, padding=kernel_size // 2, groups=groups)
        self.trim = 1 if kernel_size % 2 == 0 else 0
        self.layer_norm = nn.LayerNorm(dim, elementwise_affine=False)
        self.activation = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        if self.trim:
            y = y[..., : -self.trim]
        return self.activation(self.layer_norm(y.transpose(1, 2)).transpose(1, 2))


class StackedConvPositionalEmbedding(nn.Module):
    """data2vec-audio's positional embedding: ``depth`` plain convs, each normalised and GELU'd.

    ``[B, T, D] -> [B, T, D]``. Padding frames are zeroed before every conv, so a padded utterance gets
    the values it gets alone (the reference zeroes them only before the first).
    """

    def __init__(self, dim: int, kernel_size: int = 19, groups: int = 16, depth: int = 5):
        super().__init__()
        self.layers = nn.ModuleList(_PlainConvLayer(dim, kernel_size, groups) for _ in range(depth))

    def forward(self, x: torch.Tensor, valid: Optional[torch.Tensor] = None) -> torch.Tensor:
        y = x.transpose(1, 2)
        keep = None if valid is None else valid[:, None, :].to(x.dtype)
        for layer in self.layers:
            y = layer(y if keep is None else y * keep)
        return y.transpose(1, 2)


class FeedForward(nn.Module):
    """``Linear -> activation -> dropout -> Linear -> dropout``."""

    def __init__(
        self,
        dim: int,
        hidden_dim: int,
        activation_name: str = "gelu",
        activation_dropout: float = 0.0,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.activation = activation(activation_name)
        self.activation_dropout = nn.Dropout(activation_dropout)
        self.fc2 = nn.Linear(hidden_dim, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.fc2(self.activation_dropout(self.activation(self.fc1(x)))))


class TransformerLayer(nn.Module):
    """One encoder layer; ``layer_norm_first`` selects pre-norm (large models) over post-norm (base)."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        ffn_dim: int,
        dropout: float = 0.1,
        attention_dropout: float = 0.1,
        activation_dropout: float = 0.0,
        activation_name: str = "gelu",
        layer_norm_first: bool = False,
        eps: float = 1e-5,
        position: str = "none",
        head_dim: Optional[int] = None,
        **position_kwargs,
    ):
        super().__init__()
        self.self_attn = MultiheadSelfAttention(
            dim, num_heads, attention_dropout, position, head_dim=head_dim, **position_kwargs
        )
        self.self_attn_norm = nn.LayerNorm(dim, eps=eps)
        self.dropout = nn.Dropout(dropout)
        self.ffn = FeedForward(dim, ffn_dim, activation_name, activation_dropout, dropout)
        self.ffn_norm = nn.LayerNorm(dim, eps=eps)
        self.layer_norm_first = layer_norm_first

    def forward(
        self, x: torch.Tensor, valid: Optional[torch.Tensor] = None, position_bias: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        if self.layer_norm_first:
            x = x + self.dropout(self.self_attn(self.self_attn_norm(x), valid, position_bias))
            return x + self.ffn(self.ffn_norm(x))
        x = self.self_attn_norm(x + self.dropout(self.self_attn(x, valid, position_bias)))
        return self.ffn_norm(x + self.ffn(x))


class TransformerEncoder(nn.Module):
    """Conv positional embedding, then ``num_layers`` :class:`TransformerLayer`.

    ``forward(x [B, T, D], valid [B, T]) -> (hidden_states, last)``: ``hidden_states`` holds the
    layer input and every layer's output (``num_layers + 1`` tensors, counted as Hugging Face and
    s3prl count them); ``last`` is the encoder output (pre-norm models apply the final layer
    norm to it, not to ``hidden_states[-1]``).

    ``layer_heads`` / ``layer_ffn_dims`` give each layer its own head count and FFN width (LightHuBERT
    subnets); ``head_dim`` fixes the head width instead of ``dim // num_heads``. ``pos_conv_layers`` > 0
    stacks that many plain convs (data2vec-audio) instead of one weight-normalised conv;
    ``position="gated_bucket"`` adds WavLM's shared relative bias (``num_buckets``, ``max_distance``).
    """

    def __init__(
        self,
        dim: int,
        num_layers: int,
        num_heads: int,
        ffn_dim: int,
        pos_conv_kernel: int = 128,
        pos_conv_groups: int = 16,
        layer_norm_first: bool = False,
        dropout: float = 0.1,
        attention_dropout: float = 0.1,
        activation_dropout: float = 0.0,
        activation_name: str = "gelu",
        layerdrop: float = 0.0,
        eps: float = 1e-5,
        position: str = "none",
        head_dim: Optional[int] = None,
        layer_heads: Optional[List[int]] = None,
        layer_ffn_dims: Optional[List[int]] = None,
        pos_conv_layers: int = 0,
        num_buckets: int = 320,
        max_distance: int = 800,
        **position_kwargs,
    ):
        super().__init__()
        layer_heads = layer_heads or [num_heads] * num_layers
        layer_ffn_dims = layer_ffn_dims or [ffn_dim] * num_layers
        self.pos_conv = None
        if pos_conv_kernel and pos_conv_layers:
            self.pos_conv = StackedConvPositionalEmbedding(dim, pos_conv_kernel, pos_conv_groups, pos_conv_layers)
        elif pos_conv_kernel:
            self.pos_conv = ConvPositionalEmbedding(dim, pos_conv_kernel, pos_conv_groups)
        self.relative_bias = (
            RelativePositionBuckets(num_heads, num_buckets, max_distance) if position == "gated_bucket" else None
        )
        self.layer_norm = nn.LayerNorm(dim, eps=eps)
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(
            TransformerLayer(
                dim,
                heads,
                ffn,
                dropout,
                attention_dropout,
                activation_dropout,
                activation_name,
                layer_norm_first,
                eps,
                position,
                head_dim,
                **position_kwargs,
            )
            for heads, ffn in zip(layer_heads, layer_ffn_dims)
        )
        self.layer_norm_first = layer_norm_first
        self.layerdrop = layerdrop

    def forward(
        self, x: torch.Tensor, valid: Optional[torch.Tensor] = None, num_layers: Optional[int] = None
    ) -> Tuple[List[torch.Tensor], torch.Tensor]:
        if valid is not None:
            x = x * valid[..., None].to(x.dtype)
        if isinstance(self.pos_conv, StackedConvPositionalEmbedding):
            x = x + self.pos_conv(x, valid)
        elif self.pos_conv is not None:
            x = x + self.pos_conv(x)
        if not self.layer_norm_first:
            x = self.layer_norm(x)
        x = self.dropout(x)
        bias = self.relative_bias(x.shape[1]) if self.relative_bias is not None else None
        hidden_states = run_layers(
            self.layers[:num_layers], x, valid, self.layerdrop, self.training, position_bias=bias
        )
        x = hidden_states[-1]
        last = self.layer_norm(x) if self.layer_norm_first else x
        return hidden_states, last
