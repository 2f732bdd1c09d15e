"""The synthetic corpus's sizes (``corpus synth --preset``): a module of its own, free of numpy and torch, so
the command line lists them without loading the synthesizer."""

from dataclasses import dataclass, replace
from typing import Dict, Tuple

from ..constants import SAMPLE_RATE


@dataclass
class Preset:
    """How big and how degraded a corpus is."""

    name: str
    seen_speakers: int
    unseen_speakers: int
    utts_per_speaker: Dict[str, int]  # train / dev / test for each seen speaker
    unseen_utts_per_speaker: int
    kind_probs: Tuple[float, float, float] = (0.6, 0.25, 0.15)  # sentence, command, keyword
    noise_prob: float = 0.6
    snr_db: Tuple[float, float] = (3.0, 30.0)
    reverb_prob: float = 0.4
    rt60_s: Tuple[float, float] = (0.15, 0.8)
    session_eq: bool = True  # per-utterance microphone variation on top of the speaker's channel
    channel_colouring: bool = True  # a fixed random EQ and tilt per speaker
    sample_rate: int = SAMPLE_RATE


PRESETS: Dict[str, Preset] = {
    "tiny": Preset(
        "tiny",
        seen_speakers=6,
        unseen_speakers=2,
        utts_per_speaker={"train": 8, "dev": 2, "test": 2},
        unseen_utts_per_speaker=3,
    ),
    "mini": Preset(
        "mini",
        seen_speakers=32,
        unseen_speakers=8,
        utts_per_speaker={"train": 56, "dev": 4, "test": 4},
        unseen_utts_per_speaker=6,
    ),
}


def clean_twin(preset: Preset) -> Preset:
    """The same corpus without its reverberation and noise: same speakers, texts, prosody, speaker channel and
    session microphone, sample for sample (the degradations come last and the draws that choose them are still
    made), at its own level. Clean targets for a vocoder whose input is the degraded corpus."""
    return replace(preset, name=f"{preset.name}-clean", noise_prob=0.0, reverb_prob=0.0)


PRESETS.update({f"{name}-clean": clean_twin(p) for name, p in list(PRESETS.items())})
