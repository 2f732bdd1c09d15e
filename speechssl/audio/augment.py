"""Signal degradations for the synthetic corpus: per-speaker channel colouring, additive noise
at a chosen SNR, and synthetic room reverberation. Each keeps the signal's time base (no delay
is added), so phone alignments stay valid. All take a ``numpy.random.Generator``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Tuple

import numpy as np
from scipy.signal import fftconvolve, lfilter

from ..constants import SAMPLE_RATE


def peaking_eq(freq: float, gain_db: float, q: float, sr: int) -> Tuple[np.ndarray, np.ndarray]:
    """RBJ cookbook peaking biquad ``(b, a)``."""
    a_gain = 10 ** (gain_db / 40)
    w0 = 2 * math.pi * freq / sr
    alpha = math.sin(w0) / (2 * q)
    b = np.array([1 + alpha * a_gain, -2 * math.cos(w0), 1 - alpha * a_gain])
    a = np.array([1 + alpha / a_gain, -2 * math.cos(w0), 1 - alpha / a_gain])
    return b / a[0], a / a[0]


@dataclass
class Channel:
    """A microphone/channel colouring: spectral tilt plus a few peaking bands."""

    tilt: float  # first-order pre/de-emphasis coefficient in [-0.6, 0.6]
    bands: List[Tuple[float, float, float]]  # (freq Hz, gain dB, Q)

    @classmethod
    def random(cls, rng: np.random.Generator, sr: int = SAMPLE_RATE) -> Channel:
        bands = [
            (
                float(np.exp(rng.uniform(np.log(150), np.log(0.4 * sr)))),
                float(rng.uniform(-10, 10)),
                float(rng.uniform(0.6, 2.5)),
            )
            for _ in range(int(rng.integers(2, 5)))
        ]
        return cls(tilt=float(rng.uniform(-0.6, 0.6)), bands=bands)

    def apply(self, wav: np.ndarray, sr: int) -> np.ndarray:
        out = lfilter([1.0, -self.tilt], [1.0], wav)
        for freq, gain, q in self.bands:
            b, a = peaking_eq(freq, gain, q, sr)
            out = lfilter(b, a, out)
        return out.astype(np.float32)


def coloured_noise(n: int, rng: np.random.Generator, slope_db_per_oct: float) -> np.ndarray:
    """Gaussian noise whose spectrum falls by ``slope`` dB per octave (0 white, -3 pink)."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(spec.shape[0], dtype=np.float64)
    f[0] = 1.0
    spec *= f ** (slope_db_per_oct / (20 * math.log10(2)))
    x = np.fft.irfft(spec, n)
    return (x / (x.std() + 1e-12)).astype(np.float32)


def add_noise(wav: np.ndarray, snr_db: float, rng: np.random.Generator, sr: int) -> np.ndarray:
    """Add coloured noise (sometimes with mains hum) at ``snr_db`` relative to speech power."""
    noise = coloured_noise(wav.shape[0], rng, float(rng.uniform(-6.0, 0.0)))
    if rng.random() < 0.3:
        t = np.arange(wav.shape[0]) / sr
        mains = rng.choice([50.0, 60.0])
        hum = sum(np.sin(2 * np.pi * mains * k * t + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 5))
        noise = noise + 0.5 * hum.astype(np.float32) / (hum.std() + 1e-12)
    speech_power = float(np.mean(wav.astype(np.float64) ** 2)) + 1e-12
    noise_power = float(np.mean(noise.astype(np.float64) ** 2)) + 1e-12
    scale = math.sqrt(speech_power / (noise_power * 10 ** (snr_db / 10)))
    return (wav + scale * noise).astype(np.float32)


def room_impulse_response(rt60: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Direct path at t=0, sparse early reflections, then an exponentially decaying tail."""
    n = max(int(rt60 * sr), 16)
    t = np.arange(n) / sr
    decay = np.exp(-6.908 * t / rt60)  # -60 dB at rt60
    rir = rng.standard_normal(n) * decay * 0.2
    rir[: int(0.002 * sr)] = 0.0  # 2 ms gap before the diffuse tail
    for _ in range(int(rng.integers(3, 8))):
        k = int(rng.uniform(0.002, 0.04) * sr)
        if k < n:
            rir[k] += rng.uniform(-0.6, 0.6)
    rir[0] = 1.0
    return (rir / np.sqrt(np.sum(rir**2))).astype(np.float32)


def reverberate(wav: np.ndarray, rt60: float, rng: np.random.Generator, sr: int) -> np.ndarray:
    """Convolve with a synthetic RIR; the output keeps the input's length and time base."""
    rir = room_impulse_response(rt60, sr, rng)
    out = fftconvolve(wav, rir)[: wav.shape[0]]
    return out.astype(np.float32)


def shift_voice(wav: np.ndarray, semitones: float, sr: int = SAMPLE_RATE) -> np.ndarray:
    """The whole spectrum (pitch and formants together) moved by ``semitones``, duration and time base kept
    (librosa's phase-vocoder stretch, then resampling): a different-sounding voice saying the same thing at
    the same times. ``[T] -> [T]``."""
    import librosa

    wav = np.asarray(wav, np.float32)
    if semitones == 0:
        return wav.copy()
    out = librosa.effects.pitch_shift(wav, sr=sr, n_steps=float(semitones))
    return np.asarray(out[: len(wav)], np.float32)
