"""wav2vec 2.0's contrastive task (Baevski et al. 2020, Sec. 3.2), as w2v-BERT uses it, and the
masked-token cross-entropy of w2v-BERT's MLM module (Chung et al. 2021, Sec. 2).

Both work on the *masked* frames only, flattened to ``[N, ...]`` in utterance order, and return
sums and counts (not means) so the caller normalises over the global batch.
"""

from __future__ import annotations

from typing import Dict, Optional

import torch
import torch.nn.functional as F

from ..models.w2v_bert import W2vBertPretrainModel


def sample_negatives(utt_index: torch.Tensor, num_negatives: int, generator: Optional[torch.Generator] = None) -> tuple:
    """Distractors for each of ``N`` masked frames from the *other* masked frames of its utterance.

    Args:
        utt_index: ``[N]`` utterance of each frame, non-decreasing (row-major order of a ``[B, T]`` mask).
    Returns ``(negatives [N, K] indices into the N frames, usable [N] bool)``; frames whose utterance
    has a single masked frame have no distractor and are not usable. Sampling is with replacement.
    """
    N = utt_index.numel()
    device = utt_index.device
    if N == 0:
        return torch.zeros(0, num_negatives, dtype=torch.long, device=device), torch.zeros(
            0, dtype=torch.bool, device=device
        )
    counts = torch.bincount(utt_index)
    offsets = torch.cumsum(counts, 0) - counts
    first = offsets[utt_index]  # [N] index of the utterance's first masked frame
    m = counts[utt_index]  # [N] masked frames in the utterance
    pos = torch.arange(N, device=device) - first  # [N] position within the utterance
    u = torch.rand(N, num_negatives, device=device, generator=generator)
    r = (u * (m - 1).clamp_min(1)[:, None]).long()  # uniform over the m - 1 others
    r = r + (r >= pos[:, None]).long()  # skip the frame itself
    return first[:, None] + r, m > 1


def contrastive_sums(
    context: torch.Tensor,
    targets: torch.Tensor,
    utt_index: torch.Tensor,
    num_negatives: int = 100,
    temperature: float = 0.1,
    target_ids: Optional[torch.Tensor] = None,
    generator: Optional[torch.Generator] = None,
    negatives: Optional[torch.Tensor] = None,
) -> Dict[str, torch.Tensor]:
    """InfoNCE of ``context [N, D]`` against its own ``targets [N, D]`` among ``K`` distractors.

    Logits are cosine similarities / ``temperature``. A distractor equal to the positive is left
    out of the softmax, as in fairseq; with ``target_ids [N, G]`` "equal" means the same codes
    (straight-through vectors of one code can differ in the last bit). Returns ``loss`` (summed
    cross-entropy), ``correct`` (positive scored highest) and ``count`` (frames scored).
    ``negatives [N, K]``: distractor rows chosen elsewhere (a peer's sampling, for parity); drawn here if None.
    """
    if negatives is None:
        negatives, usable = sample_negatives(utt_index, num_negatives, generator)
    else:
        usable = torch.ones(len(negatives), dtype=torch.bool, device=negatives.device)
    context, negatives = context[usable], negatives[usable]
    positives = targets[usable]
    # index_select, not targets[negatives]: a frame is drawn as a distractor many times, and the backward of
    # advanced indexing adds those gradients with parallel atomic adds on the CPU, in an order that changes from
    # run to run (two runs of one config differed after 30 updates); index_select's backward adds them in order
    distractors = targets.index_select(0, negatives.reshape(-1)).view(*negatives.shape, targets.shape[-1])
    candidates = torch.cat([positives[:, None], distractors], dim=1).float()  # [n, 1 + K, D]
    logits = F.cosine_similarity(context.float()[:, None], candidates, dim=-1) / temperature
    if target_ids is not None:
        same = (target_ids[negatives] == target_ids[usable][:, None]).all(-1)
    else:
        same = (distractors == positives[:, None]).all(-1)
    logits[:, 1:] = logits[:, 1:].masked_fill(same, float("-inf"))
    zero = torch.zeros(len(logits), dtype=torch.long, device=logits.device)
    loss = F.cross_entropy(logits, zero, reduction="sum") if len(logits) else logits.new_zeros(())
    # a tie with a distractor counts as wrong (argmax would return the positive's index 0)
    correct = (logits[:, 0] > logits[:, 1:].max(-1).values).sum().float() if len(logits) else logits.new_zeros(())
    return {"loss": loss, "correct": correct, "count": logits.new_tensor(float(len(logits)))}


def token_prediction_sums(
    logits: torch.Tensor, ids: torch.Tensor, onehot: Optional[torch.Tensor] = None
) -> Dict[str, torch.Tensor]:
    """Cross-entropy of ``logits [N, G * V]`` against code ids ``[N, G]`` (one softmax per group).

    With ``onehot [N, G, V]`` (the quantizer's straight-through choice) the same value is computed as
    ``-sum(onehot * log_softmax)``, which also sends gradient into the code choice.
    Returns ``loss`` and ``correct`` summed over frames and groups, and ``count`` = ``N * G``.
    """
    N, G = ids.shape
    logits = logits.float().reshape(N * G, logits.shape[-1] // G)
    flat = ids.reshape(-1)
    if onehot is not None and N:
        loss = -(onehot.reshape(N * G, -1).float() * torch.log_softmax(logits, -1)).sum()
    else:
        loss = F.cross_entropy(logits, flat, reduction="sum") if N else logits.new_zeros(())
    correct = (logits.argmax(-1) == flat).sum().float()
    return {"loss": loss, "correct": correct, "count": logits.new_tensor(float(N * G))}


def wav2vec2_loss_sums(
    model: W2vBertPretrainModel,
    wavs: torch.Tensor,
    lengths: torch.Tensor,
    mask: torch.Tensor,
    negatives: torch.Tensor,
    temperature: float = 0.1,
    diversity_weight: float = 0.1,
) -> dict:
    """Our wav2vec 2.0 objective as transformers reports it (sums over the masked frames): ``contrastive``,
    ``diversity`` (``(GV - perplexity) / GV`` times the masked-frame count) and ``loss`` (their weighted sum).
    ``mask [B, T']`` and ``negatives [N, K]`` (rows of the masked frames) are given, so a peer can use the same."""
    feats, frames = model.encoder.frontend(wavs, lengths)
    out = model(feats, frames, mask)
    c = contrastive_sums(
        out.context,
        out.code_vectors,
        mask.nonzero()[:, 0],
        negatives.shape[1],
        temperature,
        target_ids=out.targets.ids,
        negatives=negatives,
    )
    diversity = model.quantizer.diversity_loss(out.targets) * mask.sum()
    return {"contrastive": c["loss"], "diversity": diversity, "loss": c["loss"] + diversity_weight * diversity}
