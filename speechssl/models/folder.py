"""The exported-folder format: ``config.yaml`` (:class:`FolderConfig`, typed) + ``model.safetensors`` (+
``pretraining_heads.safetensors``). Kept apart from the registry so an encoder can save itself
(``SpeechEncoder.save_pretrained``) without an import cycle; :mod:`speechssl.models.registry` builds the model
from what :meth:`FolderConfig.read` returns."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

import torch
from omegaconf import OmegaConf
from safetensors.torch import save_file

from ..errors import InputError, MissingInputError
from ..utils.atomic import atomic_path, write_text
from ..utils.readers import load_yaml_dict

CONFIG_FILE, WEIGHTS_FILE, HEADS_FILE = "config.yaml", "model.safetensors", "pretraining_heads.safetensors"
SCHEMA = 1  # folders written before the field existed read as schema 1

Heads = Tuple[Dict, Dict[str, torch.Tensor]]  # (spec: what rebuilds them, state dict)


@dataclass(frozen=True)
class FolderConfig:
    """``config.yaml`` of an exported folder: the encoder's architecture (``model``, an ``EncoderConfig`` as a
    dict), free ``metadata`` (what trained it), and the spec of ``pretraining_heads.safetensors`` when the
    folder has them. Read and written only here: a folder of another schema, without a ``model`` section or
    without its weights is one error naming the file."""

    model: Dict[str, Any]
    metadata: Dict[str, Any] = field(default_factory=dict)
    heads: Optional[Dict[str, Any]] = None
    path: str = ""

    @classmethod
    def read(cls, folder: Union[str, Path]) -> FolderConfig:
        folder = Path(folder)
        if not (folder / CONFIG_FILE).is_file() or not (folder / WEIGHTS_FILE).is_file():
            raise MissingInputError(f"{folder}: not an exported model folder (need {CONFIG_FILE} and {WEIGHTS_FILE})")
        where = folder / CONFIG_FILE
        conf = load_yaml_dict(where)
        schema = conf.get("schema", 1)
        if schema != SCHEMA:
            raise InputError(
                f"{where}: exported folder of schema {schema!r}; this speechssl reads schema {SCHEMA} "
                "(export it again with the speechssl that trained it, or `speechssl convert` its weights)"
            )
        if not isinstance(conf.get("model"), dict):
            raise InputError(f"{where}: no 'model' section (the encoder's architecture)")
        for key in ("metadata", "heads"):
            if conf.get(key) is not None and not isinstance(conf[key], dict):
                raise InputError(f"{where}: '{key}' must be a mapping, got {type(conf[key]).__name__}")
        return cls(model=conf["model"], metadata=conf.get("metadata") or {}, heads=conf.get("heads"), path=str(where))

    def write(self, folder: Union[str, Path]) -> Path:
        """``folder/config.yaml``, atomically (written last by :func:`save_model`: the folder is then complete)."""
        conf = {"schema": SCHEMA, "model": self.model, "metadata": self.metadata}
        if self.heads:
            conf["heads"] = self.heads
        return write_text(Path(folder) / CONFIG_FILE, OmegaConf.to_yaml(OmegaConf.create(conf)))


def save_model(
    model: torch.nn.Module, path: Union[str, Path], metadata: Dict = None, heads: Optional[Heads] = None
) -> Path:
    """Write ``path/config.yaml`` and ``path/model.safetensors`` (each written atomically).

    ``heads``, as ``(spec, state)`` (``model.pretraining_heads`` of an imported or loaded encoder, or a
    pretraining model's), go to ``path/pretraining_heads.safetensors`` with their spec in ``config.yaml``: the
    weights stay with the encoder, and a pretraining model can be rebuilt from the folder. They are never
    carried implicitly: an encoder fine-tuned since would otherwise be saved with heads that no longer fit it.
    """
    path = Path(path)
    conf = FolderConfig(model=model.config.to_dict(), metadata=metadata or {}, heads=heads[0] if heads else None)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise InputError(
            f"{path}: refusing to export non-finite weights ({len(bad)} of {len(state)} tensors hold "
            f"NaN or inf, e.g. {bad[0]})"
        )
    path.mkdir(parents=True, exist_ok=True)
    with atomic_path(path / WEIGHTS_FILE) as tmp:
        save_file(state, str(tmp), metadata={"format": "pt", "speechssl": json.dumps(conf.metadata)})
    if heads:
        with atomic_path(path / HEADS_FILE) as tmp:
            save_file({k: v.detach().contiguous().cpu() for k, v in heads[1].items()}, str(tmp))
    conf.write(path)  # last: the folder is complete
    return path
