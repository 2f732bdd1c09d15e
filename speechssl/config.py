"""YAML configs read with omegaconf into structured dataclass schemas.

``load_config(Schema, "conf/pretrain/hubert_mini.yaml", ["optim.lr=1e-3"])`` merges, in order,
the schema defaults, the YAML file(s) and ``key=value`` overrides. A key that is not in the
schema fails with the closest valid name, a value of the wrong type fails naming the key, and a
required value left unset fails naming it.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import re
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple, Type, TypeVar

from omegaconf import MISSING, OmegaConf
from omegaconf.errors import ConfigKeyError, MissingMandatoryValue, ValidationError

from .errors import ConfigError, MissingInputError
from .utils.readers import load_yaml

T = TypeVar("T")
log = logging.getLogger(__name__)
CONF_DIR = Path(__file__).resolve().parent / "conf"  # shipped in the wheel (package_data)


def resolve_conf(path: str) -> Path:
    """``path`` as given, else relative to the package's ``conf/`` (``pretrain/hubert_mini.yaml``)."""
    p = Path(path)
    if p.is_file():
        return p
    for cand in (CONF_DIR / path, CONF_DIR / f"{path}.yaml"):
        if cand.exists():
            return cand
    raise MissingInputError(f"config {path}: no such file (nor under {CONF_DIR})")


def _suggest(schema, key: str) -> str:
    node = schema
    parts = key.split(".")
    for p in parts[:-1]:
        if not OmegaConf.is_config(node) or p not in node:
            break
        node = node[p]
    if OmegaConf.is_config(node):
        close = difflib.get_close_matches(parts[-1], [str(k) for k in node.keys()], 1)
        if close:
            return f" (did you mean {'.'.join(parts[:-1] + close)}?)"
    return ""


BASE_LINE = re.compile(r"^#\s*base:\s*(.+)$", re.MULTILINE)


def bases_of(path: Path) -> List[str]:
    """The files a config is layered on, from its ``# base: a/b c/d`` line (empty without one)."""
    m = BASE_LINE.search(Path(path).read_text(encoding="utf-8"))
    return m.group(1).split() if m else []


def _resolve_base(name: str, including: Path) -> Path:
    """A ``# base:`` name, looked up under the including file's folders first (a conf tree of one's own),
    then as :func:`resolve_conf` does."""
    for root in including.parents:
        for cand in (root / name, root / f"{name}.yaml"):
            if cand.is_file():
                return cand
    return resolve_conf(name)


def expand_bases(paths: Sequence[str]) -> List[Path]:
    """``paths`` with every file's ``# base:`` files (recursively) put before it; a file already in the list
    is not read twice (``pretrain/hubert_mini pretrain/hubert_demo`` and ``pretrain/hubert_demo`` alone are
    the same config). A base that names itself, directly or not, is an error naming the chain."""
    out: List[Path] = []

    def visit(path: str, chain: List[Path]) -> None:
        resolved = (_resolve_base(path, chain[-1]) if chain else resolve_conf(path)).resolve()
        if resolved in chain:
            raise ConfigError(f"config {path}: '# base:' loop: {' -> '.join(str(c) for c in chain + [resolved])}")
        if resolved in out:
            return
        for base in bases_of(resolved):
            visit(base, chain + [resolved])
        out.append(resolved)

    for p in paths:
        visit(p, [])
    return out


def _display_name(path: Path) -> str:
    """``conf/<rel>`` for a shipped config, the path as resolved otherwise."""
    try:
        return f"conf/{path.relative_to(CONF_DIR.resolve()).as_posix()}"
    except ValueError:
        return str(path)


def _moved_keys(cfg, name: str, moved: Dict[str, str]):
    """``cfg`` with each old key of ``moved`` (``{old dotted key: new dotted key}``, a schema's ``MOVED_KEYS``)
    put under its new name, with a warning naming the file; a source that sets both is refused."""
    for old, new in moved.items():
        parent_key, _, leaf = old.rpartition(".")
        parent = OmegaConf.select(cfg, parent_key) if parent_key else cfg
        if not OmegaConf.is_dict(parent) or leaf not in parent:
            continue
        if OmegaConf.select(cfg, new, default=None) is not None:
            raise ConfigError(f"{name}: {old!r} and {new!r} are the same setting: give only {new!r}")
        OmegaConf.update(cfg, new, parent.pop(leaf), force_add=True)
        log.warning("%s: %r is now %r (read as such; the old name will go)", name, old, new)
    return cfg


def config_sources(
    paths: Sequence[str] = (), overrides: Sequence[str] = (), moved: Dict[str, str] = None
) -> List[Tuple[str, Any]]:
    """``[(name, DictConfig)]`` in merge order: each YAML after its bases, then the command line; keys a schema
    has moved (``moved``) are read under their new names."""
    sources: List[Tuple[str, Any]] = [(_display_name(p), load_yaml(p)) for p in expand_bases(paths)]
    if overrides:
        bad = [o for o in overrides if "=" not in o]
        if bad:
            raise ConfigError(f"overrides must be key=value, got {bad}")
        sources.append(("command line", OmegaConf.from_dotlist(list(overrides))))
    return [(name, _moved_keys(cfg, name, moved)) for name, cfg in sources] if moved else sources


def value_origins(paths: Sequence[str] = (), overrides: Sequence[str] = (), schema: Type = None) -> Dict[str, str]:
    """``{dotted key: where its value came from}`` for every key a file or the command line sets (the last
    setter wins, as in the merge); keys absent here keep the schema default."""
    origins: Dict[str, str] = {}

    def walk(node, prefix: str, name: str) -> None:
        for k, v in node.items():
            key = f"{prefix}{k}"
            if OmegaConf.is_dict(v) and len(v):
                walk(v, key + ".", name)
            else:
                origins[key] = name

    for name, cfg in config_sources(paths, overrides, getattr(schema, "MOVED_KEYS", None)):
        walk(cfg, "", name)
    return origins


def load_config(schema: Type[T], paths: Sequence[str] = (), overrides: Sequence[str] = ()) -> T:
    """Schema defaults <- each YAML in ``paths`` (after its ``# base:`` files) <- ``overrides``; returns a
    dataclass instance. Keys the schema has moved (its ``MOVED_KEYS``, ``{old dotted key: new}``) are read under
    their new names with a warning."""
    base = OmegaConf.structured(schema)
    merged = base
    for name, cfg in config_sources(paths, overrides, getattr(schema, "MOVED_KEYS", None)):
        try:
            merged = OmegaConf.merge(merged, cfg)
        except ConfigKeyError as e:
            key = getattr(e, "full_key", None) or str(e)
            raise ConfigError(f"{name}: unknown config key {key!r}{_suggest(base, str(key))}") from None
        except ValidationError as e:
            raise ConfigError(f"{name}: bad value for {getattr(e, 'full_key', '?')!r}: {e.msg}") from None
    try:
        obj = OmegaConf.to_object(merged)
    except MissingMandatoryValue as e:
        raise ConfigError(f"config value {e.full_key!r} is required but was not set") from None
    check_ranges(obj)
    if hasattr(obj, "validate"):
        obj.validate()
    return obj


# Ranges every schema shares, by the field's own name, wherever it sits in a config tree.
POSITIVE = {
    "max_steps",
    "total_steps",
    "batch_seconds",
    "batch_size",
    "lr",
    "val_every_steps",
    "checkpoint_every_steps",
    "log_every_steps",
    "accumulate",
    "num_layers",
    "hidden_size",
    "num_heads",
    "ffn_dim",
    "num_codes",
    "codebook_groups",
    "final_dim",
    "segment_frames",
}
NON_NEGATIVE = {
    "warmup_steps",
    "weight_decay",
    "grad_clip",
    "min_seconds",
    "num_workers",
    "mask_length",
    "min_masks",
    "keep_checkpoints",
    "layerdrop",
}
UNIT_INTERVAL = {"mask_prob", "dropout", "attention_dropout", "activation_dropout", "feature_dropout", "layerdrop"}


def check_ranges(obj, prefix: str = "") -> None:
    """Every field of ``obj`` (a dataclass tree) named in the tables above is in its range; the first that is
    not fails naming its full key."""
    if not dataclasses.is_dataclass(obj):
        return
    for f in dataclasses.fields(obj):
        value, key = getattr(obj, f.name), f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            check_ranges(value, key + ".")
            continue
        if isinstance(value, dict):  # model_overrides: the same names, the same ranges
            for k, v in value.items():
                _check_value(f"{key}.{k}", k, v)
            continue
        _check_value(key, f.name, value)


def _check_value(key: str, name: str, value) -> None:
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    if name in POSITIVE and not value > 0:
        raise ConfigError(f"{key} must be > 0, got {value}")
    if name in NON_NEGATIVE and value < 0:
        raise ConfigError(f"{key} must be >= 0, got {value}")
    if name in UNIT_INTERVAL and not 0 <= value <= 1:
        raise ConfigError(f"{key} must be in [0, 1], got {value}")


def to_yaml(cfg, origins: Dict[str, str] = None) -> str:
    """The config as YAML; with ``origins`` (:func:`value_origins`) each leaf set by a file or the command line
    says where from in a trailing comment."""
    text = OmegaConf.to_yaml(OmegaConf.structured(cfg))
    if not origins:
        return text
    lines, stack = [], []
    for line in text.splitlines():
        body = line.lstrip(" ")
        if not body or body.startswith("- ") or ":" not in body:
            lines.append(line)
            continue
        depth = (len(line) - len(body)) // 2
        key, _, rest = body.partition(":")
        stack[depth:] = [key]
        where = origins.get(".".join(stack))
        lines.append(f"{line}  # {where}" if where and rest.strip() else line)
    return "\n".join(lines) + "\n"


__all__ = ["MISSING", "ConfigError", "load_config", "resolve_conf", "to_yaml", "CONF_DIR"]
