"""Devices from what a user writes: ``auto`` (a GPU when there is one), ``cpu``, ``cuda``, ``cuda:1``, ``mps``."""

from __future__ import annotations

import torch

from ..errors import InputError


def resolve_device(spec: str = "auto") -> torch.device:
    """``auto`` -> ``cuda`` when available, else ``cpu``; a named accelerator that is absent is an error."""
    spec = str(spec or "auto")
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError as e:
        raise InputError(f"device {spec!r}: {e}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {spec!r}: no CUDA device here (use --device auto or cpu)")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise InputError(f"device {spec!r}: only {torch.cuda.device_count()} CUDA devices here")
    return device


__all__ = ["resolve_device"]
