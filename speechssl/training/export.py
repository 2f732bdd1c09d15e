"""Exported folders of models that are not upstreams (vocoders, acoustic models, ASD):
``<kind>.yaml`` (what to rebuild it from) + ``model.safetensors``."""

from pathlib import Path
from typing import Callable

import torch
from omegaconf import OmegaConf
from safetensors.torch import save_file

from ..errors import MissingInputError
from ..utils.atomic import atomic_path, write_text
from ..utils.readers import load_safetensors, load_yaml_dict


def save_export(model: torch.nn.Module, out: Path, kind: str, spec: dict) -> Path:
    """``out/<kind>.yaml`` (what to rebuild it from) + ``out/model.safetensors``, each written atomically."""

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "model.safetensors") as tmp:
        save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(tmp))
    write_text(out / f"{kind}.yaml", OmegaConf.to_yaml(spec))
    return out


def load_export(path, kind: str, config_key: str, schema, build: Callable) -> tuple:
    """An exported folder -> ``(model in eval mode, spec dict)``."""

    path = Path(path)
    if not (path / f"{kind}.yaml").is_file():
        raise MissingInputError(f"{path}: not a {config_key} export (no {kind}.yaml)")
    spec = load_yaml_dict(path / f"{kind}.yaml")
    model = build(OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), spec[config_key])))
    model.load_state_dict(load_safetensors(path / "model.safetensors"))
    return model.eval(), spec
