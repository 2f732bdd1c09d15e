"""Frame-label bookkeeping: how many labels an utterance must have at a given label rate, and
the check that a label file agrees with the audio it will train on."""

from __future__ import annotations

from typing import Dict, Mapping

import numpy as np

from ..constants import SAMPLE_RATE
from ..errors import InputError


def expected_label_frames(
    num_samples: int, label_rate: float, sample_rate: int = SAMPLE_RATE, window: int = 400
) -> int:
    """Frames of a 25 ms window at ``label_rate`` Hz: Kaldi MFCC at 100 Hz (snip_edges) and the
    wav2vec2/HuBERT CNN at 50 Hz (receptive field 400, stride 320) share this count."""
    hop = int(round(sample_rate / label_rate))
    return max(0, 1 + (num_samples - window) // hop)


def check_label_counts(
    labels: Mapping[str, np.ndarray],
    num_samples: Mapping[str, int],
    label_rate: float,
    source: str = "labels",
    tolerance: int = 1,
) -> None:
    """Raise naming the first utterances whose label count is off by more than ``tolerance``
    frames, or that have audio but no labels."""
    problems = []
    for utt, n in num_samples.items():
        if utt not in labels:
            problems.append(f"{utt}: no labels")
            continue
        want = expected_label_frames(n, label_rate)
        if abs(len(labels[utt]) - want) > tolerance:
            problems.append(f"{utt}: {len(labels[utt])} labels, audio of {n} samples needs {want} at {label_rate:g} Hz")
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise InputError(f"{source}: label count mismatch: " + "; ".join(problems[:3]) + more)


def label_rate_of(spec: Dict) -> float:
    """The label rate recorded by ``speechssl kmeans`` (the rate of the features it clustered)."""
    return float(spec.get("source", {}).get("frame_rate", 100.0))
