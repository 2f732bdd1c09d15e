"""Monotonic alignment search and the length regulator: how text2vec learns and uses durations.

Monotonic alignment search (Glow-TTS, Kim et al. 2020) finds the hard alignment of ``T_y`` frames to
``T_x`` tokens that maximises the summed log-likelihood, each token covering at least one frame,
in order: ``Q[i, j] = max(Q[i, j-1], Q[i-1, j-1]) + value[i, j]``, then a backtrack. The forward pass
is vectorised over the batch and the tokens; the loop runs over frames, the one sequential axis
(Glow-TTS and VITS run the same recursion in Cython).
"""

from __future__ import annotations

import torch

from ..errors import InputError


@torch.no_grad()
def monotonic_alignment_search(value: torch.Tensor, x_lengths: torch.Tensor, y_lengths: torch.Tensor) -> torch.Tensor:
    """``value [B, T_x, T_y]`` log-likelihoods -> hard path ``[B, T_x, T_y]`` of 0/1 (float, value's dtype).

    Every valid frame goes to exactly one token; token ``i`` covers a contiguous run of frames, runs in
    token order, each token at least one frame. Needs ``y_lengths >= x_lengths`` (else no such path).
    """
    B, Tx, Ty = value.shape
    if bool((y_lengths < x_lengths).any()):
        bad = int(torch.nonzero(y_lengths < x_lengths)[0, 0])
        raise InputError(
            f"monotonic alignment: item {bad} has {int(y_lengths[bad])} frames for "
            f"{int(x_lengths[bad])} tokens; every token needs at least one frame"
        )
    neg = torch.finfo(torch.float32).min / 4
    v = value.float()
    tok = torch.arange(Tx, device=value.device)
    q = torch.full((B, Tx), neg, device=value.device)
    choose_diag = torch.zeros(B, Tx, Ty, dtype=torch.bool, device=value.device)
    for j in range(Ty):
        if j == 0:
            new = torch.where(tok == 0, v[:, :, 0], torch.full_like(q, neg))
        else:
            prev = torch.cat([torch.full_like(q[:, :1], neg), q[:, :-1]], dim=1)  # Q[i-1, j-1]
            diag = prev > q
            choose_diag[:, :, j] = diag
            new = torch.maximum(q, prev) + v[:, :, j]
        # token i can be reached at frame j only if i <= j; frames past an item's end keep its last column
        new = torch.where(tok[None, :] <= j, new, torch.full_like(new, neg))
        active = (j < y_lengths)[:, None]
        q = torch.where(active, new, q)
    # backtrack from the last token at each item's last frame
    path = torch.zeros(B, Tx, Ty, dtype=value.dtype, device=value.device)
    i = (x_lengths - 1).clone()
    b_idx = torch.arange(B, device=value.device)
    for j in range(Ty - 1, -1, -1):
        active = j < y_lengths
        path[b_idx[active], i[active], j] = 1
        step_back = active & choose_diag[b_idx, i.clamp(min=0), j] & (i > 0)
        i = i - step_back.long()
    return path


def durations_from_path(path: torch.Tensor) -> torch.Tensor:
    """``[B, T_x, T_y]`` hard path -> frames per token ``[B, T_x]`` (long)."""
    return path.sum(-1).round().long()


def length_regulate(x: torch.Tensor, durations: torch.Tensor, max_frames: int | None = None):
    """Repeat token ``i`` of ``x [B, T_x, D]`` ``durations[b, i]`` times -> ``([B, T_y, D], frames [B])``.

    Gathers through the cumulative durations (``searchsorted``), no Python loop over items or frames.
    """
    durations = durations.clamp(min=0).long()
    ends = durations.cumsum(-1)  # [B, T_x]
    frames = ends[:, -1]
    T = int(frames.max()) if max_frames is None else max_frames
    t = torch.arange(T, device=x.device).expand(x.shape[0], T).contiguous()
    index = torch.searchsorted(ends, t, right=True).clamp(max=x.shape[1] - 1)  # token of each frame
    out = torch.gather(x, 1, index[..., None].expand(-1, -1, x.shape[-1]))
    valid = t < frames[:, None]
    return out * valid[..., None].to(out.dtype), frames.clamp(max=T)
