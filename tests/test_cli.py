import subprocess
import sys

import numpy as np
import pytest

from speechssl.cli import main
from speechssl.data.kaldi_dir import DataDir

SUBCOMMANDS = [
    ["corpus", "synth"],
    ["data", "prep-librispeech"],
    ["data", "validate"],
    ["data", "fix"],
    ["data", "utt2dur"],
    ["features"],
    ["demo"],
]


@pytest.mark.parametrize("cmd", [[]] + SUBCOMMANDS)
def test_help(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        main(cmd + ["--help"])
    assert e.value.code == 0
    assert "usage: speechssl" in capsys.readouterr().out


def test_console_script_installed():
    out = subprocess.run([sys.executable, "-m", "speechssl.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "features" in out.stdout


def test_validate_exit_codes(testdata, tmp_path, capsys):
    assert main(["data", "validate", str(testdata / "fsdd")]) == 0
    assert "0 errors" in capsys.readouterr().out
    assert main(["data", "validate", str(testdata / "librispeech")]) == 1
    out = capsys.readouterr().out
    assert "1088-134315-0000 has no entry in text" in out


def test_fix_cli_reports_drops(testdata, tmp_path, capsys):
    assert main(["data", "fix", str(testdata / "librispeech"), "--out", str(tmp_path / "f")]) == 0
    out = capsys.readouterr().out
    assert "kept 9 of 11 utterances" in out and "dropped 2: missing from text" in out
    assert DataDir.read(tmp_path / "f").validate() == []


def test_features_cli_sharded_resumable(testdata, tmp_path, capsys):
    import kaldiio
    import torch

    from speechssl.audio import features as F

    out = tmp_path / "mfcc"
    args = [
        "features",
        "--data",
        str(testdata / "pocketsphinx"),
        "--out",
        str(out),
        "--type",
        "mfcc",
        "--deltas",
        "--nshard",
        "2",
    ]
    assert main(args + ["--rank", "0"]) == 0
    assert not (out / "feats.scp").exists()  # shard 1 is not done yet
    assert main(args + ["--rank", "1"]) == 0
    assert "all shards done" in capsys.readouterr().out
    feats = dict(kaldiio.load_scp(str(out / "feats.scp")))
    d = DataDir.read(testdata / "pocketsphinx")
    assert sorted(feats) == d.utt_ids
    utt = d.utt_ids[0]
    ref, n = F.mfcc(torch.from_numpy(d.load_audio(utt)) * 32768)  # the CLI works on Kaldi's int16 scale
    ref = F.add_deltas(ref)
    assert feats[utt].shape == (int(n), 39)
    np.testing.assert_allclose(feats[utt], ref.numpy(), atol=1e-4)
    # a rerun skips finished shards (the ark is not rewritten)
    mtime = (out / "feats.0.ark").stat().st_mtime_ns
    assert main(args + ["--rank", "0"]) == 0
    assert (out / "feats.0.ark").stat().st_mtime_ns == mtime
    assert not list(out.glob("*.tmp"))


def test_features_skip_bad_audio(testdata, tmp_path, capsys):
    d = tmp_path / "d"
    d.mkdir()
    good = testdata / "fsdd/recordings/0_george_0.wav"
    (tmp_path / "bad.wav").write_bytes(b"RIFF....not audio")
    (d / "wav.scp").write_text(f"a {good}\nb {tmp_path}/bad.wav\n")
    (d / "utt2spk").write_text("a a\nb b\n")
    (d / "utt2dur").write_text("a 0.5\nb 0.5\n")
    args = ["features", "--data", str(d), "--out", str(tmp_path / "o"), "--type", "fbank"]
    assert main(args) == 2
    assert "utterance b" in capsys.readouterr().err
    assert main(args + ["--skip-bad"]) == 0
    assert "b" in (tmp_path / "o/bad_utts.0.json").read_text()


def test_demo_tiny(tmp_path, capsys):
    assert main(["demo", "--preset", "tiny", "--workdir", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    assert "test-unseen-speakers" in out and "corpus: 78 utterances, 8 speakers" in out
    for split in ("train", "dev", "test", "test_unseen_speakers"):
        assert DataDir.read(tmp_path / "demo/data" / split).validate() == []


def test_speaker_cmvn_with_shards_keeps_each_speaker_whole(testdata, tmp_path):
    """3 shards over 200 speaker-sorted utterances would cut a speaker in two; per-speaker
    CMVN must still use the speaker's full statistics."""
    import kaldiio
    import torch

    from speechssl.audio import features as F

    out = tmp_path / "fb"
    args = [
        "features",
        "--data",
        str(testdata / "fsdd"),
        "--out",
        str(out),
        "--type",
        "fbank",
        "--cmvn",
        "spk",
        "--nshard",
        "3",
    ]
    for rank in range(3):
        assert main(args + ["--rank", str(rank)]) == 0
    feats = dict(kaldiio.load_scp(str(out / "feats.scp")))
    d = DataDir.read(testdata / "fsdd")
    assert sorted(feats) == d.utt_ids
    shard_spk = [{d.utt2spk[l.split()[0]] for l in (out / f"feats.{r}.scp").read_text().splitlines()} for r in range(3)]
    assert sum(len(s) for s in shard_spk) == 4  # no speaker in two shards
    utts = d.spk2utt["jackson"]
    raw = {u: F.fbank(torch.from_numpy(d.load_audio(u)) * 32768)[0] for u in utts}
    stats = F.CmvnStats(80)
    for f in raw.values():
        stats.accumulate(f)
    for u in (utts[0], utts[-1]):
        np.testing.assert_allclose(feats[u], stats.apply(raw[u]).numpy(), atol=1e-3)
