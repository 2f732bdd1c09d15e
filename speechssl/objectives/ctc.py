"""CTC for fine-tuning: the loss per target token, and the check that every target fits its utterance.

CTC can only emit a target of ``U`` labels with ``r`` adjacent repeats in at least ``U + r`` frames (a blank
must separate repeats). An utterance below that has an infinite loss; ``zero_infinity`` keeps it from breaking
training but it then teaches nothing, so :func:`infeasible_targets` names such utterances before training.
"""

from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn.functional as F


def ctc_loss_per_token(
    log_probs: torch.Tensor, frames: torch.Tensor, targets: torch.Tensor, target_lengths: torch.Tensor, blank: int = 0
) -> torch.Tensor:
    """``log_probs [B, T, V]``, ``frames [B]``, padded ``targets [B, S]``: summed CTC over the batch's target
    tokens (an impossible utterance contributes 0, see the module doc)."""
    loss = F.ctc_loss(
        log_probs.transpose(0, 1), targets, frames, target_lengths, blank=blank, reduction="sum", zero_infinity=True
    )
    return loss / target_lengths.sum().clamp_min(1)


def frames_needed(target: Sequence[int]) -> int:
    """The fewest frames CTC can emit ``target`` in: its length plus one blank between each adjacent repeat."""
    return len(target) + sum(a == b for a, b in zip(target, target[1:]))


def infeasible_targets(targets: Dict[str, Sequence[int]], frames: Dict[str, int]) -> List[Tuple[str, int, int]]:
    """``(utt, frames needed, frames the model gives)`` of every utterance whose target cannot fit."""
    return [(u, frames_needed(t), frames[u]) for u, t in targets.items() if frames_needed(t) > frames[u]]
