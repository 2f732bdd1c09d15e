"""HuBERT and wav2vec 2.0 encoder configs (waveform CNN + Transformer), and HuBERT's pretraining model
(the encoder and its prediction heads, as torchaudio's ``HuBERTPretrainModel``).

Base/large follow the fairseq recipes (Hsu et al. 2021, Baevski et al. 2020). ``hubert_small``
is ours: the same 320x CNN and post-norm Transformer, narrow and shallow enough to pretrain on a
CPU on the mini corpus.
"""

from typing import Dict, Optional, Sequence, Tuple

import torch
from torch import nn

from ..errors import InputError
from .encoder import EncoderConfig, SpeechEncoder
from .registry import register
from .upstream import UpstreamOutput


@register("hubert_base")
def hubert_base() -> EncoderConfig:
    return EncoderConfig(family="hubert", layerdrop=0.05, feature_dropout=0.1)


@register("hubert_large")
def hubert_large() -> EncoderConfig:
    return EncoderConfig(
        family="hubert",
        extractor_mode="layer_norm",
        conv_bias=True,
        hidden_size=1024,
        num_layers=24,
        num_heads=16,
        ffn_dim=4096,
        layer_norm_first=True,
        layerdrop=0.0,
        feature_dropout=0.0,
    )


@register("hubert_small")
def hubert_small() -> EncoderConfig:
    conv = [[256, 10, 5]] + [[256, 3, 2]] * 4 + [[256, 2, 2]] * 2
    return EncoderConfig(
        family="hubert",
        conv_layers=conv,
        hidden_size=256,
        num_layers=6,
        num_heads=4,
        ffn_dim=1024,
        pos_conv_kernel=64,
        pos_conv_groups=16,
        layerdrop=0.0,
        feature_dropout=0.1,
    )


@register("wav2vec2_base")
def wav2vec2_base() -> EncoderConfig:
    return EncoderConfig(family="wav2vec2", layerdrop=0.05, feature_dropout=0.1)


@register("wav2vec2_large_lv60")
def wav2vec2_large_lv60() -> EncoderConfig:
    return EncoderConfig(
        family="wav2vec2",
        extractor_mode="layer_norm",
        conv_bias=True,
        hidden_size=1024,
        num_layers=24,
        num_heads=16,
        ffn_dim=4096,
        layer_norm_first=True,
    )


@register("wav2vec2_conformer_base")
def wav2vec2_conformer_base() -> EncoderConfig:
    """fairseq's ``wav2vec2_conformer_base_librispeech.yaml``: the Base CNN and 12 Conformer blocks of 768
    (espnet relative-position attention, depthwise kernel 31, swish)."""
    return EncoderConfig(
        family="wav2vec2",
        encoder="conformer",
        activation="swish",
        pos_conv_kernel=0,
        position="rel_pos",
        depthwise_kernel=31,
        layerdrop=0.05,
        feature_dropout=0.1,
    )


@register("wav2vec2_conformer_large_rel_pos")
def wav2vec2_conformer_large() -> EncoderConfig:
    return EncoderConfig(
        family="wav2vec2",
        extractor_mode="layer_norm",
        conv_bias=True,
        encoder="conformer",
        hidden_size=1024,
        num_layers=24,
        num_heads=16,
        ffn_dim=4096,
        activation="swish",
        pos_conv_kernel=0,
        position="rel_pos",
        depthwise_kernel=31,
    )


class HubertPretrainHeads(nn.Module):
    """HuBERT's prediction heads: a projection of the encoder output to one ``final_dim`` slice per target
    set, and one embedding per cluster of every target set (fairseq's ``final_proj``, ``label_embs_concat``).

    Args:
        hidden_size: the encoder's width.
        num_classes: the codebook size of each target set.
        final_dim: the width of the space targets are predicted in.
    """

    kind = "hubert"

    def __init__(self, hidden_size: int, num_classes: Sequence[int], final_dim: int = 256):
        super().__init__()
        self.num_classes, self.final_dim = [int(n) for n in num_classes], int(final_dim)
        self.final_proj = nn.Linear(hidden_size, final_dim * len(self.num_classes))
        self.label_embeddings = nn.Parameter(torch.empty(sum(self.num_classes), final_dim).uniform_())

    def spec(self) -> Dict:
        """What rebuilds these heads (saved beside their weights)."""
        return {"kind": self.kind, "num_classes": self.num_classes, "final_dim": self.final_dim}

    @classmethod
    def from_spec(cls, spec: Dict, hidden_size: int) -> "HubertPretrainHeads":
        return cls(hidden_size, spec["num_classes"], spec["final_dim"])

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """``[B, T, D]`` encoder output -> ``[B, T, K * final_dim]``, the space of the label embeddings."""
        return self.final_proj(hidden)


class HubertPretrainModel(nn.Module):
    """An encoder and HuBERT's heads: what masked prediction trains, as torchaudio's ``HuBERTPretrainModel``.

    ``forward(feats, frames, time_mask)`` runs the encoder from its frontend's output with the masked frames
    replaced by the mask embedding, and returns ``(projected [B, T', K * final_dim], UpstreamOutput)``.
    """

    def __init__(self, encoder: SpeechEncoder, heads: HubertPretrainHeads):
        super().__init__()
        self.encoder, self.heads = encoder, heads

    @classmethod
    def from_encoder(
        cls, encoder: SpeechEncoder, num_classes: Optional[Sequence[int]] = None, final_dim: int = 256
    ) -> "HubertPretrainModel":
        """New heads of the given sizes, or those the encoder was imported or loaded with
        (``encoder.pretraining_heads``, from a fairseq checkpoint or an exported folder)."""
        carried = getattr(encoder, "pretraining_heads", None)
        if num_classes is None:
            if not carried or carried[0].get("kind") != HubertPretrainHeads.kind:
                raise InputError(
                    "no HuBERT heads came with this encoder (import a HuBERT checkpoint with its "
                    "heads, or give num_classes for new ones)"
                )
            heads = HubertPretrainHeads.from_spec(carried[0], encoder.hidden_size)
            heads.load_state_dict(carried[1])
        else:
            heads = HubertPretrainHeads(encoder.hidden_size, num_classes, final_dim)
        return cls(encoder, heads)

    def forward(
        self, feats: torch.Tensor, frames: torch.Tensor, time_mask: Optional[torch.Tensor] = None
    ) -> Tuple[torch.Tensor, UpstreamOutput]:
        out = self.encoder.forward_features(feats, frames, time_mask=time_mask)
        return self.heads(out.last_hidden_state), out
