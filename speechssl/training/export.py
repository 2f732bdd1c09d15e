"""Exported folders of models that are not upstreams (vocoders, acoustic models, ASD):
``<kind>.yaml`` (what to rebuild it from, with its schema) + ``model.safetensors``."""

from pathlib import Path
from typing import Callable, Optional

import torch
from omegaconf import OmegaConf
from safetensors.torch import save_file

from ..errors import InputError, MissingInputError
from ..utils.atomic import atomic_path, write_text
from ..utils.readers import load_safetensors, load_yaml_dict

SCHEMA = 1  # specs written before the field existed read as schema 1


def save_export(model: torch.nn.Module, out: Path, kind: str, spec: dict) -> Path:
    """``out/<kind>.yaml`` (what to rebuild it from) + ``out/model.safetensors``, each written atomically."""

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "model.safetensors") as tmp:
        save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(tmp))
    spec = OmegaConf.to_container(spec) if OmegaConf.is_config(spec) else dict(spec)
    write_text(out / f"{kind}.yaml", OmegaConf.to_yaml({"schema": SCHEMA, **spec}))  # last: the folder is complete
    return out


def read_export_spec(path, kind: str) -> dict:
    """``path/<kind>.yaml`` as a dict, its schema checked (one error naming the file otherwise)."""
    f = Path(path) / f"{kind}.yaml"
    if not f.is_file():
        raise MissingInputError(f"{path}: no {kind}.yaml (not an exported {kind} folder)")
    spec = load_yaml_dict(f)
    schema = spec.get("schema", 1)
    if schema != SCHEMA:
        raise InputError(
            f"{f}: {kind} export of schema {schema!r}; this speechssl reads schema {SCHEMA} (train it again)"
        )
    return spec


def load_export(path, kind: str, config_key: str, schema, build: Callable, spec: Optional[dict] = None) -> tuple:
    """An exported folder -> ``(model in eval mode, spec dict)``; ``spec``: its ``<kind>.yaml`` when the caller
    already read it (:func:`read_export_spec`)."""

    path = Path(path)
    spec = read_export_spec(path, kind) if spec is None else spec
    if not isinstance(spec.get(config_key), dict):
        raise InputError(f"{path / f'{kind}.yaml'}: no '{config_key}' section (not a {config_key} export)")
    model = build(OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), spec[config_key])))
    model.load_state_dict(load_safetensors(path / "model.safetensors"))
    return model.eval(), spec
