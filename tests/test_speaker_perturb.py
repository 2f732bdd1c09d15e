"""Speaker perturbation for voice conversion: a voice shift moves the spectrum by the asked interval and keeps
the time base; the perturbed copy of a data dir is deterministic, resumable and refuses other settings."""
import json

import numpy as np
import pytest

from speechssl.audio.augment import shift_voice
from speechssl.data.kaldi_dir import DataDir
from speechssl.errors import InputError
from speechssl.pipelines.speaker_perturb import perturbed_data_dir, utterance_shift


def _peak_hz(wav, sr=16000):
    spec = np.abs(np.fft.rfft(wav * np.hanning(len(wav))))
    return np.fft.rfftfreq(len(wav), 1 / sr)[int(spec.argmax())]


def test_a_voice_shift_moves_the_spectrum_by_the_interval_and_keeps_the_length():
    t = np.arange(16000) / 16000
    tone = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    for semitones, want in ((12, 440.0), (-12, 110.0), (4, 220 * 2 ** (4 / 12))):
        out = shift_voice(tone, semitones)
        assert out.shape == tone.shape and out.dtype == np.float32
        assert _peak_hz(out[2000:-2000]) == pytest.approx(want, rel=0.03)
    assert np.array_equal(shift_voice(tone, 0), tone)


def test_the_perturbed_copy_is_deterministic_resumable_and_records_its_settings(tiny_data, tmp_path):
    src = DataDir.read(tiny_data / "dev")
    out = perturbed_data_dir(tiny_data / "dev", tmp_path / "p", 3.0, seed=7)
    copy = DataDir.read(out)
    assert copy.utt_ids == src.utt_ids and copy.utt2spk == src.utt2spk and copy.text == src.text
    shifts = {u: float(v) for u, v in copy.extra["utt2shift"].items()}
    assert all(-3 <= s <= 3 for s in shifts.values()) and len(set(shifts.values())) > 1
    assert all(s == pytest.approx(utterance_shift(u, 3.0, 7), abs=1e-3) for u, s in shifts.items())
    u = src.utt_ids[0]
    a, b = src.load_audio(u), copy.load_audio(u)
    assert a.shape == b.shape and not np.allclose(a, b, atol=1e-3)
    # a killed job: one file and the table missing; the rerun writes the same audio again
    wav = tmp_path / "p" / "wav" / f"{u}.wav"
    before = wav.read_bytes()
    wav.unlink()
    (tmp_path / "p" / "wav.scp").unlink()
    perturbed_data_dir(tiny_data / "dev", tmp_path / "p", 3.0, seed=7)
    assert wav.read_bytes() == before
    assert json.loads((tmp_path / "p" / "perturb.json").read_text())["max_semitones"] == 3.0
    with pytest.raises(InputError, match=r"p: made with other settings"):
        perturbed_data_dir(tiny_data / "dev", tmp_path / "p", 5.0, seed=7)
