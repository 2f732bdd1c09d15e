"""WavLM and data2vec-audio encoder configs: the wav2vec 2.0 CNN and Transformer with WavLM's gated
relative position bias (Chen et al. 2022) or data2vec's stacked positional convolutions (Baevski et al.
2022). Sizes are those of the released checkpoints (``microsoft/wavlm-base-plus``,
``microsoft/wavlm-large``, ``facebook/data2vec-audio-base``)."""

from .encoder import EncoderConfig
from .registry import register

_WAVLM = dict(family="wavlm", position="gated_bucket", num_buckets=320, max_distance=800)
_LARGE = dict(
    extractor_mode="layer_norm",
    conv_bias=True,
    hidden_size=1024,
    num_layers=24,
    num_heads=16,
    ffn_dim=4096,
    layer_norm_first=True,
)


@register("wavlm_base")
def wavlm_base() -> EncoderConfig:
    return EncoderConfig(**_WAVLM, layerdrop=0.05, feature_dropout=0.1)


@register("wavlm_base_plus")
def wavlm_base_plus() -> EncoderConfig:
    """The architecture of WavLM Base; trained on 94k hours instead of 960."""
    return wavlm_base()


@register("wavlm_large")
def wavlm_large() -> EncoderConfig:
    return EncoderConfig(**_WAVLM, **_LARGE)


@register("data2vec_audio_base")
def data2vec_audio_base() -> EncoderConfig:
    return EncoderConfig(
        family="data2vec_audio",
        extractor_mode="layer_norm",
        pos_conv_kernel=19,
        pos_conv_groups=16,
        pos_conv_layers=5,
        layerdrop=0.05,
    )
