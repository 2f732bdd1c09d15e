"""Audio I/O, Kaldi-compatible features and the synthetic corpus."""
from .io import AudioError, AudioInfo, info, load, resample, save

__all__ = ["AudioError", "AudioInfo", "info", "load", "resample", "save"]
