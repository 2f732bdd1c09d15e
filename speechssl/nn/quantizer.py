"""Gumbel-softmax vector quantizer (wav2vec 2.0, Baevski et al. 2020; w2v-BERT uses one group of 1024).

Each of ``G`` groups picks one of ``V`` learnt code vectors per frame with a straight-through
Gumbel-softmax: the forward pass uses the hard one-hot choice, the backward pass the soft
probabilities. The code vectors of the groups are concatenated. The temperature is annealed
per update, ``max(start * decay^step, end)``, from soft early choices to nearly hard ones.
"""

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError


@dataclass
class QuantizerOutput:
    quantized: torch.Tensor  # [N, code_dim] straight-through code vectors
    ids: torch.Tensor  # [N, G] chosen code per group, the one in ``quantized`` (no gradient)
    avg_probs: torch.Tensor  # [G, V] softmax (no Gumbel noise) averaged over the N frames
    code_perplexity: torch.Tensor  # exp(entropy) of the hard choices, summed over groups
    prob_perplexity: torch.Tensor  # exp(entropy) of avg_probs, summed over groups (what diversity pushes up)
    onehot: torch.Tensor = None  # [N, G, V] the straight-through choice (carries gradient to the code logits)
    codes_used: torch.Tensor = None  # distinct codes chosen, summed over groups


def perplexity(probs: torch.Tensor) -> torch.Tensor:
    """``probs [G, V]`` (rows sum to 1) -> sum over groups of ``exp(entropy)``: the effective number of codes."""
    return torch.exp(-(probs * torch.log(probs + 1e-7)).sum(-1)).sum()


class GumbelVectorQuantizer(nn.Module):
    """``x [N, input_dim]`` -> :class:`QuantizerOutput` with ``G`` groups of ``V`` codes.

    Args:
        code_dim: width of the concatenated code vector (``code_dim / G`` per group).
        temperature: ``(start, end, decay)`` of the Gumbel temperature; wav2vec 2.0 uses (2, 0.5, 0.999995).
    """

    def __init__(
        self,
        input_dim: int,
        num_codes: int = 1024,
        groups: int = 1,
        code_dim: int = 256,
        temperature: Sequence[float] = (2.0, 0.5, 0.999995),
    ):
        super().__init__()
        if code_dim % groups:
            raise InputError(f"code_dim {code_dim} is not divisible by groups {groups}")
        if len(temperature) != 3 or not temperature[0] >= temperature[1] > 0 or not 0 < temperature[2] <= 1:
            raise InputError(f"temperature must be (start >= end > 0, 0 < decay <= 1), got {list(temperature)}")
        self.num_codes, self.groups, self.code_dim = num_codes, groups, code_dim
        self.start_temp, self.end_temp, self.temp_decay = (float(t) for t in temperature)
        self.temperature = self.start_temp
        self.weight_proj = nn.Linear(input_dim, groups * num_codes)
        nn.init.normal_(self.weight_proj.weight, mean=0.0, std=1.0)  # fairseq: spread-out initial choices
        nn.init.zeros_(self.weight_proj.bias)
        self.codevectors = nn.Parameter(torch.empty(groups * num_codes, code_dim // groups).uniform_())

    def set_num_updates(self, step: int) -> None:
        self.temperature = max(self.start_temp * self.temp_decay**step, self.end_temp)

    def forward(self, x: torch.Tensor) -> QuantizerOutput:
        N = x.shape[0]
        logits = self.weight_proj(x).float().view(N, self.groups, self.num_codes)
        hard = F.one_hot(logits.argmax(-1), self.num_codes).to(logits.dtype)
        avg_probs = (
            torch.softmax(logits, -1).mean(0)
            if N
            else logits.new_full((self.groups, self.num_codes), 1.0 / self.num_codes)
        )
        code_ppl = perplexity(hard.mean(0)) if N else logits.new_zeros(())
        codes_used = (hard.sum(0) > 0).sum().float()
        if self.training:
            onehot = F.gumbel_softmax(logits, tau=self.temperature, hard=True, dim=-1)
        else:
            onehot = hard
        # the code each frame really takes: in training the Gumbel draw, not the noise-free argmax (fairseq's
        # and fairseq2's targets; the MLM target and the "distractor equals positive" test must use it)
        ids = onehot.detach().argmax(-1)
        codes = self.codevectors.view(self.groups, self.num_codes, -1)
        quantized = torch.einsum("ngv,gvd->ngd", onehot.to(codes.dtype), codes).reshape(N, self.code_dim)
        return QuantizerOutput(
            quantized, ids.detach(), avg_probs, code_ppl.detach(), perplexity(avg_probs), onehot, codes_used
        )

    def diversity_loss(self, out: QuantizerOutput) -> torch.Tensor:
        """``(GV - prob_perplexity) / GV``: 0 when every code is equally likely on average, near 1 when one is."""
        total = self.groups * self.num_codes
        return (total - out.prob_perplexity) / total
