"""Task heads of the SUPERB protocol, on featurizer output ``[B, T, D]`` with ``lengths [B]``.

=====  ========================================  ===============
task   head                                      loss / metric
=====  ========================================  ===============
PR     linear frame classifier                   CTC / PER
ASR    2-layer BiLSTM + linear                   CTC / WER
KS/IC  projection, mean pool, linear             CE / accuracy
SID    projection, mean pool, linear             CE / accuracy
ASV    x-vector TDNN, statistics pooling         AM-softmax / EER
=====  ========================================  ===============
"""

from typing import List, Optional, Sequence

import torch
from torch import nn

from ..nn.rnn import padded_bilstm
from ..nn.spec_augment import SpecAugment, SpecAugmentConfig
from ..nn.utils import lengths_to_mask
from ..nn.weighted_sum import WeightedSum


class LinearCTC(nn.Module):
    """PR: one linear layer to the token logits (a linear probe of phonetic content)."""

    def __init__(self, input_dim: int, num_tokens: int):
        super().__init__()
        self.proj = nn.Linear(input_dim, num_tokens)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor):
        return self.proj(x), lengths


class BiLSTMCTC(nn.Module):
    """ASR: input projection, ``num_layers`` bidirectional LSTM layers, linear to token logits."""

    def __init__(
        self,
        input_dim: int,
        num_tokens: int,
        hidden: int = 1024,
        num_layers: int = 2,
        dropout: float = 0.2,
        project: int = 0,
    ):
        super().__init__()
        self.project = nn.Linear(input_dim, project) if project else nn.Identity()
        self.lstm = nn.LSTM(
            project or input_dim,
            hidden,
            num_layers=num_layers,
            bidirectional=True,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(2 * hidden, num_tokens)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor):
        x = self.project(x)
        if x.is_cuda:  # cuDNN's packed kernels are fast
            packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            y, _ = self.lstm(packed)
            y, _ = nn.utils.rnn.pad_packed_sequence(y, batch_first=True, total_length=x.shape[1])
        else:  # the same function, 70x faster on a CPU than its packed kernels (nn/rnn.py)
            y = padded_bilstm(self.lstm, x, lengths)
        return self.out(self.dropout(y)), lengths


def masked_mean(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Mean over valid frames: ``[B, T, D] -> [B, D]``."""
    valid = lengths_to_mask(lengths, x.shape[1])[..., None].to(x.dtype)
    return (x * valid).sum(1) / lengths.clamp_min(1)[:, None].to(x.dtype)


class MeanPoolLinear(nn.Module):
    """KS / IC / SID: frame projection, mean pooling over valid frames, linear classifier."""

    def __init__(self, input_dim: int, num_classes: int, project: int = 256):
        super().__init__()
        self.project = nn.Linear(input_dim, project) if project else nn.Identity()
        self.out = nn.Linear(project or input_dim, num_classes)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.out(masked_mean(self.project(x), lengths))


class IntentHead(nn.Module):
    """IC: the mean-pooled classifier with one softmax per intent slot (action, object, location)."""

    def __init__(self, input_dim: int, slot_sizes: Sequence[int], project: int = 256):
        super().__init__()
        self.slot_sizes = list(slot_sizes)
        self.pooled = MeanPoolLinear(input_dim, sum(self.slot_sizes), project)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> List[torch.Tensor]:
        return list(self.pooled(x, lengths).split(self.slot_sizes, dim=-1))


class XVector(nn.Module):
    """ASV: TDNN frame layers (contexts 5, 3, 3, 1, 1 with dilations 1, 2, 3, 1, 1), mean + std
    statistics pooling over valid frames, and an embedding layer (Snyder et al., 2018)."""

    def __init__(self, input_dim: int, channels: int = 512, pool_dim: int = 1500, embed_dim: int = 512):
        super().__init__()
        spec = [(5, 1), (3, 2), (3, 3), (1, 1), (1, 1)]
        layers, dim = [], input_dim
        for i, (k, d) in enumerate(spec):
            out = pool_dim if i == len(spec) - 1 else channels
            layers.append(
                nn.Sequential(
                    nn.Conv1d(dim, out, k, dilation=d, padding=d * (k - 1) // 2), nn.ReLU(), nn.BatchNorm1d(out)
                )
            )
            dim = out
        self.tdnn = nn.ModuleList(layers)
        self.embed = nn.Linear(2 * pool_dim, embed_dim)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``[B, T, D] -> [B, embed_dim]`` speaker embeddings."""
        valid = lengths_to_mask(lengths, x.shape[1])[:, None, :].to(x.dtype)
        h = x.transpose(1, 2)
        for layer in self.tdnn:
            h = layer(h * valid)  # zero padding so the contexts of the last valid frames see no junk
        n = lengths.clamp_min(1)[:, None].to(h.dtype)
        mean = (h * valid).sum(-1) / n
        var = ((h - mean[..., None]).pow(2) * valid).sum(-1) / n
        return self.embed(torch.cat([mean, var.clamp_min(1e-8).sqrt()], dim=-1))


class AMSoftmax(nn.Module):
    """Additive-margin softmax (Wang et al., 2018): ``s * (cos(theta_y) - m)`` for the target class."""

    def __init__(self, embed_dim: int, num_classes: int, margin: float = 0.4, scale: float = 30.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(num_classes, embed_dim) * 0.01)
        self.margin, self.scale = margin, scale

    def logits(self, emb: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(emb, dim=-1) @ nn.functional.normalize(self.weight, dim=-1).T

    def forward(self, emb: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        cos = self.logits(emb)
        margin = nn.functional.one_hot(target, cos.shape[-1]).to(cos.dtype) * self.margin
        return nn.functional.cross_entropy(self.scale * (cos - margin), target)


class SpeakerEmbedding(nn.Module):
    """x-vector network whose training loss is an AM-softmax over the training speakers (SUPERB ASV):
    ``forward(x [B, T, D], lengths) -> embeddings [B, embed]``; ``am_softmax(embeddings, speakers)`` is the loss."""

    def __init__(self, dim: int, num_speakers: int, channels: int, pool: int, embed: int, margin: float, scale: float):
        super().__init__()
        self.xvector = XVector(dim, channels, pool, embed)
        self.am_softmax = AMSoftmax(embed, num_speakers, margin, scale)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.xvector(x, lengths)


class DiarizationHead(nn.Module):
    """``(states [B, T, D], lengths) -> (logits [B, T, S], lengths)``: an LSTM, then one logit per speaker (SD)."""

    def __init__(self, dim: int, hidden: int, layers: int, speakers: int = 2):
        super().__init__()
        self.rnn = nn.LSTM(dim, hidden, layers, batch_first=True)
        self.out = nn.Linear(hidden, speakers)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor):
        # one direction: a frame's output depends only on the frames before it, so padding changes no valid frame
        # and the padded batch needs no packing (zeroed past each length, as pad_packed_sequence gives)
        y, _ = self.rnn(x)
        return self.out(y.masked_fill(~lengths_to_mask(lengths, x.shape[1])[..., None], 0.0)), lengths


class SuperbModel(nn.Module):
    """The learnt weighted sum of hidden states, SpecAugment on it while training (when configured:
    superb/official/asr and sf, as s3prl), then the task's head."""

    def __init__(self, num_states: int, layer_norm: bool, head: nn.Module, specaug: Optional[SpecAugmentConfig] = None):
        super().__init__()
        self.featurizer = WeightedSum(num_states, layer_norm)
        self.specaug = SpecAugment(specaug) if specaug is not None and specaug.enabled else None
        self.head = head

    def forward(self, states: torch.Tensor, lengths: torch.Tensor):
        x = self.featurizer(states)
        if self.specaug is not None:
            x = self.specaug(x, lengths)
        return self.head(x, lengths)
