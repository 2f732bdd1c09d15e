"""What a careless or hostile user hits first: each case ends in a clear error naming the file, utterance or
key (no traceback), or is handled correctly, and nothing is lost."""

import json
import os

import numpy as np
import pytest

from speechssl.cli import main
from speechssl.clustering.kmeans import check_label_range, read_labels
from speechssl.errors import InputError


@pytest.fixture()
def digits(testdata, tmp_path):
    """Six FSDD recordings as a data dir of our own (paths absolute)."""
    d = tmp_path / "digits"
    d.mkdir()
    src = testdata / "fsdd"
    lines = sorted((src / "wav.scp").read_text().splitlines())[:6]
    (d / "wav.scp").write_text("".join(f"{l.split()[0]} {src / l.split()[1]}\n" for l in lines))
    (d / "utt2spk").write_text("".join(f"{l.split()[0]} {l.split()[0]}\n" for l in lines))
    return d


def _err(capsys):
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_out_path_with_a_comma_is_a_path_and_truncates_nothing(digits, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "X").write_text("precious")
    assert main(["features", "--data", str(digits), "--out", "X,y/f", "--type", "fbank"]) == 0
    assert (tmp_path / "X").read_text() == "precious"
    scp = (tmp_path / "X,y" / "f" / "feats.scp").read_text().splitlines()
    assert len(scp) == 6 and all(os.path.isabs(l.split(" ", 1)[1]) for l in scp)  # works from any directory


def test_rerun_with_other_settings_is_refused_not_reused(digits, tmp_path, capsys):
    out = str(tmp_path / "feats")
    assert main(["features", "--data", str(digits), "--out", out, "--type", "mfcc"]) == 0
    assert main(["features", "--data", str(digits), "--out", out, "--type", "fbank"]) == 2
    err = _err(capsys)
    assert "made with other settings" in err and "kind: 'mfcc' there, 'fbank' now" in err
    assert main(["features", "--data", str(digits), "--out", out, "--type", "mfcc", "--nshard", "2"]) == 2
    assert "nshard: 1 there, 2 now" in _err(capsys)


def test_feature_options_and_short_utterances_are_checked(digits, tmp_path, capsys):
    assert main(["features", "--data", str(digits), "--out", str(tmp_path / "a"), "--opt", "num_mel_bins=0"]) == 2
    assert "num_mel_bins=0: must be a positive number" in _err(capsys)
    short = tmp_path / "short.wav"
    import soundfile as sf

    sf.write(short, np.zeros(100, np.float32), 16000)
    (digits / "wav.scp").write_text((digits / "wav.scp").read_text() + f"zz {short}\n")
    (digits / "utt2spk").write_text((digits / "utt2spk").read_text() + "zz zz\n")
    assert main(["features", "--data", str(digits), "--out", str(tmp_path / "b"), "--type", "fbank"]) == 2
    assert "utterance zz: 100 samples, shorter than one frame" in _err(capsys)
    assert main(["features", "--data", str(digits), "--out", str(tmp_path / "c"), "--type", "fbank", "--skip-bad"]) == 0
    assert "zz" in json.loads((tmp_path / "c" / "bad_utts.0.json").read_text())


def test_kmeans_bad_k_nan_features_and_labels_of_another_model(digits, tmp_path, capsys):
    feats = str(tmp_path / "feats")
    assert main(["features", "--data", str(digits), "--out", feats, "--type", "mfcc"]) == 0
    assert main(["kmeans", "learn", "--feats", feats, "-k", "0", "--out", str(tmp_path / "k0")]) == 2
    assert "-k must be >= 1, got 0" in _err(capsys)
    for k in (3, 4):
        assert (
            main(
                [
                    "kmeans",
                    "learn",
                    "--feats",
                    feats,
                    "-k",
                    str(k),
                    "--out",
                    str(tmp_path / f"km{k}"),
                    "--restarts",
                    "1",
                ]
            )
            == 0
        )
    assert (
        main(["kmeans", "assign", "--model", str(tmp_path / "km3"), "--feats", feats, "--out", str(tmp_path / "lab")])
        == 0
    )
    assert (
        main(["kmeans", "assign", "--model", str(tmp_path / "km4"), "--feats", feats, "--out", str(tmp_path / "lab")])
        == 2
    )
    assert "holds labels of another k-means model (differs in k" in _err(capsys)
    assert json.loads((tmp_path / "lab" / "kmeans.json").read_text())["k"] == 3  # not overwritten


def test_label_files_are_range_checked(tmp_path):
    f = tmp_path / "labels.txt"
    f.write_text("a 0 1 2\nb 1 -1\n")
    with pytest.raises(InputError, match=r"labels.txt:2: utterance b has a negative label"):
        read_labels(f)
    f.write_text("a 0 1 2\nb 1 10\n")
    with pytest.raises(InputError, match=r"utterance b has label 10 outside 0..9"):
        check_label_range(read_labels(f), 10, f)


def test_config_values_are_range_checked_naming_the_key(capsys):
    assert main(["superb", "--task", "ks", "--upstream", "fbank", "trainer.max_steps=-5"]) == 2
    assert "max_steps must be > 0, got -5" in _err(capsys)


@pytest.mark.parametrize(
    "override, message",
    [
        ("model_overrides.num_layers=abc", "encoder config field num_layers='abc': expected int"),
        ("model_overrides.num_layers=-3", "model_overrides.num_layers must be > 0, got -3"),
        ("objective.mask_prob=1.5", "objective.mask_prob must be in [0, 1], got 1.5"),
        ("data.batch_seconds=-1", "data.batch_seconds must be > 0, got -1.0"),
        ("optim.total_steps=-5", "optim.total_steps must be > 0, got -5"),
    ],
)
def test_dry_run_checks_types_and_ranges_naming_the_key(override, message, capsys):
    assert (
        main(["pretrain", "hubert", "--config", "pretrain/hubert_mini", "--dry-run", "data.train_labels=[x]", override])
        == 2
    )
    err = _err(capsys)
    assert message in err and err.count("\n") == 1


def _wav(path, seconds=2.0, rate=16000):
    import soundfile as sf

    sf.write(path, (0.1 * np.sin(np.arange(int(seconds * rate)) / 5)).astype(np.float32), rate)
    return path


def test_segments_past_the_end_or_infinite_are_refused(tmp_path, capsys):
    from speechssl.audio.io import AudioError, load

    w = _wav(tmp_path / "r.wav")
    assert len(load(w, start=1.0, end=2.3)) == 16000  # within Kaldi's 0.5 s overshoot: cut to the end
    with pytest.raises(AudioError, match=r"segment end 5.000s is more than 0.5s past the end of the audio"):
        load(w, start=1.0, end=5.0)
    with pytest.raises(AudioError, match="need finite"):
        load(w, start=0.0, end=float("inf"))
    d = tmp_path / "d"
    d.mkdir()
    (d / "wav.scp").write_text(f"r {w}\n")
    (d / "segments").write_text("r-1 r 0.0 inf\n")
    (d / "utt2spk").write_text("r-1 r\n")
    assert main(["data", "validate", str(d)]) == 1
    assert "segments:1: r-1: start/end must be finite" in capsys.readouterr().out
    assert main(["features", "--data", str(d), "--out", str(tmp_path / "f")]) == 2
    assert "need finite" in _err(capsys)


def test_a_truncated_wav_through_a_pipe_is_refused_like_the_file(tmp_path):
    from speechssl.audio.io import AudioError, load

    w = _wav(tmp_path / "r.wav")
    cut = tmp_path / "cut.wav"
    cut.write_bytes(w.read_bytes()[:20000])
    for source in (str(cut), f"cat {cut} |"):
        with pytest.raises(AudioError, match="truncated WAV"):
            load(source)
    assert len(load(f"cat {w} |")) == 32000


def test_extract_names_too_short_utterances_and_skip_bad_needs_no_utt2dur(tmp_path, capsys):
    from speechssl.models import build_model, save_model

    model = tmp_path / "m"
    save_model(
        build_model(
            "hubert_small", num_layers=1, hidden_size=32, num_heads=2, ffn_dim=32, pos_conv_kernel=16, pos_conv_groups=4
        ),
        model,
    )
    d = tmp_path / "d"
    d.mkdir()
    _wav(tmp_path / "ok.wav")
    _wav(tmp_path / "tiny.wav", seconds=0.01)
    (tmp_path / "broken.wav").write_bytes(b"RIFF....")
    (d / "wav.scp").write_text(f"a {tmp_path / 'ok.wav'}\nb {tmp_path / 'tiny.wav'}\nc {tmp_path / 'broken.wav'}\n")
    (d / "utt2spk").write_text("a a\nb b\nc c\n")
    args = ["extract", "--model", str(model), "--data", str(d), "--layers", "1"]
    assert main(args + ["--out", str(tmp_path / "x")]) == 2  # no utt2dur: the header read names c
    assert "utterance c" in _err(capsys)
    assert main(args + ["--out", str(tmp_path / "y"), "--skip-bad"]) == 0
    bad = json.loads((tmp_path / "y" / "bad_utts.0.json").read_text())
    assert sorted(bad) == ["b", "c"] and "shorter than one output frame" in bad["b"]
    (d / "wav.scp").write_text(f"a {tmp_path / 'ok.wav'}\nb {tmp_path / 'tiny.wav'}\n")
    (d / "utt2spk").write_text("a a\nb b\n")
    assert main(args + ["--out", str(tmp_path / "z")]) == 2
    assert "b (160 samples)" in _err(capsys)


def test_a_corrupt_ark_names_the_scp_line_and_utterance(digits, tmp_path, capsys):
    feats = tmp_path / "feats"
    assert main(["features", "--data", str(digits), "--out", str(feats), "--type", "mfcc"]) == 0
    ark = feats / "feats.0.ark"
    ark.write_bytes(ark.read_bytes()[: ark.stat().st_size // 2])  # truncated
    assert main(["kmeans", "learn", "--feats", str(feats), "-k", "2", "--out", str(tmp_path / "km")]) == 2
    err = _err(capsys)
    assert "feats.scp:" in err and "utterance " in err and "cannot read" in err


def test_a_wav_ark_inside_the_data_dir_is_read_not_decoded_as_text(tmp_path):
    """`u1 wav.ark:OFFSET` relative to the data dir: the binary ark beside the tables is carried as bytes."""
    import io

    import kaldiio

    from speechssl.data.kaldi_dir import DataDir

    d = tmp_path / "d"
    d.mkdir()
    wav = (3000 * np.sin(np.arange(16000) / 7)).astype(np.int16)
    listing = io.StringIO()
    with open(d / "wav.ark", "wb") as f:
        kaldiio.save_ark(f, {"u1": (16000, wav)}, scp=listing)
    offset = listing.getvalue().split(":")[-1].strip()
    (d / "wav.scp").write_text(f"u1 wav.ark:{offset}\n")
    (d / "utt2spk").write_text("u1 u1\n")
    data = DataDir.read(d)
    assert len(data.load_audio("u1")) == 16000
    assert main(["features", "--data", str(d), "--out", str(tmp_path / "f"), "--type", "fbank"]) == 0
    assert main(["data", "fix", str(d), "--out", str(tmp_path / "fixed")]) == 0
    assert (tmp_path / "fixed" / "wav.ark").read_bytes() == (d / "wav.ark").read_bytes()


def test_a_full_disk_names_the_output_and_leaves_no_partial_ark(digits, tmp_path, monkeypatch, capsys):
    import errno

    import kaldiio

    out = tmp_path / "feats"

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")  # as write() reports it: no file name

    monkeypatch.setattr(kaldiio, "save_ark", full)
    assert main(["features", "--data", str(digits), "--out", str(out), "--type", "fbank"]) == 2
    err = _err(capsys)
    assert f"writing {out}: No space left on device" in err
    assert not list(out.glob("*.ark")) and not (out / "feats.scp").exists()
