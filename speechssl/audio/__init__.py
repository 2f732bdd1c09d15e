"""Audio I/O and Kaldi-compatible features (the synthetic corpus is in :mod:`speechssl.corpus`)."""

from .io import AudioError, AudioInfo, info, load, resample, save

__all__ = ["AudioError", "AudioInfo", "info", "load", "resample", "save"]
