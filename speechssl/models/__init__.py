"""Models: one configurable :class:`SpeechEncoder`, named configs, export/load."""
from . import hubert, w2v_bert  # noqa: F401  (register the named configs)
from .encoder import EncoderConfig, SpeechEncoder
from .registry import available_models, build_model, load_model, model_config, save_model
from .fbank_upstream import FbankUpstream
from .upstream import UpstreamOutput, load_upstream

__all__ = ["EncoderConfig", "FbankUpstream", "load_upstream", "SpeechEncoder", "UpstreamOutput", "available_models", "build_model",
           "load_model", "model_config", "save_model"]
