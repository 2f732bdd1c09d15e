"""HuBERT's masked prediction of cluster targets (Hsu et al., 2021, Sec. III-B).

The encoder output goes through a projection (one ``final_dim`` slice per target set) and is
scored against every learnt label embedding by cosine similarity / temperature; cross-entropy
against the frame's cluster id, summed separately over masked and unmasked frames. Sums and
counts are returned, not means, so the caller can normalise over the *global* batch (what
makes a multi-process run match one process).
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

IGNORE = -100


def align_targets(labels: torch.Tensor, frames: int, label_rate: float, frame_rate: float) -> torch.Tensor:
    """Pick the label of each model frame: ``labels [B, L]`` at ``label_rate`` -> ``[B, frames]``.

    Frame ``i`` takes label ``floor(i * label_rate / frame_rate)`` (fairseq's ``forward_targets``),
    so 100 Hz MFCC labels feed a 50 Hz model by taking every other one; frames past an
    utterance's labels get ``IGNORE``.
    """
    ratio = label_rate / frame_rate
    idx = (torch.arange(frames, device=labels.device) * ratio).long()
    out = torch.full((labels.shape[0], frames), IGNORE, dtype=labels.dtype, device=labels.device)
    inside = idx < labels.shape[1]
    out[:, inside] = labels[:, idx[inside]]
    return out


def cosine_logits(x: torch.Tensor, embeddings: torch.Tensor, temperature: float) -> torch.Tensor:
    """``x [N, D]`` against ``embeddings [C, D]``: ``[N, C]`` cosine similarity / temperature."""
    return F.normalize(x.float(), dim=-1) @ F.normalize(embeddings.float(), dim=-1).t() / temperature


def masked_prediction_sums(
    projected: torch.Tensor,
    label_embeddings: torch.Tensor,
    num_classes: Sequence[int],
    targets: List[torch.Tensor],
    mask: torch.Tensor,
    valid: torch.Tensor,
    temperature: float = 0.1,
) -> Dict[str, torch.Tensor]:
    """Loss and accuracy *sums* over all target sets.

    Args:
        projected: ``[B, T, K * final_dim]`` encoder output after ``final_proj`` (K target sets).
        label_embeddings: ``[sum(num_classes), final_dim]``.
        targets: K tensors ``[B, T]`` aligned to the frames (``IGNORE`` where unknown).
        mask: ``[B, T]`` True on masked frames; ``valid``: ``[B, T]`` True on real frames.

    Returns ``loss_m``, ``loss_u`` (summed cross-entropy), ``correct_m``, ``correct_u`` and the
    frame counts ``n_m``, ``n_u`` (each summed over target sets).
    """
    chunks = projected.chunk(len(num_classes), dim=-1)
    embeddings = label_embeddings.split(list(num_classes), dim=0)
    zero = projected.new_zeros((), dtype=torch.float32)
    out = {k: zero.clone() for k in ("loss_m", "loss_u", "correct_m", "correct_u", "n_m", "n_u")}
    for x, emb, tgt in zip(chunks, embeddings, targets):
        known = valid & (tgt != IGNORE)
        for tag, sel in (("m", known & mask), ("u", known & ~mask)):
            if not sel.any():
                continue
            logits = cosine_logits(x[sel], emb, temperature)
            y = tgt[sel]
            out[f"loss_{tag}"] = out[f"loss_{tag}"] + F.cross_entropy(logits, y, reduction="sum")
            out[f"correct_{tag}"] = out[f"correct_{tag}"] + (logits.argmax(-1) == y).sum().float()
            out[f"n_{tag}"] = out[f"n_{tag}"] + sel.sum().float()
    return out


def hubert_loss(
    sums: Dict[str, torch.Tensor],
    totals: Optional[Dict[str, torch.Tensor]] = None,
    *,
    pred_masked_weight: float = 1.0,
    pred_nomask_weight: float = 0.0,
    feature_pen_weight: float = 10.0,
) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
    """HuBERT's loss from :func:`masked_prediction_sums` plus ``pen`` (the CNN output's summed per-frame mean
    square) and ``frames``, as fairseq's ``HubertCriterion`` forms it: both prediction terms over its
    ``sample_size`` (the masked frames, plus the unmasked ones when ``pred_nomask_weight > 0``), plus
    ``feature_pen_weight`` times the mean square.

    ``totals``: the same sums over the whole (multi-process) batch, which set the normalisers; ``sums``
    when None. Returns ``(loss from sums, parts from totals)``: ``loss``, ``loss_m``, ``loss_u``, ``acc_m``,
    ``acc_u``, ``feature_pen``.
    """
    totals = sums if totals is None else totals
    n_m, n_u, n_f = (totals[k].clamp(min=1) for k in ("n_m", "n_u", "frames"))
    norm = (n_m if pred_masked_weight > 0 else 0) + (n_u if pred_nomask_weight > 0 else 0)
    norm = norm if torch.is_tensor(norm) else n_m

    def combine(s):
        return (pred_masked_weight * s["loss_m"] + pred_nomask_weight * s["loss_u"]) / norm + feature_pen_weight * s[
            "pen"
        ] / n_f

    parts = {
        "loss": combine(totals),
        "loss_m": totals["loss_m"] / n_m,
        "loss_u": totals["loss_u"] / n_u,
        "acc_m": totals["correct_m"] / n_m,
        "acc_u": totals["correct_u"] / n_u,
        "feature_pen": totals["pen"] / n_f,
    }
    return combine(sums), parts


def hubert_sums(
    model,
    feats: torch.Tensor,
    frames: torch.Tensor,
    valid: torch.Tensor,
    mask: torch.Tensor,
    labels: Sequence[torch.Tensor],
    label_rates: Sequence[float],
    frame_rate: float,
    temperature: float = 0.1,
) -> Dict[str, torch.Tensor]:
    """One HuBERT step's sums on a :class:`~speechssl.models.hubert.HubertPretrainModel` from its frontend
    output ``feats [B, T', C]`` (``frames [B]`` valid, ``valid``/``mask [B, T']``) and ``labels`` (one
    ``[B, L]`` per target set at ``label_rates``): :func:`masked_prediction_sums` plus ``pen`` (the summed
    per-frame mean square of ``feats``, fairseq's feature penalty before its mean) and ``frames``."""
    pen = (feats.float().pow(2).mean(-1) * valid).sum()
    projected, _ = model(feats, frames, time_mask=mask)
    targets = [align_targets(lab, feats.shape[1], rate, frame_rate) for lab, rate in zip(labels, label_rates)]
    sums = masked_prediction_sums(
        projected, model.heads.label_embeddings, model.heads.num_classes, targets, mask, valid, temperature
    )
    sums["pen"], sums["frames"] = pen, valid.sum().float()
    return sums
