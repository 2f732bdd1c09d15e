"""Resolve an upstream from what a user writes: the one place that knows every kind of source.

``fbank`` (SUPERB's baseline), our exported folder, a Hugging Face folder, a fairseq ``.pt``, or a
registered architecture name (random weights: only for tests and smoke runs, and said loudly).
"""
from __future__ import annotations

import logging
from pathlib import Path

from torch import nn

from .interop import import_checkpoint
from .models.fbank_upstream import FbankUpstream
from .models.registry import available_models, build_model

log = logging.getLogger(__name__)


def load_upstream(spec: str, drop_heads: bool = True, trust: bool = False) -> nn.Module:
    """Any upstream by name or path, in eval mode (see module doc).

    Args:
        spec: ``fbank``, a folder, a checkpoint file, or a registered name.
        drop_heads: import the encoder only (pretraining / CTC heads are listed in its metadata).
        trust: allow arbitrary pickled objects in a ``.pt`` (only for files you trust).
    """
    spec = str(spec)
    if not Path(spec).exists():
        if spec == "fbank":
            return FbankUpstream().eval()
        if spec in available_models():
            log.warning("%s: a registered config with random weights", spec)
            return build_model(spec).eval()
    return import_checkpoint(spec, drop_heads=drop_heads, trust=trust).eval()


__all__ = ["load_upstream"]
