"""LightHuBERT's search space: which subnets a supernet holds (:class:`Subnet`, :class:`SearchSpace`), the
official depth keep-map and the official spaces. :mod:`speechssl.models.lighthubert` holds the supernet."""

from __future__ import annotations

import difflib
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Union

from ..config import resolve_conf
from ..errors import InputError
from ..utils.readers import load_yaml_dict

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
    def from_dict(cls, d: Dict) -> Subnet:
        d = dict(d)
        depth = d.pop("depth", None)
        unknown = sorted(set(d) - {"embed_dim", "heads", "ffn_ratios", "ffn_ratio"})
        if unknown:
            raise InputError(f"subnet: unknown fields {unknown} (expected embed_dim, heads, ffn_ratios, depth)")
        heads, ratios = d.get("heads"), d.get("ffn_ratios", d.get("ffn_ratio"))
        if heads is None or ratios is None or "embed_dim" not in d:
            raise InputError(f"subnet {d}: needs embed_dim, heads and ffn_ratios")
        n = depth or (
            len(heads)
            if isinstance(heads, (list, tuple))
            else len(ratios)
            if isinstance(ratios, (list, tuple))
            else None
        )
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
    default: Dict = field(default_factory=dict)  # embed_dim, heads, ffn_ratio, depth of the default subnet
    layer_blocks: int = 3  # blocks of the depth keep-map

    def validate(self) -> SearchSpace:
        for name in ("embed_dims", "heads", "ffn_ratios", "depths"):
            if not getattr(self, name):
                raise InputError(f"search space: {name} is empty")
        self.default_subnet()
        return self

    def num_subnets(self) -> int:
        """``|embed| * sum_d (|heads| * |ratios|)^d``: the official count (Base 6,530,347,008)."""
        per_layer = len(set(self.heads)) * len(set(self.ffn_ratios))
        return len(set(self.embed_dims)) * sum(per_layer**d for d in set(self.depths))

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
        return Subnet(
            rng.choice(self.embed_dims),
            [rng.choice(self.heads) for _ in range(depth)],
            [rng.choice(self.ffn_ratios) for _ in range(depth)],
        )

    def contains(self, s: Subnet) -> bool:
        return (
            s.embed_dim in self.embed_dims
            and s.depth in self.depths
            and all(h in self.heads for h in s.heads)
            and all(r in self.ffn_ratios for r in s.ffn_ratios)
        )

    def to_dict(self) -> Dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Dict) -> SearchSpace:
        known = {"embed_dims", "heads", "ffn_ratios", "depths", "default", "layer_blocks"}
        unknown = sorted(set(d) - known)
        if unknown:
            hints = {k: difflib.get_close_matches(k, known, 1) for k in unknown}
            raise InputError(
                "search space: unknown fields "
                + ", ".join(k + (f" (did you mean {h[0]}?)" if h else "") for k, h in hints.items())
            )
        return cls(**d).validate()

    @classmethod
    def load(cls, path: Union[str, Path]) -> SearchSpace:
        """A YAML file, or a name under conf/ (``lighthubert/space_base``)."""

        p = str(path)
        try:
            file = resolve_conf(p)
        except FileNotFoundError:
            file = resolve_conf(p + ".yaml")
        d = load_yaml_dict(file)
        try:
            return cls.from_dict(d)
        except (TypeError, ValueError) as e:
            raise InputError(f"{file}: {e}") from None


# The official spaces (conf/lighthubert/space_{base,small}.yaml hold the same; a test keeps them equal).
OFFICIAL_SPACES = {
    "base": dict(
        embed_dims=[512, 640, 768],
        heads=[8, 10, 12],
        ffn_ratios=[3.5, 4.0],
        depths=[12],
        default={"embed_dim": 640, "heads": 10, "ffn_ratio": 4.0},
    ),
    "small": dict(
        embed_dims=[256, 384, 512],
        heads=[4, 6, 8],
        ffn_ratios=[3.0, 3.5, 4.0],
        depths=[10, 11, 12],
        default={"embed_dim": 384, "heads": 6, "ffn_ratio": 4.0},
    ),
}
