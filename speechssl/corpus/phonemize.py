"""Text -> the phone ids text2vec reads: espeak-ng's phones mapped onto the mini corpus's phone set.

Shared by text2vec's training data (the corpus's phone transcripts) and WavThruVec's synthesis (free text)."""

from __future__ import annotations

from typing import List

from ..audio.espeak import Espeak
from ..audio.phones import PHONE_SET
from ..errors import InputError
from .synth import segments_from_events

PHONE_IDS = {p: i + 1 for i, p in enumerate(PHONE_SET)}  # 0 pads


def phone_ids(phones: List[str], where: str = "") -> List[int]:
    unknown = sorted({p for p in phones if p not in PHONE_IDS})
    if unknown:
        raise InputError(f"{where}: phones {unknown} are not in the phone set ({' '.join(PHONE_SET)})")
    return [PHONE_IDS[p] for p in phones]


def phonemize(text: str) -> List[str]:
    """Text -> phones of the mini corpus's set, through the bundled espeak-ng (pauses as ``SIL``)."""

    syn = Espeak().synthesize(text)
    return [p for p, _, _ in segments_from_events(syn.phonemes, syn.audio.shape[0], 1.0)]
