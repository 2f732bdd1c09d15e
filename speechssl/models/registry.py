"""Named model configs, builders, and the exported-folder format (config.yaml + model.safetensors)."""

import difflib
from pathlib import Path
from typing import Callable, Dict, Optional, Union

import torch

from ..errors import InputError, NotFoundError
from ..utils.memory import check_fits
from ..utils.readers import load_safetensors
from .encoder import EncoderConfig, SpeechEncoder
from .folder import CONFIG_FILE, HEADS_FILE, WEIGHTS_FILE, FolderConfig, Heads, save_model  # noqa: F401 (re-exported)

_CONFIGS: Dict[str, Callable[[], EncoderConfig]] = {}

# Exported folders made before pretraining heads left the encoder kept HuBERT's inside it under these names.
LEGACY_HEAD_KEYS = ("final_proj.weight", "final_proj.bias", "label_embeddings")


def register(name: str):
    """Decorator: register a function returning an :class:`EncoderConfig` under ``name``."""

    def wrap(fn: Callable[[], EncoderConfig]):
        if name in _CONFIGS:
            raise InputError(f"model config {name!r} registered twice")
        _CONFIGS[name] = fn
        return fn

    return wrap


def available_models():
    return sorted(_CONFIGS)


def model_config(name: str, **overrides) -> EncoderConfig:
    """The named config with ``overrides`` applied (unknown fields fail with a suggestion)."""
    if name not in _CONFIGS:
        close = difflib.get_close_matches(name, _CONFIGS, 3)
        raise NotFoundError(
            f"unknown model {name!r}"
            + (f"; did you mean {', '.join(close)}?" if close else "")
            + f" (available: {', '.join(available_models())})"
        )
    cfg = _CONFIGS[name]().to_dict()
    cfg.update(overrides)
    return EncoderConfig.from_dict(cfg)


def build_model(name_or_config: Union[str, EncoderConfig], **overrides) -> SpeechEncoder:
    """A randomly initialised encoder; its size is checked against the free memory before any weight is allocated."""
    cfg = model_config(name_or_config, **overrides) if isinstance(name_or_config, str) else name_or_config
    if torch.get_default_device().type != "meta":
        with torch.device("meta"):  # shapes only: a typo like hidden_size=65536 is refused, not allocated
            n = sum(p.numel() for p in SpeechEncoder(cfg).parameters())
        name = name_or_config if isinstance(name_or_config, str) else "the configured encoder"
        check_fits(
            4 * n,
            f"{name} with {overrides or 'its defaults'} ({n / 1e9:.2f}B parameters, float32 weights)",
            "check model / model_overrides (--dry-run shows the plan without allocating)",
        )
    return SpeechEncoder(cfg)


def load_model(path: Union[str, Path], map_location: str = "cpu") -> SpeechEncoder:
    """Load an exported folder into a :class:`SpeechEncoder` (any other source: ``speechssl.from_pretrained``)."""
    path = Path(path)
    if not path.exists() and str(path) in _CONFIGS:
        raise InputError(
            f"{path!s} is an architecture name, not an exported folder: speechssl.from_pretrained("
            f"{str(path)!r}) loads published weights, build_model({str(path)!r}) random ones"
        )
    conf = FolderConfig.read(path)
    model = SpeechEncoder(EncoderConfig.from_dict(conf.model))
    state = load_safetensors(path / WEIGHTS_FILE, device=map_location)
    heads = _legacy_heads(conf.model, state)
    load_state_strict(model, state, str(path / WEIGHTS_FILE))
    model.metadata = conf.metadata
    if conf.heads and (path / HEADS_FILE).is_file():
        heads = (conf.heads, load_safetensors(path / HEADS_FILE, device=map_location))
    if heads:
        model.pretraining_heads = heads
    return model.eval()


def _legacy_heads(model_conf: Dict, state: Dict[str, torch.Tensor]) -> Optional[Heads]:
    """HuBERT heads of a folder written when they lived in the encoder: taken out of ``state``."""
    num_classes = model_conf.get("num_classes") or []
    if not num_classes:
        return None
    heads = {k: state.pop(k) for k in LEGACY_HEAD_KEYS if k in state}
    return {"kind": "hubert", "num_classes": list(num_classes), "final_dim": model_conf.get("final_dim", 256)}, heads


def load_state_strict(model: torch.nn.Module, state: Dict[str, torch.Tensor], source: str) -> None:
    """``load_state_dict`` that names every missing, unexpected or mis-shaped key."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in set(own) & set(state)
        if own[k].shape != state[k].shape
    )
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing keys ({len(missing)}): {', '.join(missing)}")
        if unexpected:
            parts.append(f"unexpected keys ({len(unexpected)}): {', '.join(unexpected)}")
        if shapes:
            parts.append(f"shape mismatches: {'; '.join(shapes)}")
        raise NotFoundError(f"{source}: weights do not fit the model: " + " | ".join(parts))
    model.load_state_dict(state, strict=True)
