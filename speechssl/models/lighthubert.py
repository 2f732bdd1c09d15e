"""LightHuBERT (Wang et al., 2022): a once-for-all HuBERT supernet whose subnets share its weights.

The supernet is a HuBERT-shaped :class:`SpeechEncoder` of the largest size (the stage-1 student)
plus a prediction head onto the teacher's width. A :class:`Subnet` picks

* the embedding dim ``e`` (one per subnet): every ``e``-wide weight takes the leading slice;
* per layer, the head count ``h`` with the head width fixed, so attention width ``a = h * head_dim``
  (q/k/v take the leading ``a`` rows, the output projection the leading ``a`` columns);
* per layer, the FFN ratio ``r``: ``fc1`` keeps, in each of the first ``ceil(r)`` blocks of
  ``hidden_size`` rows, the leading ``e`` rows (the last block only ``(r - floor(r)) * e``), as the
  official ``SLinear`` with ``out_splits`` does, so official checkpoints behave the same;
* the depth, through a fixed keep-map of layers (:func:`keep_map`; the official table for 12).

A subnet runs as the *plain* encoder it exports to (:meth:`LightHubert.export_config`), called
with sliced supernet weights (:meth:`LightHubert.subnet_state`): what trains is exactly what
exports, and an export has ordinary ``Linear`` / ``LayerNorm`` weights and no supernet machinery.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import torch
from omegaconf import OmegaConf
from safetensors.torch import save_file
from torch import nn
from torch.func import functional_call

from ..errors import InputError, MissingInputError
from ..utils.atomic import atomic_path, write_text
from ..utils.readers import load_safetensors, load_yaml_dict
from .encoder import EncoderConfig, SpeechEncoder, normalize_waveform
from .lighthubert_space import OFFICIAL_KEEP_MAPS_12, SearchSpace, Subnet, keep_map
from .registry import load_model, model_config, save_model
from .upstream import UpstreamBase, UpstreamOutput

SPACE_FILE, HEAD_FILE = "lighthubert.yaml", "prediction_head.safetensors"


class _Features(nn.Module):
    """Calls ``forward_features`` so that ``functional_call`` can run it with sliced weights."""

    def __init__(self, encoder: SpeechEncoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, *args, **kwargs):
        return self.encoder.forward_features(*args, **kwargs)


class LightHubert(UpstreamBase):
    """The supernet: ``forward(wavs [B, T], lengths [B]) -> UpstreamOutput`` of the current subnet.

    Args:
        config: the largest network (HuBERT-shaped: waveform CNN, post- or pre-norm Transformer,
            conv positional embedding, no relative positions).
        space: the search space.
        teacher_dim: width of the distillation targets (the prediction head's output).
    """

    def __init__(self, config: EncoderConfig, space: SearchSpace, teacher_dim: Optional[int] = None):
        super().__init__()
        if config.encoder != "transformer" or config.position != "none" or config.layer_heads or config.layer_ffn_dims:
            raise InputError(
                "a LightHuBERT supernet is a uniform Transformer with conv positions "
                f"(got encoder={config.encoder}, position={config.position})"
            )
        self.encoder = SpeechEncoder(config)
        self.space = space.validate()
        self.head_dim = config.head_dim or config.hidden_size // config.num_heads
        self.teacher_dim = teacher_dim or config.hidden_size
        self.prediction_head = nn.Linear(config.hidden_size, self.teacher_dim, bias=False)
        for s in (space.max_subnet(), space.min_subnet(), space.default_subnet()):
            self.check_subnet(s)
        self._plain_cache: Dict[str, nn.Module] = {}
        self.subnet = space.max_subnet()

    # -- the upstream contract (current subnet) -------------------------------------------------
    @property
    def config(self) -> EncoderConfig:
        return self.export_config(self.subnet)

    @property
    def downsample_rate(self) -> int:
        return self.encoder.downsample_rate

    @property
    def num_layers(self) -> int:
        return self.subnet.depth

    @property
    def hidden_size(self) -> int:
        return self.subnet.embed_dim

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return self.encoder.output_lengths(lengths)

    def forward(
        self,
        wavs: torch.Tensor,
        lengths: Optional[torch.Tensor] = None,
        *,
        num_layers: Optional[int] = None,
        time_mask: Optional[torch.Tensor] = None,
    ) -> UpstreamOutput:
        """The current subnet on a waveform batch (see :meth:`SpeechEncoder.forward`)."""
        lengths = self.check_input(wavs, lengths)
        if self.encoder.config.normalize_waveform:
            wavs = normalize_waveform(wavs, lengths)
        feats, frames = self.encoder.frontend(wavs, lengths)
        return self.forward_features(feats, frames, time_mask=time_mask, num_layers=num_layers)

    def forward_features(
        self,
        feats: torch.Tensor,
        frames: torch.Tensor,
        *,
        time_mask: Optional[torch.Tensor] = None,
        num_layers: Optional[int] = None,
    ) -> UpstreamOutput:
        """The current subnet from frontend output ``feats [B, T', C]`` (the CNN is not elastic)."""
        plain = self._plain(self.subnet)
        state = {f"encoder.{k}": v for k, v in self.subnet_state(self.subnet, frontend=False).items()}
        plain.train(self.training)
        return functional_call(
            plain, state, (feats, frames), {"time_mask": time_mask, "num_layers": num_layers}, strict=False
        )

    def predict(self, hidden: torch.Tensor) -> torch.Tensor:
        """The prediction head on the current subnet's last layer: ``[B, T', e] -> [B, T', teacher_dim]``."""
        return torch.nn.functional.linear(hidden, self.prediction_head.weight[:, : hidden.shape[-1]])

    # -- subnets --------------------------------------------------------------------------------
    def set_subnet(self, subnet: Union[Subnet, Dict, str]) -> Subnet:
        """Make ``subnet`` (a :class:`Subnet`, a dict, or ``max`` / ``min`` / ``default``) current."""
        self.subnet = self.resolve_subnet(subnet)
        return self.subnet

    def resolve_subnet(self, subnet: Union[Subnet, Dict, str]) -> Subnet:
        if isinstance(subnet, str):
            named = {"max": self.space.max_subnet, "min": self.space.min_subnet, "default": self.space.default_subnet}
            if subnet not in named:
                raise InputError(f"subnet {subnet!r}: expected max, min, default or a dict")
            subnet = named[subnet]()
        elif isinstance(subnet, dict):
            subnet = Subnet.from_dict(subnet)
        self.check_subnet(subnet)
        return subnet

    def sample_subnet(self, rng: Optional[random.Random] = None) -> Subnet:
        return self.space.sample(rng or random)

    def max_subnet(self) -> Subnet:
        return self.space.max_subnet()

    def min_subnet(self) -> Subnet:
        return self.space.min_subnet()

    def default_subnet(self) -> Subnet:
        return self.space.default_subnet()

    def check_subnet(self, s: Subnet) -> None:
        """Fail, naming the dimension, when ``s`` does not fit in the supernet's weights."""
        c = self.encoder.config
        problems = []
        if not 0 < s.embed_dim <= c.hidden_size:
            problems.append(f"embed_dim {s.embed_dim} > supernet {c.hidden_size}")
        if c.pos_conv_kernel and s.embed_dim % c.pos_conv_groups:
            problems.append(f"embed_dim {s.embed_dim} is not divisible by the {c.pos_conv_groups} pos-conv groups")
        if not 0 < s.depth <= c.num_layers:
            problems.append(f"depth {s.depth} > supernet {c.num_layers}")
        if any(not 0 < h * self.head_dim <= c.hidden_size for h in s.heads):
            problems.append(f"heads {s.heads} x {self.head_dim} exceed the supernet's {c.hidden_size}")
        blocks = c.ffn_dim // c.hidden_size
        if any(not 0 < math.ceil(r) <= blocks for r in s.ffn_ratios):
            problems.append(f"FFN ratios {s.ffn_ratios} exceed the supernet's {blocks}")
        if problems:
            raise InputError(f"subnet {s.name()}: " + "; ".join(problems))

    def kept_layers(self, depth: int) -> List[int]:
        """Supernet indices of the layers a ``depth``-layer subnet runs."""
        n = self.encoder.config.num_layers
        keep = (
            OFFICIAL_KEEP_MAPS_12[depth]
            if n == 12 and depth in OFFICIAL_KEEP_MAPS_12
            else keep_map(n, depth, self.space.layer_blocks)
        )
        return [i for i, k in enumerate(keep) if k]

    def ffn_rows(self, subnet: Subnet, ratio: float) -> torch.Tensor:
        """FFN hidden units a layer of ``subnet`` keeps: block-wise, ``hidden_size`` per block."""
        e, block = subnet.embed_dim, self.encoder.config.hidden_size
        width = int(ratio * e)
        if e == block:
            return torch.arange(width)
        starts = [i * block for i in range(math.ceil(ratio))]
        return torch.cat([torch.arange(s, s + min(e, width - i * e)) for i, s in enumerate(starts)])

    # -- export ---------------------------------------------------------------------------------
    def export_config(self, subnet: Subnet) -> EncoderConfig:
        """The plain encoder config of ``subnet`` (per-layer heads and FFN widths)."""
        d = self.encoder.config.to_dict()
        d.update(
            hidden_size=subnet.embed_dim,
            num_layers=subnet.depth,
            num_heads=subnet.heads[0],
            head_dim=self.head_dim,
            ffn_dim=max(subnet.ffn_dims),
            layer_heads=list(subnet.heads),
            layer_ffn_dims=list(subnet.ffn_dims),
        )
        return EncoderConfig.from_dict(d)

    def subnet_state(self, subnet: Subnet, frontend: bool = True) -> Dict[str, torch.Tensor]:
        """The plain encoder's weights for ``subnet``, sliced from the supernet (differentiable)."""
        enc, e = self.encoder, subnet.embed_dim
        p = dict(enc.named_parameters())
        out: Dict[str, torch.Tensor] = {}
        if frontend:
            out.update({k: v for k, v in p.items() if k.startswith("frontend.")})
            out.update({k: v for k, v in enc.named_buffers() if k.startswith("frontend.")})
        for k in ("feature_projection.layer_norm.weight", "feature_projection.layer_norm.bias"):
            if k in p:
                out[k] = p[k]
        out["feature_projection.projection.weight"] = p["feature_projection.projection.weight"][:e]
        out["feature_projection.projection.bias"] = p["feature_projection.projection.bias"][:e]
        if enc.mask_embedding is not None:
            out["mask_embedding"] = p["mask_embedding"][:e]
        if enc.encoder.pos_conv is not None:
            conv = enc.encoder.pos_conv.conv
            groups = conv.groups
            w = conv.weight[:e, : e // groups]  # the supernet's weight-normed kernel, sliced
            prefix = "encoder.pos_conv.conv."
            out[prefix + "parametrizations.weight.original0"] = w.norm(dim=(0, 1), keepdim=True)
            out[prefix + "parametrizations.weight.original1"] = w
            out[prefix + "bias"] = conv.bias[:e]
        out["encoder.layer_norm.weight"] = p["encoder.layer_norm.weight"][:e]
        out["encoder.layer_norm.bias"] = p["encoder.layer_norm.bias"][:e]
        for j, i in enumerate(self.kept_layers(subnet.depth)):
            src, dst = f"encoder.layers.{i}.", f"encoder.layers.{j}."
            a = subnet.heads[j] * self.head_dim
            for proj in ("q_proj", "k_proj", "v_proj"):
                out[dst + f"self_attn.{proj}.weight"] = p[src + f"self_attn.{proj}.weight"][:a, :e]
                out[dst + f"self_attn.{proj}.bias"] = p[src + f"self_attn.{proj}.bias"][:a]
            out[dst + "self_attn.out_proj.weight"] = p[src + "self_attn.out_proj.weight"][:e, :a]
            out[dst + "self_attn.out_proj.bias"] = p[src + "self_attn.out_proj.bias"][:e]
            rows = self.ffn_rows(subnet, subnet.ffn_ratios[j]).to(p[src + "ffn.fc1.weight"].device)
            out[dst + "ffn.fc1.weight"] = p[src + "ffn.fc1.weight"][rows][:, :e]
            out[dst + "ffn.fc1.bias"] = p[src + "ffn.fc1.bias"][rows]
            out[dst + "ffn.fc2.weight"] = p[src + "ffn.fc2.weight"][:e][:, rows]
            out[dst + "ffn.fc2.bias"] = p[src + "ffn.fc2.bias"][:e]
            for norm in ("self_attn_norm", "ffn_norm"):
                out[dst + f"{norm}.weight"] = p[src + f"{norm}.weight"][:e]
                out[dst + f"{norm}.bias"] = p[src + f"{norm}.bias"][:e]
        return out

    def export(self, subnet: Union[Subnet, Dict, str, None] = None) -> SpeechEncoder:
        """A standalone :class:`SpeechEncoder` equal to the supernet running ``subnet`` (default: current)."""
        s = self.subnet if subnet is None else self.resolve_subnet(subnet)
        model = SpeechEncoder(self.export_config(s))
        with torch.no_grad():
            state = {k: v.detach().clone().contiguous() for k, v in self.subnet_state(s).items()}
        model.load_state_dict(state, strict=True)
        return model.eval()

    def subnet_parameters(self, subnet: Union[Subnet, Dict, str, None] = None) -> int:
        """Parameters of the exported plain model of ``subnet`` (prediction head not counted, as officially)."""
        s = self.subnet if subnet is None else self.resolve_subnet(subnet)
        c, e = self.encoder.config, s.embed_dim
        fixed = sum(
            p.numel()
            for name, p in self.encoder.named_parameters()
            if name.startswith(("frontend.", "feature_projection.layer_norm."))
        )
        n = fixed + self.encoder.frontend.output_dim * e + e + 2 * e  # projection, final norm
        n += e if self.encoder.mask_embedding is not None else 0
        if c.pos_conv_kernel:  # weight_v, weight_g, bias
            n += e * (e // c.pos_conv_groups) * c.pos_conv_kernel + c.pos_conv_kernel + e
        for heads, f in zip(s.heads, s.ffn_dims):
            a = heads * self.head_dim
            n += 4 * e * a + 3 * a + e + 2 * e * f + f + e + 4 * e  # attention, FFN, two norms
        return n

    def _plain(self, subnet: Subnet) -> nn.Module:
        """The plain encoder of ``subnet`` built on the meta device (weights come from the supernet)."""
        key = subnet.name()
        if key not in self._plain_cache:
            if len(self._plain_cache) > 64:
                self._plain_cache.clear()
            with torch.device("meta"):
                plain = SpeechEncoder(self.export_config(subnet))
            plain.frontend = self.encoder.frontend  # shared, real weights (not elastic)
            self._plain_cache[key] = _Features(plain)
        return self._plain_cache[key]

    # -- the folder format ----------------------------------------------------------------------
    def save(self, path: Union[str, Path], metadata: Optional[Dict] = None) -> Path:
        """``path``: the max network as an ordinary exported model (so every upstream command takes
        it), plus ``lighthubert.yaml`` (space, teacher width) and the prediction head."""

        path = save_model(self.encoder, path, metadata={**(metadata or {}), "lighthubert_supernet": True})
        spec = {"space": self.space.to_dict(), "teacher_dim": self.teacher_dim, "head_dim": self.head_dim}
        write_text(path / SPACE_FILE, OmegaConf.to_yaml(OmegaConf.create(spec)))
        with atomic_path(path / HEAD_FILE) as tmp:
            save_file({"weight": self.prediction_head.weight.detach().contiguous().cpu()}, str(tmp))
        return path


def count_parameters(config: EncoderConfig) -> int:
    """Parameters of the encoder ``config`` builds (on the meta device: no memory, no init)."""
    with torch.device("meta"):
        return sum(p.numel() for p in SpeechEncoder(config).parameters())


def load_supernet(path: Union[str, Path]) -> LightHubert:
    """A supernet folder written by :meth:`LightHubert.save`."""

    path = Path(path)
    if not (path / SPACE_FILE).is_file():
        raise MissingInputError(
            f"{path}: not a LightHuBERT supernet folder (no {SPACE_FILE}; made by `speechssl distill lighthubert`)"
        )
    spec = load_yaml_dict(path / SPACE_FILE)
    encoder = load_model(path)
    model = LightHubert(encoder.config, SearchSpace.from_dict(spec["space"]), spec["teacher_dim"])
    model.encoder.load_state_dict(encoder.state_dict())
    model.prediction_head.weight.data.copy_(load_safetensors(path / HEAD_FILE)["weight"])
    model.metadata = getattr(encoder, "metadata", {})
    return model.eval()


def build_supernet(
    model: str, space: Union[SearchSpace, str], teacher_dim: Optional[int] = None, **overrides
) -> LightHubert:
    """A fresh supernet from a registered encoder config (the max network) and a search space."""
    if not isinstance(space, SearchSpace):
        space = SearchSpace.load(space)
    return LightHubert(model_config(model, **overrides), space, teacher_dim)


def subnets_from_spec(spec: str, model: LightHubert) -> List[Subnet]:
    """``max`` / ``min`` / ``default``, a JSON dict, or a JSON/YAML file of one subnet or a list."""
    if spec in ("max", "min", "default"):
        return [model.resolve_subnet(spec)]
    p = Path(spec)
    if p.is_file():
        data = load_yaml_dict(p)
    else:
        try:
            data = json.loads(spec)
        except json.JSONDecodeError:
            raise InputError(f"subnet {spec!r}: not max/min/default, a file, or JSON") from None
    items: Sequence = data if isinstance(data, list) else [data]
    return [model.resolve_subnet(dict(d.get("subnet", d))) for d in items]
