"""Small helpers shared by the building blocks: length masks and activations."""

from typing import Optional

import torch
from torch import nn

from ..errors import InputError


def lengths_to_mask(lengths: torch.Tensor, max_len: Optional[int] = None) -> torch.Tensor:
    """``lengths [B]`` -> ``valid [B, max_len]`` bool, True on real frames."""
    max_len = int(lengths.max()) if max_len is None else max_len
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def conv_out_length(lengths: torch.Tensor, kernel: int, stride: int, padding: int = 0) -> torch.Tensor:
    """Frames a 1-D convolution keeps from ``lengths`` (no dilation)."""
    return torch.div(lengths + 2 * padding - kernel, stride, rounding_mode="floor") + 1


def run_layers(layers, x: torch.Tensor, valid: Optional[torch.Tensor], layerdrop: float, training: bool, **shared):
    """Apply ``layers`` in turn (each skipped with probability ``layerdrop`` in training); ``shared``
    keyword arguments that are not None go to every layer (a position bias computed once).

    Returns the input and every layer's output: ``len(layers) + 1`` tensors; a dropped layer
    repeats its input, so indices keep their meaning.
    """
    shared = {k: v for k, v in shared.items() if v is not None}
    hidden_states = [x]
    for layer in layers:
        if not (training and layerdrop > 0 and torch.rand(()) < layerdrop):
            x = layer(x, valid, **shared)
        hidden_states.append(x)
    return hidden_states


_ACTIVATIONS = {
    "gelu": nn.GELU,
    "relu": nn.ReLU,
    "swish": nn.SiLU,
    "silu": nn.SiLU,
    "gelu_new": lambda: nn.GELU(approximate="tanh"),
    "tanh": nn.Tanh,
}


def activation(name: str) -> nn.Module:
    try:
        return _ACTIVATIONS[name]()
    except KeyError:
        raise InputError(f"unknown activation {name!r}; choose from {sorted(_ACTIVATIONS)}") from None


class GradMultiply(torch.autograd.Function):
    """Identity forward, gradient scaled by ``scale`` backward (fairseq's feature_grad_mult)."""

    @staticmethod
    def forward(ctx, x, scale):
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.scale, None
