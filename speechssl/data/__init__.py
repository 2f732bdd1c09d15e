"""Kaldi data directories, corpus preparation and the corpus grammar."""
from .kaldi_dir import DataDir, DataDirError, Problem, prepare_librispeech

__all__ = ["DataDir", "DataDirError", "Problem", "prepare_librispeech"]
