"""Checkpoint import: Hugging Face folders, fairseq ``.pt`` files (LightHuBERT's among them), our folders."""

from pathlib import Path

from ..errors import MissingInputError
from ..models.encoder import SpeechEncoder
from ..models.registry import CONFIG_FILE, load_model, save_model
from .fairseq import encoder_from_fairseq, import_fairseq, read_fairseq_checkpoint
from .huggingface import import_huggingface
from .lighthubert import is_lighthubert, supernet_from_checkpoint


def import_checkpoint(path, drop_heads: bool = False, trust: bool = False) -> SpeechEncoder:
    """Detect the format of ``path`` and import it into a :class:`SpeechEncoder`.

    A LightHuBERT supernet checkpoint gives the subnet its authors serve, as a plain encoder.
    """
    path = Path(path)
    if path.is_dir() and (path / CONFIG_FILE).is_file():
        return load_model(path)
    if path.is_dir() and (path / "config.json").is_file():
        return import_huggingface(path, drop_heads=drop_heads)
    if path.is_file() and path.suffix == ".onnx":  # an exported graph, run by onnxruntime
        from .onnx_export import OnnxUpstream

        return OnnxUpstream(path)
    if path.is_file():
        ckpt = read_fairseq_checkpoint(path, trust)
        if is_lighthubert(ckpt):
            model = supernet_from_checkpoint(ckpt, str(path)).export()
            model.metadata = {"source": str(path), "format": "lighthubert"}
            return model
        return encoder_from_fairseq(ckpt, path, drop_heads=drop_heads)
    raise MissingInputError(f"{path}: neither a model folder (config.yaml / config.json) nor a checkpoint file")


__all__ = ["import_checkpoint", "import_fairseq", "import_huggingface", "save_model"]
