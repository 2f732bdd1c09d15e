"""Resolve an upstream from what a user writes: the one place that knows every kind of source.

A source is our exported folder, a Hugging Face folder or hub id, a fairseq ``.pt`` (LightHuBERT's
among them), or a well-known name (:data:`WELL_KNOWN`: a hub id and the architecture it must have).
A registered architecture name alone is not a source of weights: it fails, saying what to pass, unless
random initialisation is asked for (``random_init=True``, ``--random-init``). Every loaded model carries
``metadata["weights"]``: where its weights came from and their SHA-256, or ``"random init"``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from pathlib import Path
from typing import Dict, Optional

import torch
from torch import nn

from .errors import InputError, MissingInputError
from .interop import import_checkpoint
from .models.encoder import EncoderConfig, SpeechEncoder
from .models.fbank_upstream import FbankUpstream
from .models.registry import available_models, build_model, model_config

log = logging.getLogger(__name__)

# name -> (hub id, registered architecture it must produce). The architectures are checked on load.
WELL_KNOWN: Dict[str, tuple] = {
    "hubert_base": ("facebook/hubert-base-ls960", "hubert_base"),
    "hubert_large": ("facebook/hubert-large-ll60k", "hubert_large"),
    "wav2vec2_base": ("facebook/wav2vec2-base", "wav2vec2_base"),
    "wav2vec2_large_lv60": ("facebook/wav2vec2-large-lv60", "wav2vec2_large_lv60"),
    "wav2vec2_conformer_large_rel_pos": (
        "facebook/wav2vec2-conformer-rel-pos-large",
        "wav2vec2_conformer_large_rel_pos",
    ),
    "wavlm_base": ("microsoft/wavlm-base", "wavlm_base"),
    "wavlm_base_plus": ("microsoft/wavlm-base-plus", "wavlm_base_plus"),
    "wavlm_large": ("microsoft/wavlm-large", "wavlm_large"),
    "data2vec_audio_base": ("facebook/data2vec-audio-base", "data2vec_audio_base"),
    "w2v_bert_2": ("facebook/w2v-bert-2.0", "w2v_bert_2"),
}
# fields that do not change what the weights compute at inference (training regularisation, preprocessing)
_NOT_ARCHITECTURE = (
    "family",
    "dropout",
    "attention_dropout",
    "activation_dropout",
    "feature_dropout",
    "layerdrop",
    "mask_embedding",
    "normalize_waveform",
    "masked_group_norm",
)
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_HUB_FILES = [
    "config.json",
    "preprocessor_config.json",
    "*.safetensors",
    "*.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
]


def from_pretrained(
    source, *, drop_heads: bool = True, trust: bool = False, revision: Optional[str] = None
) -> SpeechEncoder:
    """A pretrained encoder, in eval mode, from any source (see module doc).

    Args:
        source: a folder, a checkpoint file, a hub id (``microsoft/wavlm-base-plus``) or a
            :data:`WELL_KNOWN` name (``wavlm_base_plus``).
        drop_heads: import the encoder without task heads (CTC, quantizer, classifiers), listing them
            in ``metadata["dropped_heads"]``; False makes their presence an error.
        trust: allow arbitrary pickled objects in a ``.pt`` (only for files you trust).
        revision: hub revision (branch, tag or commit).
    """
    source = str(source)
    named = source in WELL_KNOWN or source in available_models()  # a name means what it names, whatever lies in
    if not named and Path(source).exists():  # the working directory (a folder: ./name)
        return _with_provenance(import_checkpoint(source, drop_heads=drop_heads, trust=trust), source)
    if source in WELL_KNOWN:
        hub_id, arch = WELL_KNOWN[source]
        model = _from_hub(hub_id, drop_heads, revision)
        _check_architecture(model.config, model_config(arch), f"{source} ({hub_id})")
        return model
    if source in available_models():
        raise InputError(
            f"{source!r} is an architecture name, not weights: pass a model folder, a checkpoint "
            f"file or a hub id (well-known names: {', '.join(sorted(WELL_KNOWN))}), or ask for random "
            f"weights explicitly (build_model({source!r}); CLI: --random-init)"
        )
    if _HUB_ID.match(source):
        return _from_hub(source, drop_heads, revision)
    raise MissingInputError(
        f"{source}: no such file or folder, and not a hub id (owner/name) or a well-known name "
        f"({', '.join(sorted(WELL_KNOWN))})"
    )


def load_upstream(spec: str, drop_heads: bool = True, trust: bool = False, random_init: bool = False) -> nn.Module:
    """Any upstream, in eval mode: ``fbank`` (SUPERB's baseline), anything :func:`from_pretrained` takes,
    or, with ``random_init``, a registered architecture with fresh weights (tests, smoke runs, untrained
    baselines)."""
    spec = str(spec)
    if spec == "fbank":  # the baseline by name, even beside a Kaldi fbank/ folder (a folder: ./fbank)
        model = FbankUpstream().eval()
        model.metadata = {"weights": "none (log-mel filterbank)"}
        return model
    if random_init:
        if spec not in available_models():
            raise InputError(
                f"--random-init builds a registered architecture; {spec!r} is not one "
                f"(available: {', '.join(available_models())})"
            )
        log.warning("%s: random weights, as asked (random_init)", spec)
        model = build_model(spec).eval()
        model.metadata = {"source": spec, "weights": "random init"}
        return model
    return from_pretrained(spec, drop_heads=drop_heads, trust=trust)


def weights_sha256(model: nn.Module) -> str:
    """SHA-256 over the state dict (names, shapes, dtypes and values in name order)."""
    h = hashlib.sha256()
    for name, value in sorted(model.state_dict().items()):
        t = value.detach().cpu().contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def weights_record(model: nn.Module) -> Dict[str, str]:
    """Where a model's weights came from, for results and exports: ``{"source", "sha256"}`` or random init."""
    meta = getattr(model, "metadata", None) or {}
    if meta.get("weights") in ("random init",) or str(meta.get("weights", "")).startswith("none"):
        return {"source": str(meta.get("source", "")), "weights": meta["weights"]}
    return {"source": str(meta.get("source", "")), "sha256": weights_sha256(model)}


def source_record(spec: str) -> Dict[str, str]:
    """Where the weights of an upstream spec come from, without loading it: a path and the SHA-256 of its
    weight files, ``fbank``, or a hub id with the cached snapshot (commit) it resolves to."""
    spec = str(spec)
    if spec == "fbank":
        return {"source": "fbank", "weights": "none (log-mel filterbank)"}
    p = Path(spec)
    if p.exists() and spec not in WELL_KNOWN:
        files = (
            sorted(f for pattern in ("*.safetensors", "*.bin", "*.pt") for f in p.glob(pattern)) if p.is_dir() else [p]
        )
        h = hashlib.sha256()
        for f in files:
            with open(f, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 22), b""):
                    h.update(block)
        return {"source": str(p.resolve()), "sha256": h.hexdigest()}
    hub_id = WELL_KNOWN[spec][0] if spec in WELL_KNOWN else spec
    snapshots = Path(hub_cache_dir()) / ("models--" + hub_id.replace("/", "--")) / "refs" / "main"
    return {"source": f"hf://{hub_id}", **({"commit": snapshots.read_text().strip()} if snapshots.is_file() else {})}


def _with_provenance(model: nn.Module, source: str) -> nn.Module:
    model.metadata = dict(getattr(model, "metadata", None) or {})
    earlier = model.metadata.get("source")
    if earlier and earlier != source and not str(earlier).startswith(str(hub_cache_dir())):
        model.metadata["derived_from"] = earlier  # a folder written from another source keeps its origin
    model.metadata["source"] = source
    model.metadata["weights"] = f"{source} (sha256 {weights_sha256(model)[:16]})"
    return model


def _from_hub(hub_id: str, drop_heads: bool, revision: Optional[str]) -> SpeechEncoder:
    """Through huggingface_hub's cache: offline from a populated cache, else downloaded when allowed."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError as e:
        raise ImportError(f"{hub_id}: loading hub ids needs huggingface_hub: pip install 'speechssl[hub]'") from e
    cache = hub_cache_dir()
    try:
        folder = snapshot_download(
            hub_id, revision=revision, allow_patterns=_HUB_FILES, cache_dir=cache, local_files_only=True
        )
    except Exception:  # not cached (the hub library raises several kinds)
        folder = None
    if folder is None and os.environ.get("HF_HUB_OFFLINE", "0").lower() not in ("1", "true", "yes", "on"):
        try:
            folder = snapshot_download(hub_id, revision=revision, allow_patterns=_HUB_FILES, cache_dir=cache)
        except Exception as e:
            log.debug("download of %s failed: %s", hub_id, e)
    if folder is None:
        raise MissingInputError(
            f"{hub_id}: not in the Hugging Face cache ({cache}) and not downloadable here (offline or no access). "
            f"Download it where there is network (huggingface-cli download {hub_id}) and set HF_HOME (or "
            f"HF_HUB_CACHE) to that cache, or pass a local folder"
        )
    model = import_checkpoint(folder, drop_heads=drop_heads)
    return _with_provenance(model, f"hf://{hub_id}" + (f"@{revision}" if revision else ""))


def hub_cache_dir() -> str:
    """The hub cache as the environment says now (huggingface_hub reads it once, at import)."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return os.path.join(os.environ["HF_HOME"], "hub")
    return os.path.join(os.path.expanduser(os.environ.get("XDG_CACHE_HOME", "~/.cache")), "huggingface", "hub")


def _check_architecture(got: EncoderConfig, want: EncoderConfig, what: str) -> None:
    a, b = got.to_dict(), want.to_dict()
    diff = [f"{k}: {a[k]!r} (loaded) vs {b[k]!r} (expected)" for k in a if k not in _NOT_ARCHITECTURE and a[k] != b[k]]
    if diff:
        raise InputError(f"{what}: the weights do not have the architecture this name promises: " + "; ".join(diff))


__all__ = ["WELL_KNOWN", "from_pretrained", "load_upstream", "source_record", "weights_record", "weights_sha256"]
