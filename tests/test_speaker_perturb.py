"""Speaker perturbation for voice conversion: a voice shift moves the spectrum by the asked interval and keeps
the time base; the perturbed copy of a data dir is deterministic, resumable and refuses other settings; the
new-voices copy gives each speaker of each copy one shift and a new name, and a vocoder trains on it."""

import json

import numpy as np
import pytest

from speechssl.audio.augment import shift_voice
from speechssl.data.kaldi_dir import DataDir
from speechssl.errors import InputError
from speechssl.pipelines.speaker_perturb import new_voices_data_dir, perturbed_data_dir, speaker_shift, utterance_shift


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


def test_new_voices_keep_one_shift_per_speaker_and_copy_and_train_a_vocoder(tiny_data, upstream_25hz, tmp_path):
    src = DataDir.read(tiny_data / "dev")
    out = new_voices_data_dir(tiny_data / "dev", tmp_path / "v", 2, seed=3)
    d = DataDir.read(out)
    assert len(d.utt_ids) == 3 * len(src.utt_ids)
    assert set(d.utt2spk.values()) == {f"{s}{tag}" for s in src.spk2utt for tag in ("", "v0", "v1")}
    shifts = {u: float(v) for u, v in d.extra["utt2shift"].items()}
    for spk in src.spk2utt:
        assert {shifts[u] for u in d.spk2utt[spk]} == {0.0}
        up, down = {shifts[u] for u in d.spk2utt[spk + "v0"]}, {shifts[u] for u in d.spk2utt[spk + "v1"]}
        assert len(up) == len(down) == 1 and 1.5 <= up.pop() <= 4 and -4 <= down.pop() <= -1.5
        assert speaker_shift(spk, 0, 1.5, 4.0, 3) != speaker_shift(spk, 0, 1.5, 4.0, 4)  # the seed matters
    utt = src.utt_ids[0]
    spk = src.utt2spk[utt]
    copy = f"{spk}v1{utt[len(spk) :]}"
    assert d.text[copy] == src.text[utt] and np.array_equal(d.load_audio(utt), src.load_audio(utt))
    assert np.allclose(
        d.load_audio(copy), shift_voice(src.load_audio(utt), speaker_shift(spk, 1, 1.5, 4.0, 3)), atol=1e-4
    )
    assert new_voices_data_dir(tiny_data / "dev", tmp_path / "v", 2, seed=3) == out  # complete: reused
    with pytest.raises(InputError, match=r"v: made with other settings"):
        new_voices_data_dir(tiny_data / "dev", tmp_path / "v", 1, seed=3)

    from speechssl.config import load_config
    from speechssl.downstream.wavthruvec import load_vocoder
    from speechssl.tasks.vec2mel import Vec2MelTrainConfig, train_mel_vocoder

    over = [
        f"upstream={upstream_25hz}",
        f"data.train={tiny_data / 'train'}",
        "data.valid=null",
        f"trainer.out_dir={tmp_path / 'mel'}",
        "trainer.max_steps=2",
        "data.new_voices=1",
    ]
    train_mel_vocoder(load_config(Vec2MelTrainConfig, ["tts/vec2mel_tiny"], over))
    _, spec = load_vocoder(tmp_path / "mel" / "final")
    train_spk = sorted(set(DataDir.read(tiny_data / "train").utt2spk.values()))
    assert spec["speakers"] == sorted(train_spk + [s + "v0" for s in train_spk])
    with pytest.raises(InputError, match="data.new_voices needs features of the new voices"):
        train_mel_vocoder(
            load_config(
                Vec2MelTrainConfig, ["tts/vec2mel_tiny"], over + [f"data.features={tmp_path / 'mel' / 'features'}"]
            )
        )
    # with a twin as the target, the twin's copies get the same shift per speaker and copy: still twins
    train_mel_vocoder(
        load_config(
            Vec2MelTrainConfig,
            ["tts/vec2mel_tiny"],
            over + [f"trainer.out_dir={tmp_path / 'mel_twin'}", f"data.target_train={tiny_data / 'train'}"],
        )
    )
    voices = tmp_path / "mel_twin" / "voices"
    src, twin = DataDir.read(voices / "train_x1_seed0"), DataDir.read(voices / "target_train_x1_seed0")
    assert twin.utt_ids == src.utt_ids and any("v0" in u for u in twin.utt_ids)
    assert (voices / "target_train_x1_seed0" / "utt2shift").read_text() == (
        voices / "train_x1_seed0" / "utt2shift"
    ).read_text()
