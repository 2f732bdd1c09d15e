"""w2v-BERT encoder configs (fbank frontends + Conformer), and the w2v-BERT pretraining model (encoder,
quantizer, contrastive and MLM heads).

* ``w2v_bert_xl``: the paper's XL layout (Chung et al. 2021): log-mel, conv2d 4x subsampler,
  24 Conformer blocks of width 1024 (12 contrastive + 12 masked-prediction), the BigSSL
  Conformer-XL block (8 heads, FFN 4096, depthwise kernel 5, Transformer-XL relative positions),
  about 0.6B parameters.
* ``w2v_bert_xxl``: the paper's XXL: the XL block with 42 blocks (12 contrastive + 30 masked-prediction),
  about 1.0B parameters.
* ``w2v_bert_2``: Meta's w2v-BERT 2.0 (stacked fbank, 24 blocks, 16 heads, causal depthwise
  kernel 31 with layer norm, Shaw relative keys clipped to [-64, 8]) as transformers builds it.
* ``w2v_bert_small``: ours, the XL layout narrowed to train on a CPU.
"""

from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from ..nn.quantizer import GumbelVectorQuantizer, QuantizerOutput
from .encoder import EncoderConfig, SpeechEncoder
from .registry import register

# the paper splits the stack: the first CONTRASTIVE_LAYERS blocks form the contrastive module
CONTRASTIVE_LAYERS = {"w2v_bert_xl": 12, "w2v_bert_xxl": 12, "w2v_bert_small": 3, "w2v_bert_2": 12}


@register("w2v_bert_xl")
def w2v_bert_xl() -> EncoderConfig:
    return EncoderConfig(
        family="w2v_bert",
        frontend="fbank_conv2d",
        subsampler_channels=128,
        encoder="conformer",
        hidden_size=1024,
        num_layers=24,
        num_heads=8,
        ffn_dim=4096,
        activation="swish",
        pos_conv_kernel=0,
        position="rel_pos",
        depthwise_kernel=5,
        final_layer_norm=False,
    )


@register("w2v_bert_xxl")
def w2v_bert_xxl() -> EncoderConfig:
    cfg = w2v_bert_xl()
    cfg.num_layers = 42
    return cfg


@register("w2v_bert_2")
def w2v_bert_2() -> EncoderConfig:
    return EncoderConfig(
        family="w2v_bert",
        frontend="fbank_stack",
        encoder="conformer",
        hidden_size=1024,
        num_layers=24,
        num_heads=16,
        ffn_dim=4096,
        activation="swish",
        pos_conv_kernel=0,
        position="relative_key",
        depthwise_kernel=31,
        conv_norm="layer_norm",
        causal_conv=True,
        final_layer_norm=False,
        dropout=0.0,
        attention_dropout=0.0,
    )


@register("w2v_bert_small")
def w2v_bert_small() -> EncoderConfig:
    return EncoderConfig(
        family="w2v_bert",
        frontend="fbank_conv2d",
        subsampler_channels=32,
        encoder="conformer",
        hidden_size=256,
        num_layers=6,
        num_heads=4,
        ffn_dim=1024,
        activation="swish",
        pos_conv_kernel=0,
        position="rel_pos",
        depthwise_kernel=15,
        final_layer_norm=False,
    )


class W2vBertHeads(nn.Module):
    """The projections of the contrastive task (code vectors and context vectors into one ``final_dim`` space)
    and the MLM head (the codebook id of every masked frame, one softmax per codebook group)."""

    def __init__(self, hidden_size: int, code_dim: int, final_dim: int, num_targets: int):
        super().__init__()
        self.project_q = nn.Linear(code_dim, final_dim)
        self.project_context = nn.Linear(hidden_size, final_dim)
        self.mlm_head = nn.Linear(hidden_size, num_targets)


@dataclass
class W2vBertOutputs:
    """What one w2v-BERT step needs: the quantized targets of the masked frames, the contrastive module's
    context there (None when only MLM trains), the MLM logits there."""

    targets: QuantizerOutput
    context: Optional[torch.Tensor]
    code_vectors: Optional[torch.Tensor]
    mlm_logits: torch.Tensor


class W2vBertPretrainModel(nn.Module):
    """Encoder + quantizer + heads, as fairseq2's w2v-BERT model: the first ``contrastive_layers`` blocks
    learn by contrast against quantized targets, the whole stack predicts the targets' codebook ids."""

    def __init__(
        self, encoder: SpeechEncoder, quantizer: GumbelVectorQuantizer, heads: W2vBertHeads, contrastive_layers: int
    ):
        super().__init__()
        self.encoder, self.quantizer, self.heads = encoder, quantizer, heads
        self.contrastive_layers = contrastive_layers

    def forward(
        self,
        feats: torch.Tensor,
        frames: torch.Tensor,
        mask: torch.Tensor,
        masked_input: Optional[torch.Tensor] = None,
        contrastive: bool = True,
    ) -> W2vBertOutputs:
        """``feats [B, T, C]`` frontend output with ``frames [B]`` valid, ``mask [B, T]`` the masked frames.
        ``masked_input``: the features with masked frames already filled (random vectors); otherwise the
        encoder's mask embedding replaces them."""
        # targets from the unmasked features, normalised as the encoder's input projection sees them
        norm = self.encoder.feature_projection.layer_norm
        q = self.quantizer((norm(feats) if norm is not None else feats)[mask])
        if masked_input is not None:
            out = self.encoder.forward_features(masked_input, frames)
        else:
            out = self.encoder.forward_features(feats, frames, time_mask=mask)
        context = code_vectors = None
        if contrastive:
            context = self.heads.project_context(out.hidden_states[self.contrastive_layers][mask])
            code_vectors = self.heads.project_q(q.quantized)
        return W2vBertOutputs(q, context, code_vectors, self.heads.mlm_head(out.last_hidden_state[mask]))
