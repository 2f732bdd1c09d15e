"""Mel-cepstral distortion as synthesis papers publish it (Kubichek 1993; the WORLD / SPTK analysis and
DTW alignment of ESPnet's ``evaluate_mcd.py``):

* WORLD analysis (pyworld): F0 by Harvest, spectral envelope by CheapTrick (FFT 1024, 16 ms hop);
* mel-cepstrum by SPTK's ``sp2mc`` (pysptk) of order 23 with all-pass constant 0.42 at 16 kHz;
* dynamic time warping of the two sequences on c1..c23 (librosa's exact DTW, Euclidean frame cost);
* ``MCD = 10 / ln 10 * sqrt(2 * sum_{d=1..23} (c_d - c'_d)^2)`` in dB, c0 (energy) excluded, averaged
  over the aligned frame pairs.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np

from ..constants import SAMPLE_RATE
from ..errors import MissingInputError

MCEP_PARAMS = {16000: (23, 0.42), 22050: (34, 0.45), 24000: (34, 0.46), 44100: (39, 0.53), 48000: (39, 0.55)}


def world_mel_cepstrum(wav: np.ndarray, sample_rate: int = SAMPLE_RATE, fft: int = 1024, hop: int = 256) -> np.ndarray:
    """``[T]`` -> ``[frames, order + 1]`` mel-cepstra c0..c_order of the WORLD spectral envelope."""
    try:
        import pysptk
        import pyworld
    except ImportError as e:
        raise MissingInputError(f"published MCD needs pyworld and pysptk ({e}): pip install 'speechssl[judges]'") from e
    if sample_rate not in MCEP_PARAMS:
        raise ValueError(f"no mel-cepstrum order / all-pass constant for {sample_rate} Hz (have {sorted(MCEP_PARAMS)})")
    order, alpha = MCEP_PARAMS[sample_rate]
    x = np.asarray(wav, np.float64)
    f0, t = pyworld.harvest(x, sample_rate, f0_floor=40.0, f0_ceil=800.0, frame_period=1000 * hop / sample_rate)
    sp = pyworld.cheaptrick(x, f0, t, sample_rate, fft_size=fft)
    return pysptk.sp2mc(sp, order, alpha)


def mcd_dtw(ref: np.ndarray, hyp: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Tuple[float, int]:
    """``(MCD in dB, aligned frame pairs)`` between two signals of any lengths."""
    import librosa

    a, b = world_mel_cepstrum(ref, sample_rate)[:, 1:], world_mel_cepstrum(hyp, sample_rate)[:, 1:]
    _, path = librosa.sequence.dtw(X=a.T, Y=b.T, metric="euclidean")
    diff = a[path[:, 0]] - b[path[:, 1]]
    per_frame = 10.0 / np.log(10.0) * np.sqrt(2.0 * np.sum(diff**2, axis=1))
    return float(per_frame.mean()), len(path)


__all__ = ["MCEP_PARAMS", "mcd_dtw", "world_mel_cepstrum"]
