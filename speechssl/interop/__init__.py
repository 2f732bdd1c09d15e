"""Checkpoint import: Hugging Face folders, fairseq ``.pt`` files, our exported folders."""
from pathlib import Path

from ..errors import MissingInputError
from ..models.encoder import SpeechEncoder
from ..models.registry import CONFIG_FILE, load_model, save_model
from .fairseq import import_fairseq
from .huggingface import import_huggingface


def import_checkpoint(path, drop_heads: bool = False, trust: bool = False) -> SpeechEncoder:
    """Detect the format of ``path`` and import it into a :class:`SpeechEncoder`."""
    path = Path(path)
    if path.is_dir() and (path / CONFIG_FILE).is_file():
        return load_model(path)
    if path.is_dir() and (path / "config.json").is_file():
        return import_huggingface(path, drop_heads=drop_heads)
    if path.is_file():
        return import_fairseq(path, drop_heads=drop_heads, trust=trust)
    raise MissingInputError(f"{path}: neither a model folder (config.yaml / config.json) nor a checkpoint file")


__all__ = ["import_checkpoint", "import_fairseq", "import_huggingface", "save_model"]
