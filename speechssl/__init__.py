"""speechssl: self-supervised speech representation learning.

The top-level names import their modules on first use, so ``import speechssl`` (and the ``speechssl``
command's start-up) does not pay for torch and the model code until something needs them."""

import importlib

__version__ = "0.1.0"

_LAZY = {
    "AudioError": "speechssl.audio.io",
    "load": "speechssl.audio.io",
    "build_model": "speechssl.models",
    "load_model": "speechssl.models",
}


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'speechssl' has no attribute {name!r}")


def from_pretrained(source, **kwargs):
    """A pretrained encoder from a folder, a checkpoint, a hub id or a well-known name
    (:func:`speechssl.hub.from_pretrained`; imported on first use, as it pulls in every checkpoint format)."""
    from .hub import from_pretrained as load

    return load(source, **kwargs)


def export_huggingface(model, out):
    """Write ``model`` as a transformers folder (:func:`speechssl.interop.hf_export.export_huggingface`)."""
    from .interop.hf_export import export_huggingface as export

    return export(model, out)[0]


def export_onnx(model, path, quantize: bool = False):
    """Write ``model`` as an ONNX graph (:func:`speechssl.interop.onnx_export.export_onnx`)."""
    from .interop.onnx_export import export_onnx as export

    return export(model, path, quantize=quantize)


__all__ = [
    "AudioError",
    "build_model",
    "export_huggingface",
    "export_onnx",
    "from_pretrained",
    "load",
    "load_model",
    "__version__",
]
