"""Building blocks: frontends, attention, Transformer and Conformer encoders, masking."""

from .attention import MultiheadSelfAttention
from .conformer import ConformerEncoder, ConformerLayer, ConvolutionModule
from .frontends import Conv2dSubsampler, ConvFeatureExtractor, FbankStacker, FeatureProjection, LogMelFrontend
from .masking import apply_mask, channel_mask, span_mask
from .transformer import ConvPositionalEmbedding, TransformerEncoder, TransformerLayer

__all__ = [
    "MultiheadSelfAttention",
    "ConformerEncoder",
    "ConformerLayer",
    "ConvolutionModule",
    "Conv2dSubsampler",
    "ConvFeatureExtractor",
    "FbankStacker",
    "FeatureProjection",
    "LogMelFrontend",
    "apply_mask",
    "channel_mask",
    "span_mask",
    "ConvPositionalEmbedding",
    "TransformerEncoder",
    "TransformerLayer",
]
