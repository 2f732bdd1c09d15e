"""LightHuBERT's distillation loss (Wang et al., 2022): the student's prediction against the teacher's averaged
layers, L1 or cosine, summed over the scored frames (the caller normalises over the global batch)."""
from __future__ import annotations

import torch

from ..errors import InputError


def distillation_sums(pred: torch.Tensor, target: torch.Tensor, frames: torch.Tensor, loss: str) -> torch.Tensor:
    """Summed loss over ``frames [B, T]`` (bool) of ``pred`` and ``target [B, T, D]``: L1 averaged
    over dimensions, or ``1 - cosine``."""
    pred, target = pred[frames].float(), target[frames].float()
    if loss == "l1":
        return (pred - target).abs().mean(-1).sum()
    return (1 - torch.nn.functional.cosine_similarity(pred, target, dim=-1)).sum()


def align_frames(student_frames: int, target: torch.Tensor, name: str = "targets") -> torch.Tensor:
    """``target [B, T, D]`` cut or zero-padded to the student's ``T'`` (they may differ by a frame)."""
    T = target.shape[1]
    if abs(T - student_frames) > 2:
        raise InputError(f"{name}: {T} frames for a student output of {student_frames}; the teacher must run at "
                         f"the student's frame rate")
    if T >= student_frames:
        return target[:, :student_frames]
    return torch.nn.functional.pad(target, (0, 0, 0, student_frames - T))
