"""Utterance-level speaker embeddings without a speaker model: mean and standard deviation over time of an
upstream layer or of the Kaldi log-mel, L2-normalised. WavThruVec conditions on them (training and inference)."""

from __future__ import annotations

import numpy as np
import torch

from ..audio.features import fbank


def speaker_embedding(frames: np.ndarray) -> np.ndarray:
    """``[T, D]`` layer features -> ``[2 D]``: mean and standard deviation over time, L2-normalised."""
    v = np.concatenate([frames.mean(0), frames.std(0)]).astype(np.float32)
    return v / max(float(np.linalg.norm(v)), 1e-8)


def logmel_speaker_embedding(wav: np.ndarray) -> np.ndarray:
    """16 kHz audio ``[T]`` -> ``[160]``: mean and standard deviation of its 80-bin Kaldi log-mel, L2-normalised.
    On the mini corpus's unseen speakers its EER is 34 % against 46 % for HuBERT layer 1's statistics
    (``tools/speaker_embedding_eer.py``): the upstream's layers carry the voice in the content, not in
    their statistics."""
    with torch.no_grad():
        feats, _ = fbank(torch.from_numpy(np.asarray(wav, np.float32))[None] * 32768.0, dither=0.0)
    return speaker_embedding(feats[0].numpy())
