"""A speaker-perturbed copy of a data dir (NANSY, Choi et al. 2021, in its simplest form): every utterance's
voice shifted by its own random number of semitones, its words and timing kept.

Features extracted from the copy cannot tell the speaker reliably, so a vocoder trained on them has to take
the voice from its speaker embedding: what voice conversion needs. The shift of an utterance depends only on
the seed and its id, so a killed job resumes where it stopped and a rerun writes the same audio; the folder
records its settings (``perturb.json``) and refuses to be reused with others.
"""
from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Dict

import numpy as np

from ..audio.augment import shift_voice
from ..audio.io import save
from ..constants import SAMPLE_RATE
from ..data.kaldi_dir import DataDir
from ..errors import InputError
from ..utils.atomic import write_json


def utterance_shift(utt: str, max_semitones: float, seed: int) -> float:
    """The utterance's shift in ``[-max, max]`` semitones, drawn from ``(seed, crc32(utt))``."""
    rng = np.random.default_rng([seed, zlib.crc32(utt.encode())])
    return float(rng.uniform(-max_semitones, max_semitones))


def perturbed_data_dir(data_dir, out, max_semitones: float, seed: int = 0) -> Path:
    """Write ``out/wav/<utt>.wav`` (voice-shifted) and a data dir at ``out`` with the same utterances, speakers
    and texts; returns ``out``. Utterances already written are kept."""
    out = Path(out)
    settings = {"source": str(Path(data_dir).resolve()), "max_semitones": float(max_semitones), "seed": int(seed),
                "method": "librosa pitch_shift (pitch and formants), duration kept"}
    record = out / "perturb.json"
    if record.is_file():
        old = json.loads(record.read_text())
        if {k: old.get(k) for k in settings} != settings:
            raise InputError(f"{out}: made with other settings ({old}); remove it or choose another folder")
        if (out / "wav.scp").is_file():
            return out
    else:
        out.mkdir(parents=True, exist_ok=True)
        write_json(record, settings)
    d = DataDir.read(data_dir)
    shifts: Dict[str, float] = {}
    for utt in d.utt_ids:
        shifts[utt] = utterance_shift(utt, max_semitones, seed)
        path = out / "wav" / f"{utt}.wav"
        if not path.is_file():
            save(path, shift_voice(d.load_audio(utt), shifts[utt]), SAMPLE_RATE)
    copy = d.subset(d.utt_ids)
    copy.wav_scp = {u: str((out / "wav" / f"{u}.wav").resolve()) for u in d.utt_ids}
    copy.segments = None
    copy.extra["utt2shift"] = {u: f"{s:.3f}" for u, s in shifts.items()}
    copy.write(out)
    return out
