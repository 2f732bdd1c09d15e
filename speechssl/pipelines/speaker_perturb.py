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
    settings = {
        "source": str(Path(data_dir).resolve()),
        "max_semitones": float(max_semitones),
        "seed": int(seed),
        "method": "librosa pitch_shift (pitch and formants), duration kept",
    }
    if _claim(out, settings):
        return out
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


def _claim(out: Path, settings: dict) -> bool:
    """Record ``settings`` in ``out/perturb.json``, or check them against the record; True when the folder is
    complete (its ``wav.scp`` is written last)."""
    record = out / "perturb.json"
    if record.is_file():
        old = json.loads(record.read_text())
        if {k: old.get(k) for k in settings} != settings:
            raise InputError(f"{out}: made with other settings ({old}); remove it or choose another folder")
        return (out / "wav.scp").is_file()
    out.mkdir(parents=True, exist_ok=True)
    write_json(record, settings)
    return False


def speaker_shift(spk: str, copy: int, min_semitones: float, max_semitones: float, seed: int) -> float:
    """The one shift of speaker ``spk`` in copy ``copy``: ``min..max`` semitones, up in even copies and down in
    odd ones, drawn from ``(seed, copy, crc32(spk))``."""
    rng = np.random.default_rng([seed, copy, zlib.crc32(spk.encode())])
    return (1.0 if copy % 2 == 0 else -1.0) * float(rng.uniform(min_semitones, max_semitones))


def new_voices_data_dir(
    data_dir, out, copies: int, seed: int = 0, min_semitones: float = 1.5, max_semitones: float = 4.0
) -> Path:
    """``data_dir`` plus ``copies`` voice-shifted copies of it, written as one data dir at ``out``. In copy ``c``
    every speaker keeps one shift (:func:`speaker_shift`) and becomes a new speaker ``<spk>v<c>`` (utterances
    ``<spk>v<c><rest of the id>``), so a reference utterance has the voice of its target: more voices for a
    vocoder to learn the mapping from. Resumable like :func:`perturbed_data_dir`; ``utt2shift`` lists the
    shifts (0 for the originals)."""
    out = Path(out)
    settings = {
        "source": str(Path(data_dir).resolve()),
        "copies": int(copies),
        "seed": int(seed),
        "min_semitones": float(min_semitones),
        "max_semitones": float(max_semitones),
        "method": "librosa pitch_shift (pitch and formants), one shift per speaker and copy",
    }
    if _claim(out, settings):
        return out
    d = DataDir.read(data_dir)
    if d.segments is not None:
        raise InputError(f"{data_dir}: has segments; new voices need one recording per utterance")
    new = DataDir(text=None if d.text is None else {})
    shifts: Dict[str, float] = {}
    for utt in d.utt_ids:
        new.wav_scp[utt], new.utt2spk[utt], shifts[utt] = d._resolve(d.wav_scp[utt]), d.utt2spk[utt], 0.0
        if d.text is not None:
            new.text[utt] = d.text[utt]
    for c in range(copies):
        for utt in d.utt_ids:
            spk = d.utt2spk[utt]
            if not utt.startswith(spk):
                raise InputError(
                    f"{data_dir}: utterance {utt} does not start with its speaker id {spk} (Kaldi's "
                    "sort order), so its copy cannot be named"
                )
            name, shift = f"{spk}v{c}{utt[len(spk) :]}", speaker_shift(spk, c, min_semitones, max_semitones, seed)
            path = out / "wav" / f"{name}.wav"
            if not path.is_file():  # written atomically: a killed job leaves whole files only
                save(path, shift_voice(d.load_audio(utt), shift), SAMPLE_RATE)
            new.wav_scp[name], new.utt2spk[name], shifts[name] = str(path.resolve()), f"{spk}v{c}", shift
            if d.text is not None:
                new.text[name] = d.text[utt]
    new.extra["utt2shift"] = {u: f"{s:.3f}" for u, s in shifts.items()}
    new.write(out)
    return out
