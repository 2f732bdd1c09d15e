"""Kaldi data directories, LibriSpeech preparation, datasets, samplers, frame labels."""

from .kaldi_dir import DataDir, DataDirError, Problem
from .librispeech import prepare_librispeech

__all__ = ["DataDir", "DataDirError", "Problem", "prepare_librispeech"]
