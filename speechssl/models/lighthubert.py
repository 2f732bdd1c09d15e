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

import difflib
import json
import math
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import torch
from omegaconf import OmegaConf
from safetensors.torch import load_file, save_file
from torch import nn
from torch.func import functional_call

from ..config import resolve_conf
from ..errors import InputError, MissingInputError
from ..utils.atomic import atomic_path, write_text
from .encoder import EncoderConfig, SpeechEncoder, normalize_waveform
from .registry import load_model, model_config, save_model
from .upstream import UpstreamBase, UpstreamOutput

SPACE_FILE, HEAD_FILE = "lighthubert.yaml", "prediction_head.safetensors"

# The official depth table for a 12-layer supernet (layer blocks 1-4, 5-8, 9-12; 1 keeps a layer).
OFFICIAL_KEEP_MAPS_12 = {
    6: [1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0],
    7: [1, 1, 1, 0, 1, 1, 0, 0, 1, 1, 0, 0],
    8: [1, 1, 1, 0, 1, 1, 1, 0, 1, 1, 0, 0],
    9: [1, 1, 1, 0, 1, 1, 1, 0, 1, 1, 1, 0],
    10: [1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 0],
    11: [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0],
    12: [1] * 12,
}


def keep_map(num_layers: int, depth: int, blocks: int = 3) -> List[bool]:
    """Which supernet layers a ``depth``-layer subnet keeps.

    The layers form ``blocks`` contiguous blocks; layers are dropped one at a time from the end of
    a block, going round the blocks from the last to the first. For 12 layers this is the official
    table (:data:`OFFICIAL_KEEP_MAPS_12`, tested).
    """
    if not 1 <= depth <= num_layers:
        raise InputError(f"depth {depth} is not in 1..{num_layers}")
    blocks = max(1, min(blocks, depth))
    bounds = [round(i * num_layers / blocks) for i in range(blocks + 1)]
    kept = [list(range(bounds[i], bounds[i + 1])) for i in range(blocks)]
    turn = 0
    for _ in range(num_layers - depth):
        while len(kept[blocks - 1 - turn % blocks]) <= 1:
            turn += 1
        kept[blocks - 1 - turn % blocks].pop()
        turn += 1
    keep = {i for block in kept for i in block}
    return [i in keep for i in range(num_layers)]


@dataclass
class Subnet:
    """One architecture of the supernet: an embedding dim and, per kept layer, heads and FFN ratio."""

    embed_dim: int
    heads: List[int]
    ffn_ratios: List[float]

    def __post_init__(self):
        self.heads = [int(h) for h in self.heads]
        self.ffn_ratios = [float(r) for r in self.ffn_ratios]
        if len(self.heads) != len(self.ffn_ratios):
            raise InputError(f"subnet: {len(self.heads)} head counts but {len(self.ffn_ratios)} FFN ratios")

    @property
    def depth(self) -> int:
        return len(self.heads)

    @property
    def ffn_dims(self) -> List[int]:
        return [int(r * self.embed_dim) for r in self.ffn_ratios]

    def to_dict(self) -> Dict:
        return {"embed_dim": self.embed_dim, "heads": list(self.heads), "ffn_ratios": list(self.ffn_ratios)}

    @classmethod
    def from_dict(cls, d: Dict) -> "Subnet":
        d = dict(d)
        depth = d.pop("depth", None)
        unknown = sorted(set(d) - {"embed_dim", "heads", "ffn_ratios", "ffn_ratio"})
        if unknown:
            raise InputError(f"subnet: unknown fields {unknown} (expected embed_dim, heads, ffn_ratios, depth)")
        heads, ratios = d.get("heads"), d.get("ffn_ratios", d.get("ffn_ratio"))
        if heads is None or ratios is None or "embed_dim" not in d:
            raise InputError(f"subnet {d}: needs embed_dim, heads and ffn_ratios")
        n = depth or (len(heads) if isinstance(heads, (list, tuple)) else
                      len(ratios) if isinstance(ratios, (list, tuple)) else None)
        if n is None:
            raise InputError(f"subnet {d}: give depth when heads and ffn_ratios are single values")
        heads = list(heads) if isinstance(heads, (list, tuple)) else [heads] * n
        ratios = list(ratios) if isinstance(ratios, (list, tuple)) else [ratios] * n
        return cls(int(d["embed_dim"]), heads, ratios)

    def name(self) -> str:
        """A short stable name, e.g. ``e640-h10x12-r4.0x12`` (runs of equal values collapsed)."""
        def runs(values):
            out, i = [], 0
            while i < len(values):
                j = i
                while j < len(values) and values[j] == values[i]:
                    j += 1
                out.append(f"{values[i]:g}x{j - i}" if j - i > 1 else f"{values[i]:g}")
                i = j
            return ".".join(out)
        return f"e{self.embed_dim}-h{runs(self.heads)}-r{runs(self.ffn_ratios)}"


@dataclass
class SearchSpace:
    """The choices of a supernet (conf/lighthubert/space_*.yaml)."""

    embed_dims: List[int] = field(default_factory=list)
    heads: List[int] = field(default_factory=list)
    ffn_ratios: List[float] = field(default_factory=list)
    depths: List[int] = field(default_factory=list)
    default: Dict = field(default_factory=dict)   # embed_dim, heads, ffn_ratio, depth of the default subnet
    layer_blocks: int = 3                          # blocks of the depth keep-map

    def validate(self) -> "SearchSpace":
        for name in ("embed_dims", "heads", "ffn_ratios", "depths"):
            if not getattr(self, name):
                raise InputError(f"search space: {name} is empty")
        self.default_subnet()
        return self

    def num_subnets(self) -> int:
        """``|embed| * sum_d (|heads| * |ratios|)^d``: the official count (Base 6,530,347,008)."""
        per_layer = len(set(self.heads)) * len(set(self.ffn_ratios))
        return len(set(self.embed_dims)) * sum(per_layer ** d for d in set(self.depths))

    def max_subnet(self) -> Subnet:
        d = max(self.depths)
        return Subnet(max(self.embed_dims), [max(self.heads)] * d, [max(self.ffn_ratios)] * d)

    def min_subnet(self) -> Subnet:
        d = min(self.depths)
        return Subnet(min(self.embed_dims), [min(self.heads)] * d, [min(self.ffn_ratios)] * d)

    def default_subnet(self) -> Subnet:
        if not self.default:
            return self.max_subnet()
        return Subnet.from_dict({"depth": max(self.depths), **self.default})

    def sample(self, rng: random.Random) -> Subnet:
        """Uniform over each choice: depth, embedding dim, then heads and ratio per layer."""
        depth = rng.choice(self.depths)
        return Subnet(rng.choice(self.embed_dims), [rng.choice(self.heads) for _ in range(depth)],
                      [rng.choice(self.ffn_ratios) for _ in range(depth)])

    def contains(self, s: Subnet) -> bool:
        return (s.embed_dim in self.embed_dims and s.depth in self.depths
                and all(h in self.heads for h in s.heads) and all(r in self.ffn_ratios for r in s.ffn_ratios))

    def to_dict(self) -> Dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Dict) -> "SearchSpace":
        known = {"embed_dims", "heads", "ffn_ratios", "depths", "default", "layer_blocks"}
        unknown = sorted(set(d) - known)
        if unknown:
            hints = {k: difflib.get_close_matches(k, known, 1) for k in unknown}
            raise InputError("search space: unknown fields " + ", ".join(
                k + (f" (did you mean {h[0]}?)" if h else "") for k, h in hints.items()))
        return cls(**d).validate()

    @classmethod
    def load(cls, path: Union[str, Path]) -> "SearchSpace":
        """A YAML file, or a name under conf/ (``lighthubert/space_base``)."""

        p = str(path)
        try:
            file = resolve_conf(p)
        except FileNotFoundError:
            file = resolve_conf(p + ".yaml")
        d = OmegaConf.to_container(OmegaConf.load(file))
        try:
            return cls.from_dict(d)
        except (TypeError, ValueError) as e:
            raise InputError(f"{file}: {e}") from None


# The official spaces (conf/lighthubert/space_{base,small}.yaml hold the same; a test keeps them equal).
OFFICIAL_SPACES = {
    "base": dict(embed_dims=[512, 640, 768], heads=[8, 10, 12], ffn_ratios=[3.5, 4.0], depths=[12],
                 default={"embed_dim": 640, "heads": 10, "ffn_ratio": 4.0}),
    "small": dict(embed_dims=[256, 384, 512], heads=[4, 6, 8], ffn_ratios=[3.0, 3.5, 4.0], depths=[10, 11, 12],
                  default={"embed_dim": 384, "heads": 6, "ffn_ratio": 4.0}),
}


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
            raise InputError("a LightHuBERT supernet is a uniform Transformer with conv positions "
                             f"(got encoder={config.encoder}, position={config.position})")
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

    def forward(self, wavs: torch.Tensor, lengths: Optional[torch.Tensor] = None, *,
                num_layers: Optional[int] = None, time_mask: Optional[torch.Tensor] = None) -> UpstreamOutput:
        """The current subnet on a waveform batch (see :meth:`SpeechEncoder.forward`)."""
        lengths = self.check_input(wavs, lengths)
        if self.encoder.config.normalize_waveform:
            wavs = normalize_waveform(wavs, lengths)
        feats, frames = self.encoder.frontend(wavs, lengths)
        return self.forward_features(feats, frames, time_mask=time_mask, num_layers=num_layers)

    def forward_features(self, feats: torch.Tensor, frames: torch.Tensor, *,
                         time_mask: Optional[torch.Tensor] = None,
                         num_layers: Optional[int] = None) -> UpstreamOutput:
        """The current subnet from frontend output ``feats [B, T', C]`` (the CNN is not elastic)."""
        plain = self._plain(self.subnet)
        state = {f"encoder.{k}": v for k, v in self.subnet_state(self.subnet, frontend=False).items()}
        plain.train(self.training)
        return functional_call(plain, state, (feats, frames), {"time_mask": time_mask, "num_layers": num_layers},
                               strict=False)

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
        keep = OFFICIAL_KEEP_MAPS_12[depth] if n == 12 and depth in OFFICIAL_KEEP_MAPS_12 else \
            keep_map(n, depth, self.space.layer_blocks)
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
        d.update(hidden_size=subnet.embed_dim, num_layers=subnet.depth, num_heads=subnet.heads[0],
                 head_dim=self.head_dim, ffn_dim=max(subnet.ffn_dims), layer_heads=list(subnet.heads),
                 layer_ffn_dims=list(subnet.ffn_dims), num_classes=[])
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
            w = conv.weight[:e, : e // groups]          # the supernet's weight-normed kernel, sliced
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
        fixed = sum(p.numel() for name, p in self.encoder.named_parameters()
                    if name.startswith(("frontend.", "feature_projection.layer_norm.")))
        n = fixed + self.encoder.frontend.output_dim * e + e + 2 * e             # projection, final norm
        n += e if self.encoder.mask_embedding is not None else 0
        if c.pos_conv_kernel:                                                    # weight_v, weight_g, bias
            n += e * (e // c.pos_conv_groups) * c.pos_conv_kernel + c.pos_conv_kernel + e
        for heads, f in zip(s.heads, s.ffn_dims):
            a = heads * self.head_dim
            n += 4 * e * a + 3 * a + e + 2 * e * f + f + e + 4 * e               # attention, FFN, two norms
        return n

    def _plain(self, subnet: Subnet) -> nn.Module:
        """The plain encoder of ``subnet`` built on the meta device (weights come from the supernet)."""
        key = subnet.name()
        if key not in self._plain_cache:
            if len(self._plain_cache) > 64:
                self._plain_cache.clear()
            with torch.device("meta"):
                plain = SpeechEncoder(self.export_config(subnet))
            plain.frontend = self.encoder.frontend      # shared, real weights (not elastic)
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
        raise MissingInputError(f"{path}: not a LightHuBERT supernet folder (no {SPACE_FILE}; "
                                f"made by `speechssl distill lighthubert`)")
    spec = OmegaConf.to_container(OmegaConf.load(path / SPACE_FILE))
    encoder = load_model(path)
    model = LightHubert(encoder.config, SearchSpace.from_dict(spec["space"]), spec["teacher_dim"])
    model.encoder.load_state_dict(encoder.state_dict())
    model.prediction_head.weight.data.copy_(load_file(str(path / HEAD_FILE))["weight"])
    model.metadata = getattr(encoder, "metadata", {})
    return model.eval()


def build_supernet(model: str, space: Union[SearchSpace, str], teacher_dim: Optional[int] = None,
                   **overrides) -> LightHubert:
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
        data = OmegaConf.to_container(OmegaConf.load(p))
    else:
        try:
            data = json.loads(spec)
        except json.JSONDecodeError:
            raise InputError(f"subnet {spec!r}: not max/min/default, a file, or JSON") from None
    items: Sequence = data if isinstance(data, list) else [data]
    return [model.resolve_subnet(dict(d.get("subnet", d))) for d in items]
