"""Frontends: what turns a waveform into the frame sequence an encoder reads.

* :class:`ConvFeatureExtractor`: the wav2vec 2.0 / HuBERT waveform CNN (320x downsampling).
* :class:`Conv2dSubsampler`: two stride-2 conv2d layers over log-mel frames (w2v-BERT paper).
* :class:`FbankStacker`: Kaldi fbank, per-utterance per-bin normalisation, frame stacking
  (w2v-BERT 2.0 / SeamlessM4T feature extractor).
* :class:`FeatureProjection`: optional layer norm, linear to the model width, dropout.

Every frontend maps ``(x, lengths) -> (frames [B, T', C], lengths' [B])`` and zeroes padded
frames, so a padded batch gives the same valid frames as each utterance alone.
"""

from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..audio.features import FbankOptions, FrameOptions, fbank
from ..constants import SAMPLE_RATE
from ..errors import InputError
from .utils import conv_out_length, lengths_to_mask

# (channels, kernel, stride) of the wav2vec 2.0 / HuBERT CNN: 400-sample receptive field, 320 hop
WAV2VEC2_CONV_LAYERS: List[Tuple[int, int, int]] = [(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512, 2, 2)] * 2


class _ConvBlock(nn.Module):
    """Conv1d -> (GroupNorm over time | LayerNorm over channels | nothing) -> GELU."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, bias: bool, norm: Optional[str]):
        super().__init__()
        self.conv = nn.Conv1d(in_ch, out_ch, kernel, stride=stride, bias=bias)
        self.kernel, self.stride = kernel, stride
        self.norm_kind = norm
        if norm == "group":
            self.layer_norm = nn.GroupNorm(out_ch, out_ch, affine=True)
        elif norm == "layer":
            self.layer_norm = nn.LayerNorm(out_ch)
        else:
            self.layer_norm = None
        self.activation = nn.GELU()

    def forward(self, x: torch.Tensor, lengths: Optional[torch.Tensor], masked_group_norm: bool):
        """``x [B, C, T]`` -> ``([B, C', T'], lengths' [B])``."""
        x = self.conv(x)
        if lengths is not None:
            lengths = conv_out_length(lengths, self.kernel, self.stride)
        if self.norm_kind == "group":
            if masked_group_norm and lengths is not None:
                x = _masked_instance_norm(x, lengths, self.layer_norm)
            else:
                x = self.layer_norm(x)
        elif self.norm_kind == "layer":
            x = self.layer_norm(x.transpose(1, 2)).transpose(1, 2)
        return self.activation(x), lengths


def _masked_instance_norm(x: torch.Tensor, lengths: torch.Tensor, norm: nn.GroupNorm) -> torch.Tensor:
    """GroupNorm with one channel a group, statistics over valid frames only.

    The reference implementations normalise over the padded length, so a padded utterance gets
    other features than the same utterance alone; this one does not.
    """
    if bool((lengths >= x.shape[-1]).all()):  # nothing padded: the native kernel is the same and faster
        return norm(x)
    # Sums over valid frames as batched mat-vec products, then one fused scale-and-shift.
    valid = lengths_to_mask(lengths, x.shape[-1])[:, :, None].to(x.dtype)  # [B, T, 1]
    n = lengths.clamp_min(1).to(x.dtype)[:, None, None]
    mean = torch.bmm(x, valid) / n
    centred = x - mean
    var = torch.bmm(centred * centred, valid) / n  # two-pass: E[x^2] - E[x]^2 loses digits here
    scale = norm.weight[None, :, None] * torch.rsqrt(var + norm.eps)
    return torch.addcmul(norm.bias[None, :, None], centred, scale)


class ConvFeatureExtractor(nn.Module):
    """The wav2vec 2.0 / HuBERT waveform CNN.

    Args:
        conv_layers: ``(channels, kernel, stride)`` per layer.
        mode: ``"group_norm"`` (fairseq "default": GroupNorm on the first layer only) or
            ``"layer_norm"`` (LayerNorm after every layer, the large models).
        bias: conv bias (False in the base models, True in the large ones).
        masked_group_norm: compute the first layer's GroupNorm statistics over valid samples only
            (padding-invariant). Set False to reproduce fairseq / transformers on padded batches.
    """

    def __init__(
        self,
        conv_layers: Sequence[Sequence[int]] = WAV2VEC2_CONV_LAYERS,
        mode: str = "group_norm",
        bias: bool = False,
        masked_group_norm: bool = True,
    ):
        super().__init__()
        if mode not in ("group_norm", "layer_norm"):
            raise InputError(f"extractor mode must be 'group_norm' or 'layer_norm', got {mode!r}")
        blocks, in_ch = [], 1
        for i, (ch, k, s) in enumerate(conv_layers):
            norm = "layer" if mode == "layer_norm" else ("group" if i == 0 else None)
            blocks.append(_ConvBlock(in_ch, ch, k, s, bias, norm))
            in_ch = ch
        self.conv_layers = nn.ModuleList(blocks)
        self.output_dim = in_ch
        self.masked_group_norm = masked_group_norm

    @property
    def downsample_rate(self) -> int:
        rate = 1
        for block in self.conv_layers:
            rate *= block.stride
        return rate

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        for block in self.conv_layers:
            lengths = conv_out_length(lengths, block.kernel, block.stride)
        return lengths

    def forward(self, wavs: torch.Tensor, lengths: Optional[torch.Tensor] = None):
        """``wavs [B, T]`` -> ``(features [B, T', C], lengths' [B])``; padded frames zeroed."""
        x = wavs[:, None, :]
        out_lengths = lengths
        for block in self.conv_layers:
            x, out_lengths = block(x, out_lengths, self.masked_group_norm)
        x = x.transpose(1, 2)
        if out_lengths is None:
            out_lengths = torch.full((x.shape[0],), x.shape[1], dtype=torch.long, device=x.device)
        out_lengths = out_lengths.clamp_min(0)
        return x * lengths_to_mask(out_lengths, x.shape[1])[..., None], out_lengths


class FeatureProjection(nn.Module):
    """``[B, T, in_dim]`` -> LayerNorm (optional) -> Linear -> Dropout -> ``[B, T, out_dim]``."""

    def __init__(self, in_dim: int, out_dim: int, layer_norm: bool = True, dropout: float = 0.0, eps: float = 1e-5):
        super().__init__()
        self.layer_norm = nn.LayerNorm(in_dim, eps=eps) if layer_norm else None
        self.projection = nn.Linear(in_dim, out_dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.layer_norm is not None:
            x = self.layer_norm(x)
        return self.dropout(self.projection(x))


class LogMelFrontend(nn.Module):
    """Waveform -> Kaldi log-mel fbank (int16 scale, dither 0) -> per-utterance normalisation.

    ``normalize``: ``"mean_var"`` per bin over the utterance's valid frames (unbiased variance,
    as SeamlessM4T's extractor), ``"mean"``, or ``"none"``.
    """

    def __init__(
        self, num_mel_bins: int = 80, sample_rate: int = SAMPLE_RATE, normalize: str = "mean_var", eps: float = 1e-7
    ):
        super().__init__()
        if normalize not in ("mean_var", "mean", "none"):
            raise InputError(f"normalize must be mean_var, mean or none, got {normalize!r}")
        self.opts = FbankOptions(frame=FrameOptions(sample_rate=sample_rate), num_mel_bins=num_mel_bins)
        self.normalize, self.eps = normalize, eps

    def output_frames(self, lengths: torch.Tensor) -> torch.Tensor:
        """Kaldi frame count (``snip_edges``) of ``lengths`` samples."""
        frame = self.opts.frame
        return torch.where(
            lengths >= frame.window_size,
            1 + torch.div(lengths - frame.window_size, frame.window_shift, rounding_mode="floor"),
            torch.zeros_like(lengths),
        )

    def forward(self, wavs: torch.Tensor, lengths: Optional[torch.Tensor] = None):
        """``wavs [B, T]`` in [-1, 1] -> ``(feats [B, F, num_mel_bins], frames [B])``."""
        with torch.autocast(wavs.device.type, enabled=False):
            feats, counts = fbank(wavs.float() * 32768.0, lengths, self.opts)
        if self.normalize == "none":
            return feats, counts
        valid = lengths_to_mask(counts, feats.shape[1])[..., None].to(feats.dtype)
        n = counts.clamp_min(1).to(feats.dtype)[:, None, None]
        mean = (feats * valid).sum(1, keepdim=True) / n
        feats = (feats - mean) * valid
        if self.normalize == "mean_var":
            var = feats.pow(2).sum(1, keepdim=True) / (n - 1).clamp_min(1)
            feats = feats / torch.sqrt(var + self.eps)
        return feats, counts


class FbankStacker(nn.Module):
    """w2v-BERT 2.0 input: normalised log-mel frames stacked ``stride`` at a time.

    ``wavs [B, T]`` -> ``([B, F // stride, num_mel_bins * stride], lengths [B])``; a stacked frame
    is valid when all its source frames are (SeamlessM4T's extractor).
    """

    def __init__(self, num_mel_bins: int = 80, stride: int = 2, sample_rate: int = SAMPLE_RATE):
        super().__init__()
        self.logmel = LogMelFrontend(num_mel_bins, sample_rate, "mean_var")
        self.stride = stride
        self.output_dim = num_mel_bins * stride

    @property
    def downsample_rate(self) -> int:
        return self.logmel.opts.frame.window_shift * self.stride

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        frames = self.logmel.output_frames(lengths)
        return torch.div(frames, self.stride, rounding_mode="floor")

    def forward(self, wavs: torch.Tensor, lengths: Optional[torch.Tensor] = None):
        feats, counts = self.logmel(wavs, lengths)
        B, T, D = feats.shape
        T2 = T // self.stride
        stacked = feats[:, : T2 * self.stride].reshape(B, T2, D * self.stride)
        return stacked, torch.div(counts, self.stride, rounding_mode="floor")


class Conv2dSubsampler(nn.Module):
    """The w2v-BERT paper's feature encoder: log-mel -> 2 x (Conv2d 3x3 stride 2, ReLU): 4x fewer frames.

    ``wavs [B, T]`` -> ``([B, F', channels * F_mel'], lengths [B])`` with ``F' ~ F / 4``.
    """

    def __init__(
        self, num_mel_bins: int = 80, channels: int = 128, sample_rate: int = SAMPLE_RATE, normalize: str = "mean_var"
    ):
        super().__init__()
        self.logmel = LogMelFrontend(num_mel_bins, sample_rate, normalize)
        self.conv1 = nn.Conv2d(1, channels, 3, stride=2)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=2)
        freq = ((num_mel_bins - 3) // 2 + 1 - 3) // 2 + 1
        self.output_dim = channels * freq

    @property
    def downsample_rate(self) -> int:
        return self.logmel.opts.frame.window_shift * 4

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        frames = self.logmel.output_frames(lengths)
        return conv_out_length(conv_out_length(frames, 3, 2), 3, 2).clamp_min(0)

    def forward(self, wavs: torch.Tensor, lengths: Optional[torch.Tensor] = None):
        feats, counts = self.logmel(wavs, lengths)
        # conv2d without padding: valid outputs never see padded frames
        x = F.relu(self.conv1(feats[:, None]))
        x = F.relu(self.conv2(x))
        B, C, T, Fq = x.shape
        x = x.transpose(1, 2).reshape(B, T, C * Fq)
        out_lengths = conv_out_length(conv_out_length(counts, 3, 2), 3, 2).clamp_min(0)
        return x * lengths_to_mask(out_lengths, T)[..., None], out_lengths


class Conv1dGluSubsampler(nn.Module):
    """Fast-HuBERT's input (Yang et al. 2023, arXiv:2309.13860; fairseq's speech-to-text ``Conv1dSubsampler``):
    log-mel at 100 Hz -> ``len(kernels)`` x (Conv1d stride 2, "same" padding, GLU): 25 Hz with two layers.

    ``wavs [B, T]`` -> ``([B, F', channels], lengths [B])``. Padded frames are zeroed before every layer, so
    a valid output sees exactly the zeros its conv padding would give the utterance alone: padding-invariant.
    Per-utterance mean/variance normalisation stands in for Fast-HuBERT's global CMVN statistics.
    """

    def __init__(
        self,
        num_mel_bins: int = 80,
        channels: int = 256,
        kernels: Sequence[int] = (5, 5),
        sample_rate: int = SAMPLE_RATE,
    ):
        super().__init__()
        self.logmel = LogMelFrontend(num_mel_bins, sample_rate, "mean_var")
        self.kernels = [int(k) for k in kernels]
        dims = [num_mel_bins] + [channels] * len(self.kernels)
        self.convs = nn.ModuleList(
            nn.Conv1d(dims[i], 2 * dims[i + 1], k, stride=2, padding=k // 2) for i, k in enumerate(self.kernels)
        )
        self.output_dim = channels

    @property
    def downsample_rate(self) -> int:
        return self.logmel.opts.frame.window_shift * 2 ** len(self.kernels)

    def _next_lengths(self, lengths: torch.Tensor, k: int) -> torch.Tensor:
        return conv_out_length(lengths, k, 2, k // 2).clamp_min(0)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        frames = self.logmel.output_frames(lengths)
        for k in self.kernels:
            frames = self._next_lengths(frames, k)
        return frames

    def forward(self, wavs: torch.Tensor, lengths: Optional[torch.Tensor] = None):
        feats, counts = self.logmel(wavs, lengths)  # padded frames are already zero
        x = feats.transpose(1, 2)
        for k, conv in zip(self.kernels, self.convs):
            x = F.glu(conv(x), dim=1)
            counts = self._next_lengths(counts, k)
            x = x * lengths_to_mask(counts, x.shape[-1])[:, None, :].to(x.dtype)
        return x.transpose(1, 2), counts
