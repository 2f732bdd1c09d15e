"""Hidden states of an utterance too long to encode at once, window by window with context on each side.

Self-attention over a whole 2-hour recording needs memory quadratic in its 360,000 frames. Here the
utterance is cut into windows of ``window_seconds`` (the frames it keeps), each encoded with up to
``context_seconds`` more audio on either side, and only each window's own frames are kept: every kept
frame has seen at least ``context_seconds`` of audio on both sides (less at the utterance's ends).

Frames stay where a whole-utterance forward puts them: a window's audio starts on a frame boundary
(a multiple of the model's hop), so its frame ``j`` is the utterance's frame ``start + j``. What differs from
a whole-utterance forward is what a frame can attend to, and statistics taken over the whole input
(a frontend's GroupNorm over time, waveform normalisation): those are taken per window.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List

import numpy as np
import torch

from ..constants import SAMPLE_RATE
from ..errors import InputError


@dataclass(frozen=True)
class Windowing:
    """Utterances longer than ``max_seconds`` are encoded in windows of ``max_seconds`` with
    ``context_seconds`` of audio on each side; ``max_seconds=0`` encodes every utterance whole."""

    max_seconds: float = 60.0
    context_seconds: float = 5.0

    def __post_init__(self):
        if self.max_seconds < 0 or self.context_seconds < 0:
            raise InputError(
                f"--max-seconds {self.max_seconds} and --context-seconds {self.context_seconds} must not be negative"
            )

    def applies(self, num_samples: int, sample_rate: int = SAMPLE_RATE) -> bool:
        return self.max_seconds > 0 and num_samples > self.max_seconds * sample_rate


def receptive_field(model) -> int:
    """Samples the model needs for its first frame (400 for the waveform CNN, 400 for 25-ms FBANK)."""
    n = model.downsample_rate
    while int(model.output_lengths(torch.tensor([n]))[0]) < 1:
        n += 1
    return n


def windowed_states(
    model, wav: torch.Tensor, layers: List[int], windowing: Windowing, device: torch.device
) -> Dict[int, np.ndarray]:
    """``wav [T]`` -> ``{layer: [frames, dim] float32}``, the frames of a whole-utterance forward
    (``model.output_lengths(T)``), computed window by window (module docstring)."""
    hop, field = model.downsample_rate, receptive_field(model)
    total = int(model.output_lengths(torch.tensor([wav.shape[0]]))[0])
    window = max(1, int(windowing.max_seconds * SAMPLE_RATE) // hop)
    context = int(windowing.context_seconds * SAMPLE_RATE) // hop
    parts: Dict[int, List[np.ndarray]] = {layer: [] for layer in layers}
    for first in range(0, total, window):
        last = min(total, first + window)
        start, stop = max(0, first - context), min(total, last + context)  # frames encoded
        end = wav.shape[0] if stop == total else (stop - 1) * hop + field  # the last one keeps the tail
        segment = wav[start * hop : end]
        with torch.inference_mode():
            out = model(
                segment[None].to(device), torch.tensor([segment.shape[0]], device=device), num_layers=max(layers)
            )
        for layer in layers:
            parts[layer].append(out.hidden_states[layer][0, first - start : last - start].float().cpu().numpy())
    states = {layer: np.concatenate(p) for layer, p in parts.items()}
    if any(len(s) != total for s in states.values()):  # a frontend whose frames are not on a fixed hop
        raise InputError(
            f"windowed encoding gave {len(states[layers[0]])} frames, the whole input {total}: this "
            "model's frames do not sit on a fixed hop; use --max-seconds 0 to encode whole"
        )
    return states
