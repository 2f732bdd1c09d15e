"""Models: one configurable :class:`SpeechEncoder`, named configs, export/load, the upstream contract."""

from . import hubert, w2v_bert, wavlm  # noqa: F401  (register the named configs)
from .encoder import EncoderConfig, SpeechEncoder
from .fbank_upstream import FbankUpstream
from .registry import available_models, build_model, load_model, model_config, save_model
from .upstream import Upstream, UpstreamBase, UpstreamOutput

__all__ = [
    "EncoderConfig",
    "FbankUpstream",
    "SpeechEncoder",
    "Upstream",
    "UpstreamBase",
    "UpstreamOutput",
    "available_models",
    "build_model",
    "load_model",
    "model_config",
    "save_model",
]
