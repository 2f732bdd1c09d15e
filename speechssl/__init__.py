"""speechssl: self-supervised speech representation learning."""
from .audio.io import AudioError, load
from .models import build_model, load_model

__version__ = "0.1.0"
__all__ = ["AudioError", "build_model", "load", "load_model", "__version__"]
