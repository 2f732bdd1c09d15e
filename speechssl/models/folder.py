"""The exported-folder format, written: ``config.yaml`` + ``model.safetensors`` (+ ``pretraining_heads.safetensors``).
Kept apart from the registry so an encoder can save itself (``SpeechEncoder.save_pretrained``) without an import
cycle; :mod:`speechssl.models.registry` reads the folders back."""

import json
from pathlib import Path
from typing import Dict, Optional, Tuple, Union

import torch
from omegaconf import OmegaConf
from safetensors.torch import save_file

from ..errors import InputError
from ..utils.atomic import atomic_path, write_text

CONFIG_FILE, WEIGHTS_FILE, HEADS_FILE = "config.yaml", "model.safetensors", "pretraining_heads.safetensors"

Heads = Tuple[Dict, Dict[str, torch.Tensor]]  # (spec: what rebuilds them, state dict)


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
    conf = {"model": model.config.to_dict(), "metadata": metadata or {}, **({"heads": heads[0]} if heads else {})}
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise InputError(
            f"{path}: refusing to export non-finite weights ({len(bad)} of {len(state)} tensors hold "
            f"NaN or inf, e.g. {bad[0]})"
        )
    path.mkdir(parents=True, exist_ok=True)
    with atomic_path(path / WEIGHTS_FILE) as tmp:
        save_file(state, str(tmp), metadata={"format": "pt", "speechssl": json.dumps(conf["metadata"])})
    if heads:
        with atomic_path(path / HEADS_FILE) as tmp:
            save_file({k: v.detach().contiguous().cpu() for k, v in heads[1].items()}, str(tmp))
    write_text(path / CONFIG_FILE, OmegaConf.to_yaml(OmegaConf.create(conf)))  # last: the folder is complete
    return path
