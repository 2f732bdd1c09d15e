"""HuBERT and wav2vec 2.0 encoder configs (waveform CNN + Transformer).

Base/large follow the fairseq recipes (Hsu et al. 2021, Baevski et al. 2020). ``hubert_small``
is ours: the same 320x CNN and post-norm Transformer, narrow and shallow enough to pretrain on a
CPU on the mini corpus.
"""
from .encoder import EncoderConfig
from .registry import register


@register("hubert_base")
def hubert_base() -> EncoderConfig:
    return EncoderConfig(family="hubert", layerdrop=0.05, feature_dropout=0.1, final_dim=256)


@register("hubert_large")
def hubert_large() -> EncoderConfig:
    return EncoderConfig(family="hubert", extractor_mode="layer_norm", conv_bias=True, hidden_size=1024,
                         num_layers=24, num_heads=16, ffn_dim=4096, layer_norm_first=True, layerdrop=0.0,
                         feature_dropout=0.0, final_dim=768)


@register("hubert_small")
def hubert_small() -> EncoderConfig:
    conv = [[256, 10, 5]] + [[256, 3, 2]] * 4 + [[256, 2, 2]] * 2
    return EncoderConfig(family="hubert", conv_layers=conv, hidden_size=256, num_layers=6, num_heads=4,
                         ffn_dim=1024, pos_conv_kernel=64, pos_conv_groups=16, layerdrop=0.0,
                         feature_dropout=0.1, final_dim=128)


@register("wav2vec2_base")
def wav2vec2_base() -> EncoderConfig:
    return EncoderConfig(family="wav2vec2", layerdrop=0.05, feature_dropout=0.1)


@register("wav2vec2_large_lv60")
def wav2vec2_large_lv60() -> EncoderConfig:
    return EncoderConfig(family="wav2vec2", extractor_mode="layer_norm", conv_bias=True, hidden_size=1024,
                         num_layers=24, num_heads=16, ffn_dim=4096, layer_norm_first=True)


@register("wav2vec2_conformer_large_rel_pos")
def wav2vec2_conformer_large() -> EncoderConfig:
    return EncoderConfig(family="wav2vec2", extractor_mode="layer_norm", conv_bias=True, encoder="conformer",
                         hidden_size=1024, num_layers=24, num_heads=16, ffn_dim=4096, activation="swish",
                         pos_conv_kernel=0, position="rel_pos", depthwise_kernel=31)
