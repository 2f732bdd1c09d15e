"""w2v-BERT encoder configs (fbank frontends + Conformer).

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
from .encoder import EncoderConfig
from .registry import register

# the paper splits the stack: the first CONTRASTIVE_LAYERS blocks form the contrastive module
CONTRASTIVE_LAYERS = {"w2v_bert_xl": 12, "w2v_bert_xxl": 12, "w2v_bert_small": 3, "w2v_bert_2": 12}


@register("w2v_bert_xl")
def w2v_bert_xl() -> EncoderConfig:
    return EncoderConfig(family="w2v_bert", frontend="fbank_conv2d", subsampler_channels=128,
                         encoder="conformer", hidden_size=1024, num_layers=24, num_heads=8, ffn_dim=4096,
                         activation="swish", pos_conv_kernel=0, position="rel_pos", depthwise_kernel=5,
                         final_layer_norm=False)


@register("w2v_bert_xxl")
def w2v_bert_xxl() -> EncoderConfig:
    cfg = w2v_bert_xl()
    cfg.num_layers = 42
    return cfg


@register("w2v_bert_2")
def w2v_bert_2() -> EncoderConfig:
    return EncoderConfig(family="w2v_bert", frontend="fbank_stack", encoder="conformer", hidden_size=1024,
                         num_layers=24, num_heads=16, ffn_dim=4096, activation="swish", pos_conv_kernel=0,
                         position="relative_key", depthwise_kernel=31, conv_norm="layer_norm", causal_conv=True,
                         final_layer_norm=False, dropout=0.0, attention_dropout=0.0)


@register("w2v_bert_small")
def w2v_bert_small() -> EncoderConfig:
    return EncoderConfig(family="w2v_bert", frontend="fbank_conv2d", subsampler_channels=32,
                         encoder="conformer", hidden_size=256, num_layers=6, num_heads=4, ffn_dim=1024,
                         activation="swish", pos_conv_kernel=0, position="rel_pos", depthwise_kernel=15,
                         final_layer_norm=False)
