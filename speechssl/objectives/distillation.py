"""LightHuBERT's distillation loss (Wang et al., 2022): the student's prediction against the teacher's averaged
layers, L1 or cosine, summed over the scored frames (the caller normalises over the global batch)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import InputError
from ..hub import load_upstream
from ..models.teacher import LayerAverage
from ..nn.masking import MaskingConfig


@dataclass
class DistillObjectiveConfig(MaskingConfig):  # the student's input masking: 0.8 of frames in spans of 10 (HuBERT's)
    stage: int = 1  # 1: full-size student; 2: once-for-all (a subnet per step)
    sampling: str = "random"  # stage 2: random | sandwich (max + min + random each step)
    target_layers: int = 8  # targets: the average of the teacher's last K layer outputs
    target_norm: str = "none"  # none | layer_norm: each layer normalised (no affine) before averaging, as
    # data2vec; for pre-norm teachers, whose residual stream grows layer by layer
    loss: str = "l1"  # l1 | cosine
    loss_frames: str = "masked"  # masked | all (valid frames)
    feature_grad_mult: float = 0.1


def load_teacher(spec: str, k: int, norm: str = "none") -> LayerAverage:
    """The frozen teacher ``spec`` (any upstream) seen through the average of its last ``k`` layers."""
    teacher = load_upstream(spec, drop_heads=True).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return LayerAverage(teacher, k, spec, norm)


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
        raise InputError(
            f"{name}: {T} frames for a student output of {student_frames}; the teacher must run at "
            f"the student's frame rate"
        )
    if T >= student_frames:
        return target[:, :student_frames]
    return torch.nn.functional.pad(target, (0, 0, 0, student_frames - T))
