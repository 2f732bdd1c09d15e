"""speechssl: self-supervised speech representation learning."""
from .audio.io import AudioError, load

__version__ = "0.1.0"
__all__ = ["AudioError", "load", "__version__"]
