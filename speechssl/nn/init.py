"""Initialisation as the papers' code does it (fairseq, and transformers' ports of it).

PyTorch's defaults (Kaiming-uniform with ``a=sqrt(5)``) leave the waveform CNN's output about six orders of
magnitude quieter than fairseq's Kaiming-normal convolutions, so the feature penalty, the untrained-copy
controls and every from-scratch run would differ from the papers' models. The schemes:

* every family: convolutions Kaiming-normal (fan-in, gain sqrt(2)); linears and embeddings N(0, 0.02)
  (BERT's ``init_bert_params``); layer/group/batch norms weight 1, bias 0; linear biases 0.
* the conv positional embedding: N(0, 2 / sqrt(kernel * in_channels)) with bias 0 and the weight-norm gain
  reset to the new direction's norm (fairseq ``pos_conv``: ``std = sqrt(4 * (1 - dropout) / (k * C))`` with
  dropout 0, the value transformers uses too).
* the feature projection keeps the default uniform(+-1/sqrt(fan_in)) (fairseq's ``post_extract_proj`` is a
  plain ``nn.Linear`` in both ``HubertModel`` and ``Wav2Vec2Model``), conv biases (Large's CNN) keep their
  default uniform(+-sqrt(groups / fan_in)), the Conformer's ``pos_bias_u/v`` Xavier-uniform.
* HuBERT follows fairseq's ``HubertModel`` (checked parameter by parameter in ``tests/crosscheck/test_init.py``),
  not transformers' ``HubertPreTrainedModel``, which draws the feature projection N(0, 0.02) and zeroes conv
  biases; every other parameter is drawn the same way in all three.
"""

from __future__ import annotations

import math

from torch import nn

BERT_STD = 0.02


def _init_pos_conv(conv: nn.Conv1d) -> None:
    """fairseq's ``pos_conv``: normal with std ``2 / sqrt(k * C_in)``, zero bias, weight-norm gain = norm."""
    std = 2.0 * math.sqrt(1.0 / (conv.kernel_size[0] * conv.in_channels))
    nn.init.zeros_(conv.bias)
    param = getattr(conv, "parametrizations", None)
    if param is not None and "weight" in param:
        g, v = param.weight.original0, param.weight.original1
        nn.init.normal_(v, mean=0.0, std=std)
        g.copy_(v.norm(dim=[d for d in range(v.dim()) if d != 2], keepdim=True))  # weight = g * v / |v| = v
    else:
        nn.init.normal_(conv.weight, mean=0.0, std=std)


def init_encoder_(encoder: nn.Module, family: str) -> nn.Module:
    """Initialise ``encoder`` (a :class:`~speechssl.models.encoder.SpeechEncoder`) in place as fairseq does;
    returns it. Parameters of modules it does not know keep PyTorch's default. ``family`` is kept for the
    families whose reference code may differ; all of today's share fairseq's scheme."""
    import torch

    from .transformer import ConvPositionalEmbedding  # here: transformer imports nothing from this module

    projection = getattr(getattr(encoder, "feature_projection", None), "projection", None)
    with torch.no_grad():
        for module in encoder.modules():
            if isinstance(module, ConvPositionalEmbedding):
                continue  # its conv is handled below, after the generic conv rule
            if isinstance(module, nn.Linear):
                if module is projection:
                    module.reset_parameters()  # uniform(+-1/sqrt(fan_in)), weight and bias
                    continue
                nn.init.normal_(module.weight, mean=0.0, std=BERT_STD)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, mean=0.0, std=BERT_STD)
                if module.padding_idx is not None:
                    module.weight[module.padding_idx].zero_()
            elif isinstance(module, (nn.LayerNorm, nn.GroupNorm, nn.BatchNorm1d)):
                if module.weight is not None:
                    nn.init.ones_(module.weight)
                    nn.init.zeros_(module.bias)
            elif isinstance(module, (nn.Conv1d, nn.Conv2d)) and not hasattr(module, "parametrizations"):
                nn.init.kaiming_normal_(module.weight)
                if module.bias is not None:
                    fan_in = module.in_channels // module.groups * math.prod(module.kernel_size)
                    bound = 1.0 / math.sqrt(fan_in)
                    nn.init.uniform_(module.bias, -bound, bound)
        for module in encoder.modules():
            if isinstance(module, ConvPositionalEmbedding):
                _init_pos_conv(module.conv)
            for name in ("pos_bias_u", "pos_bias_v"):
                p = getattr(module, name, None)
                if isinstance(p, nn.Parameter):
                    nn.init.xavier_uniform_(p)
    return encoder
