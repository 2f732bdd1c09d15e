"""One configurable speech encoder: frontend -> projection -> Transformer | Conformer.

HuBERT, wav2vec 2.0, wav2vec2-conformer, WavLM, data2vec-audio and w2v-BERT encoders are all this class with different
:class:`EncoderConfig` values. The config describes the architecture only: pretraining heads live in the
pretraining models beside the encoder (:class:`~speechssl.models.hubert.HubertPretrainModel`).
"""

import difflib
from dataclasses import MISSING as MISSING_DEFAULT
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Dict, List, Optional

import torch
from torch import nn

from ..errors import InputError
from ..nn.conformer import ConformerEncoder
from ..nn.frontends import (
    WAV2VEC2_CONV_LAYERS,
    Conv1dGluSubsampler,
    Conv2dSubsampler,
    ConvFeatureExtractor,
    FbankStacker,
    FeatureProjection,
)
from ..nn.init import init_encoder_
from ..nn.masking import apply_mask
from ..nn.transformer import TransformerEncoder
from ..nn.utils import lengths_to_mask
from .folder import save_model
from .upstream import UpstreamBase, UpstreamOutput

FRONTENDS = ("waveform_cnn", "fbank_conv2d", "fbank_stack", "fbank_conv1d")
LEGACY_HEAD_FIELDS = ("num_classes", "final_dim")  # HuBERT head sizes, in EncoderConfig until heads moved out
ENCODERS = ("transformer", "conformer")
FAMILIES = ("hubert", "wav2vec2", "w2v_bert", "wavlm", "data2vec_audio")


@dataclass
class EncoderConfig:
    """Architecture of a :class:`SpeechEncoder`. Field names are ours; interop maps others' onto them."""

    family: str = "hubert"  # one of FAMILIES: the model family (export format, pretraining heads)
    frontend: str = "waveform_cnn"  # one of FRONTENDS
    normalize_waveform: bool = False  # zero mean / unit variance per utterance before the frontend
    # (wav2vec2-large-lv60's do_normalize; our pretraining's data.normalize)
    # waveform CNN
    conv_layers: List[List[int]] = field(default_factory=lambda: [list(x) for x in WAV2VEC2_CONV_LAYERS])
    extractor_mode: str = "group_norm"  # group_norm | layer_norm
    conv_bias: bool = False
    masked_group_norm: bool = True  # padding-invariant GroupNorm statistics
    # fbank frontends
    num_mel_bins: int = 80
    stack_stride: int = 2
    subsampler_channels: int = 128
    subsampler_kernels: List[int] = field(default_factory=lambda: [5, 5])  # fbank_conv1d (Fast-HuBERT): 4x
    # projection
    feature_layer_norm: bool = True
    feature_dropout: float = 0.0
    # encoder
    encoder: str = "transformer"  # one of ENCODERS
    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12
    ffn_dim: int = 3072
    head_dim: Optional[int] = None  # width of a head (default hidden_size // num_heads)
    layer_heads: List[int] = field(default_factory=list)  # per-layer head counts (LightHuBERT subnets)
    layer_ffn_dims: List[int] = field(default_factory=list)  # per-layer FFN widths (LightHuBERT subnets)
    activation: str = "gelu"
    layer_norm_first: bool = False
    layer_norm_eps: float = 1e-5
    pos_conv_kernel: int = 128  # 0: no conv positional embedding
    pos_conv_groups: int = 16
    pos_conv_layers: int = 0  # 0: one weight-normalised conv; N: N plain convs (data2vec-audio)
    position: str = "none"  # none | rel_pos | relative_key | rotary | gated_bucket (WavLM)
    num_buckets: int = 320  # gated_bucket: relative-position buckets (both directions)
    max_distance: int = 800  # gated_bucket: distance of the last bucket
    left_max_position: int = 64
    right_max_position: int = 8
    rotary_base: float = 10000.0
    depthwise_kernel: int = 31
    conv_norm: str = "batch_norm"  # batch_norm | layer_norm
    causal_conv: bool = False
    final_layer_norm: bool = True  # conformer: layer norm after the last block
    dropout: float = 0.1
    attention_dropout: float = 0.1
    activation_dropout: float = 0.0
    layerdrop: float = 0.0
    mask_embedding: bool = True  # the learnt vector masked frames take (pretraining, SpecAugment)

    def validate(self) -> "EncoderConfig":
        checks = {
            "frontend": FRONTENDS,
            "encoder": ENCODERS,
            "extractor_mode": ("group_norm", "layer_norm"),
            "position": ("none", "rel_pos", "relative_key", "rotary", "gated_bucket"),
            "conv_norm": ("batch_norm", "layer_norm"),
            "family": FAMILIES,
        }
        for name, allowed in checks.items():
            if getattr(self, name) not in allowed:
                raise InputError(f"config field {name}={getattr(self, name)!r}; expected one of {allowed}")
        for name in ("layer_heads", "layer_ffn_dims"):
            values = getattr(self, name)
            if values and len(values) != self.num_layers:
                raise InputError(f"config field {name} has {len(values)} values for {self.num_layers} layers")
            if values and self.encoder != "transformer":
                raise InputError(f"config field {name} is for the transformer encoder only")
        for name in ("hidden_size", "num_layers", "num_heads", "ffn_dim", "num_buckets", "max_distance"):
            if getattr(self, name) < 1:
                raise InputError(f"config field {name} must be >= 1, got {getattr(self, name)}")
        if self.encoder != "transformer" and (self.pos_conv_layers or self.position == "gated_bucket"):
            raise InputError(
                "config fields pos_conv_layers and position=gated_bucket are for the transformer encoder only"
            )
        if self.head_dim is None and self.hidden_size % self.num_heads:
            raise InputError(f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}")
        return self

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "EncoderConfig":
        d = {k: v for k, v in d.items() if k not in LEGACY_HEAD_FIELDS}  # folders written before heads moved out
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            hints = {k: difflib.get_close_matches(k, known, 1) for k in unknown}
            msg = ", ".join(f"{k}" + (f" (did you mean {h[0]}?)" if h else "") for k, h in hints.items())
            raise InputError(f"unknown encoder config fields: {msg}")
        for f in fields(cls):  # a value of the wrong type fails here, naming the field (not deep in a module)
            default = f.default if f.default is not MISSING_DEFAULT else None
            if f.name in d and isinstance(default, (bool, int, float, str)) and d[f.name] is not None:
                want = type(default)
                ok = (
                    isinstance(d[f.name], want)
                    if want in (bool, str)
                    else isinstance(d[f.name], (int, float) if want is float else int)
                    and not isinstance(d[f.name], bool)
                )
                if not ok:
                    raise InputError(f"encoder config field {f.name}={d[f.name]!r}: expected {want.__name__}")
        return cls(**d).validate()

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


class SpeechEncoder(UpstreamBase):
    """An upstream: ``forward(wavs [B, T], lengths [B]) -> UpstreamOutput``.

    Attributes:
        downsample_rate: input samples per output frame (320 for the waveform CNN).
        num_layers, hidden_size: encoder depth and width.
    """

    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.config = config = config.validate()
        if config.frontend == "waveform_cnn":
            self.frontend = ConvFeatureExtractor(
                config.conv_layers, config.extractor_mode, config.conv_bias, config.masked_group_norm
            )
        elif config.frontend == "fbank_stack":
            self.frontend = FbankStacker(config.num_mel_bins, config.stack_stride)
        elif config.frontend == "fbank_conv1d":
            self.frontend = Conv1dGluSubsampler(
                config.num_mel_bins, config.subsampler_channels, config.subsampler_kernels
            )
        else:
            self.frontend = Conv2dSubsampler(config.num_mel_bins, config.subsampler_channels)
        self.feature_projection = FeatureProjection(
            self.frontend.output_dim,
            config.hidden_size,
            config.feature_layer_norm,
            config.feature_dropout,
            config.layer_norm_eps,
        )
        self.mask_embedding = (
            nn.Parameter(torch.empty(config.hidden_size).uniform_()) if config.mask_embedding else None
        )
        common = dict(
            dim=config.hidden_size,
            num_layers=config.num_layers,
            num_heads=config.num_heads,
            ffn_dim=config.ffn_dim,
            dropout=config.dropout,
            attention_dropout=config.attention_dropout,
            activation_dropout=config.activation_dropout,
            activation_name=config.activation,
            layerdrop=config.layerdrop,
            eps=config.layer_norm_eps,
            position=config.position,
        )
        position_kwargs = {}
        if config.position == "relative_key":
            position_kwargs = dict(
                left_max_position=config.left_max_position, right_max_position=config.right_max_position
            )
        elif config.position == "rotary":
            position_kwargs = dict(rotary_base=config.rotary_base)
        if config.encoder == "transformer":
            if config.position == "gated_bucket":
                position_kwargs = dict(num_buckets=config.num_buckets, max_distance=config.max_distance)
            self.encoder = TransformerEncoder(
                pos_conv_kernel=config.pos_conv_kernel,
                pos_conv_groups=config.pos_conv_groups,
                pos_conv_layers=config.pos_conv_layers,
                head_dim=config.head_dim,
                layer_heads=config.layer_heads or None,
                layer_ffn_dims=config.layer_ffn_dims or None,
                layer_norm_first=config.layer_norm_first,
                **common,
                **position_kwargs,
            )
        else:
            self.encoder = ConformerEncoder(
                depthwise_kernel=config.depthwise_kernel,
                conv_norm=config.conv_norm,
                causal_conv=config.causal_conv,
                final_layer_norm=config.final_layer_norm,
                **common,
                **position_kwargs,
            )
        init_encoder_(self, config.family)  # the reference code's scheme, not PyTorch's defaults

    def save_pretrained(self, path):
        """Write this encoder as an exported folder (``config.yaml`` + ``model.safetensors``) that
        :func:`speechssl.from_pretrained` and :func:`speechssl.load_model` read, keeping where its weights came
        from (``metadata``; an encoder built here and never trained is recorded as ``random init``)."""
        metadata = dict(getattr(self, "metadata", None) or {"weights": "random init"})
        return save_model(self, path, metadata)

    # -- the upstream contract ------------------------------------------------------------------
    @property
    def downsample_rate(self) -> int:
        return self.frontend.downsample_rate

    @property
    def num_layers(self) -> int:
        return self.config.num_layers

    @property
    def hidden_size(self) -> int:
        return self.config.hidden_size

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return self.frontend.output_lengths(lengths)

    def forward(
        self,
        wavs: torch.Tensor,
        lengths: Optional[torch.Tensor] = None,
        *,
        num_layers: Optional[int] = None,
        time_mask: Optional[torch.Tensor] = None,
    ) -> UpstreamOutput:
        """Args:
        wavs: ``[B, T]`` float waveform at :data:`~speechssl.constants.SAMPLE_RATE`.
        lengths: ``[B]`` valid samples (default: all ``T``).
        num_layers: stop after this many layers (extraction of lower layers is cheaper).
        time_mask: ``[B, T']`` frames to replace by the mask embedding (pretraining / SpecAugment).
        """
        lengths = self.check_input(wavs, lengths)
        if self.config.normalize_waveform:
            wavs = normalize_waveform(wavs, lengths)
        feats, frames = self.frontend(wavs, lengths)
        too_short = (frames <= 0).nonzero().flatten().tolist()
        if too_short:
            raise InputError(
                f"utterances {too_short} of the batch ({lengths[too_short].tolist()} samples) are "
                f"shorter than one output frame of this model's frontend"
            )
        return self.forward_features(feats, frames, time_mask=time_mask, num_layers=num_layers)

    def forward_features(
        self,
        feats: torch.Tensor,
        frames: torch.Tensor,
        *,
        time_mask: Optional[torch.Tensor] = None,
        num_layers: Optional[int] = None,
        channel_mask: Optional[torch.Tensor] = None,
    ) -> UpstreamOutput:
        """Run from frontend output ``feats [B, T', C]`` with ``frames [B]`` valid frames.
        ``channel_mask [B, D]`` zeroes projected channels (fine-tuning's channel masking)."""
        x = self.feature_projection(feats)
        if time_mask is not None or channel_mask is not None:
            x = apply_mask(x, time_mask, self.mask_embedding, channel_mask)
        valid = lengths_to_mask(frames, x.shape[1])
        hidden_states, last = self.encoder(x, valid, num_layers)
        return UpstreamOutput(hidden_states=hidden_states, lengths=frames, last_hidden_state=last, features=feats)


def normalize_waveform(wavs: torch.Tensor, lengths: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Zero mean, unit variance over each row's valid samples; padding stays zero. ``[B, T]``."""
    valid = lengths_to_mask(lengths, wavs.shape[1]).to(wavs.dtype)
    n = lengths.clamp_min(1).to(wavs.dtype)[:, None]
    mean = (wavs * valid).sum(1, keepdim=True) / n
    centred = (wavs - mean) * valid
    std = (centred.pow(2).sum(1, keepdim=True) / n).sqrt().clamp_min(eps)
    return centred / std
