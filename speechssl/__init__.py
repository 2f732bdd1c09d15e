"""speechssl: self-supervised speech representation learning."""
from .audio.io import AudioError, load
from .models import build_model, load_model

__version__ = "0.1.0"


def from_pretrained(source, **kwargs):
    """A pretrained encoder from a folder, a checkpoint, a hub id or a well-known name
    (:func:`speechssl.hub.from_pretrained`; imported on first use, as it pulls in every checkpoint format)."""
    from .hub import from_pretrained as load
    return load(source, **kwargs)


__all__ = ["AudioError", "build_model", "from_pretrained", "load", "load_model", "__version__"]
