import io

import numpy as np
import pytest
import soundfile as sf

from speechssl.audio import AudioError, info, load, save
from speechssl.data.kaldi_dir import DataDir


def all_testdata_files(root):
    return sorted(p for p in root.glob("*/*/*") if p.suffix in (".wav", ".flac"))


def test_every_testdata_file_loads_at_16k(testdata):
    files = all_testdata_files(testdata)
    rates = set()
    assert len(files) >= 230
    for path in files:
        native = sf.info(str(path))
        rates.add(native.samplerate)
        wav = load(path)
        assert wav.dtype == np.float32 and wav.ndim == 1
        expected = native.frames * 16000 / native.samplerate
        assert abs(wav.shape[0] - expected) <= 1, path
        assert np.isfinite(wav).all() and 0 < np.abs(wav).max() <= 1.0
    assert {8000, 16000, 22050} <= rates  # the sets really cover three rates
    assert {p.suffix for p in files} == {".wav", ".flac"}


def test_native_rate_and_resampling_preserve_content(testdata):
    path = testdata / "ljspeech/wavs/LJ001-0001.wav"
    native = load(path, sample_rate=None)
    assert native.shape[0] == sf.info(str(path)).frames
    down = load(path, 16000)
    back = load(io.BytesIO(_wav_bytes(down, 16000)), 22050)
    # a round trip through 16 kHz keeps the band below 8 kHz: high correlation with the source
    n = min(back.shape[0], native.shape[0])
    corr = np.corrcoef(back[:n], native[:n])[0, 1]
    assert corr > 0.95


def _wav_bytes(wav, sr, subtype="FLOAT"):
    buf = io.BytesIO()
    sf.write(buf, wav, sr, format="WAV", subtype=subtype)
    return buf.getvalue()


def test_multichannel_mix_and_pick(tmp_path):
    t = np.linspace(0, 1, 16000, endpoint=False)
    left, right = 0.5 * np.sin(2 * np.pi * 440 * t), 0.25 * np.ones_like(t)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], 1), 16000, subtype="FLOAT")
    np.testing.assert_allclose(load(path), (left + right) / 2, atol=1e-6)
    np.testing.assert_allclose(load(path, channel=1), right, atol=1e-6)
    with pytest.raises(AudioError, match="channel 2 requested, audio has 2"):
        load(path, channel=2)


@pytest.mark.parametrize("fmt,subtype", [("OGG", "VORBIS"), ("MP3", "MPEG_LAYER_III"), ("FLAC", "PCM_16")])
def test_compressed_formats(tmp_path, fmt, subtype):
    if subtype not in sf.available_subtypes(fmt):
        pytest.skip(f"libsndfile here cannot write {fmt}")
    t = np.linspace(0, 1, 16000, endpoint=False)
    x = (0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    path = tmp_path / f"a.{fmt.lower()}"
    sf.write(path, x, 16000, format=fmt, subtype=subtype)
    y = load(path)
    assert abs(y.shape[0] - 16000) < 2000  # codec padding
    # the tone survives: its spectral peak is at 300 Hz
    spec = np.abs(np.fft.rfft(y[:16000] if y.shape[0] >= 16000 else np.pad(y, (0, 16000 - y.shape[0]))))
    assert abs(int(spec.argmax()) - 300) <= 2


def test_pipe_segments_and_ark(testdata, tmp_path):
    src = testdata / "librispeech/audio/1089-134691-0000.flac"
    full = load(src)
    piped = load(f"cat {src} |")
    np.testing.assert_array_equal(full, piped)
    seg = load(src, start=0.5, end=1.25)
    np.testing.assert_allclose(seg, full[8000:20000], atol=1e-6)
    import kaldiio

    ark = tmp_path / "wav.ark"
    pcm = (full * 32767).astype(np.int16)
    with kaldiio.WriteHelper(f"ark,scp:{ark},{tmp_path / 'wav.scp'}") as w:
        w("utt", (16000, pcm))
    entry = (tmp_path / "wav.scp").read_text().split()[1]
    np.testing.assert_allclose(load(entry), full, atol=1e-4)


def test_datadir_pipes_and_segments(testdata, tmp_path):
    src = testdata / "librispeech/audio/1089-134691-0000.flac"
    d = tmp_path / "d"
    d.mkdir()
    (d / "wav.scp").write_text(f"rec1 cat {src} |\n")
    (d / "segments").write_text("rec1-a rec1 0.00 1.00\nrec1-b rec1 1.00 2.00\n")
    (d / "utt2spk").write_text("rec1-a rec1\nrec1-b rec1\n")
    dd = DataDir.read(d)
    assert dd.validate() == []
    a, b = dd.load_audio("rec1-a"), dd.load_audio("rec1-b")
    full = load(src)
    np.testing.assert_array_equal(np.concatenate([a, b]), full[:32000])
    assert dd.compute_utt2dur() == {"rec1-a": 1.0, "rec1-b": 1.0}


# --------------------------------------------------------------------------- bad input
def test_missing_file():
    with pytest.raises(AudioError, match="nope.wav: file not found"):
        load("nope.wav")


def test_empty_file(tmp_path):
    p = tmp_path / "empty.wav"
    p.write_bytes(b"")
    with pytest.raises(AudioError, match=r"empty\.wav: empty file \(0 bytes\)"):
        load(p)


def test_zero_length_audio(tmp_path):
    p = tmp_path / "zero.wav"
    sf.write(p, np.zeros(0, np.float32), 16000)
    with pytest.raises(AudioError, match="zero.wav: no audio samples"):
        load(p)


def test_truncated_wav(testdata, tmp_path):
    src = testdata / "librispeech/audio/1995-1837-0001.wav"
    p = tmp_path / "cut.wav"
    p.write_bytes(src.read_bytes()[:20000])
    with pytest.raises(AudioError, match="cut.wav: truncated WAV: header declares"):
        load(p)
    with pytest.raises(AudioError, match="truncated"):
        info(p)


def test_truncated_flac(testdata, tmp_path):
    src = testdata / "librispeech/audio/1089-134686-0000.flac"
    data = src.read_bytes()
    for cut in (3000, len(data) // 2):  # inside the first frames, and mid-stream
        p = tmp_path / f"cut{cut}.flac"
        p.write_bytes(data[:cut])
        with pytest.raises(AudioError, match=rf"cut{cut}.flac: unknown, truncated or corrupt"):
            load(p)


def test_corrupt_and_unknown_format(tmp_path):
    p = tmp_path / "noise.wav"
    p.write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(AudioError, match="noise.wav: unknown, truncated or corrupt audio"):
        load(p)
    t = tmp_path / "notes.txt"
    t.write_text("this is not audio\n" * 50)
    with pytest.raises(AudioError, match="notes.txt: unknown, truncated or corrupt audio"):
        load(t)
    with pytest.raises(AudioError, match="is a directory"):
        load(tmp_path)


def test_nan_inf_samples(tmp_path):
    x = np.zeros(1600, np.float32)
    x[10], x[20] = np.nan, np.inf
    p = tmp_path / "nan.wav"
    sf.write(p, x, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="nan.wav: 2 NaN/Inf samples"):
        load(p)


def test_failing_pipe():
    with pytest.raises(AudioError, match="pipe command failed with exit code 3"):
        load("echo oops >&2; exit 3 |")
    with pytest.raises(AudioError, match="produced no output"):
        load("true |")


def test_bad_segment(testdata):
    src = testdata / "librispeech/audio/1089-134691-0000.flac"
    with pytest.raises(AudioError, match="bad segment"):
        load(src, start=2.0, end=1.0)
    with pytest.raises(AudioError, match="past the end"):
        load(src, start=100.0, end=101.0)


def test_save_is_atomic_and_roundtrips(tmp_path):
    x = (0.1 * np.random.default_rng(0).standard_normal(8000)).astype(np.float32)
    save(tmp_path / "x.flac", x, 16000)
    assert not list(tmp_path.glob("*.tmp"))
    np.testing.assert_allclose(load(tmp_path / "x.flac"), x, atol=1e-4)


def test_a_pipe_gets_no_stdin_and_is_bounded_in_time_and_output(testdata, tmp_path, monkeypatch, capsys):
    wav = testdata / "librispeech/audio/1089-134691-0000.flac"
    # our stdin is a pipe nobody writes to: a command inheriting it would wait forever; closed, `cat -` ends
    import os

    read_end, write_end = os.pipe()
    saved = os.dup(0)
    os.dup2(read_end, 0)
    try:
        monkeypatch.setenv("SPEECHSSL_PIPE_TIMEOUT", "20")
        assert load(f"cat - ; cat {wav} |").size > 0
    finally:
        os.dup2(saved, 0)
        for fd in (saved, read_end, write_end):
            os.close(fd)
    monkeypatch.setenv("SPEECHSSL_PIPE_TIMEOUT", "1")
    with pytest.raises(AudioError, match=r"still running after 1 s .*killed"):
        load("sleep 30; cat x.wav |")
    monkeypatch.setenv("SPEECHSSL_PIPE_TIMEOUT", "30")
    monkeypatch.setenv("SPEECHSSL_PIPE_MAX_BYTES", "100000")
    with pytest.raises(AudioError, match=r"wrote more than 100000 bytes .*killed"):
        load("yes |")  # endless output
    d = tmp_path / "d"
    d.mkdir()
    (d / "wav.scp").write_text(f"u1 cat {wav} |\n")
    (d / "utt2spk").write_text("u1 u1\n")
    from speechssl.cli import main

    assert main(["data", "validate", str(d), "--check-audio"]) == 0
    assert "--check-audio runs the 1 pipe command(s) in wav.scp" in capsys.readouterr().err
