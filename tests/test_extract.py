"""``speechssl extract``: values, formats, sharding, resume after a kill, bad audio, the CLI."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from speechssl.data.kaldi_dir import DataDir
from speechssl.models import build_model, model_config, save_model
from speechssl.pipelines.extract import extract_features, parse_layers, read_features

TINY = dict(
    hidden_size=32,
    num_layers=2,
    num_heads=4,
    ffn_dim=64,
    pos_conv_kernel=16,
    conv_layers=[[32, 10, 5], [32, 3, 2], [32, 3, 2], [32, 2, 2]],
)


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return build_model(model_config("hubert_small", **TINY)).eval()


@pytest.fixture(scope="module")
def tiny_model_dir(tiny_model, tmp_path_factory):
    return save_model(tiny_model, tmp_path_factory.mktemp("model") / "tiny")


def _direct(model, data, utt, layer):
    wav = torch.from_numpy(data.load_audio(utt, 16000))[None]
    with torch.no_grad():
        return model(wav).hidden_states[layer][0].numpy()


@pytest.mark.parametrize("dataset", ["librispeech", "ljspeech", "fsdd"])
def test_ark_features_equal_direct_forward(dataset, testdata, tiny_model, tmp_path):
    data = DataDir.read(testdata / dataset)
    src = testdata / dataset
    if len(data) > 30:  # fsdd: 200 short digits; 30 are plenty
        src = data.subset(data.utt_ids[:30]).write(tmp_path / "data")
        data = DataDir.read(src)
    summary = extract_features(tiny_model, src, tmp_path / "feats", "0,2", progress=False, batch_seconds=40)
    assert summary["extracted"] == len(data) and summary["skipped"] == 0
    import kaldiio

    feats = dict(kaldiio.load_scp(str(tmp_path / "feats" / "layer2" / "feats.scp")))
    assert sorted(feats) == data.utt_ids
    for utt in data.utt_ids[:4]:
        samples = len(data.load_audio(utt, 16000))
        assert feats[utt].shape == (int(tiny_model.output_lengths(torch.tensor(samples))), 32)
        np.testing.assert_allclose(feats[utt], _direct(tiny_model, data, utt, 2), atol=2e-4)


def test_layer_parsing():
    assert parse_layers("all", 3) == [0, 1, 2, 3]
    assert parse_layers("2,0", 3) == [0, 2]
    with pytest.raises(ValueError, match="out of range.*0..3"):
        parse_layers("4", 3)
    with pytest.raises(ValueError, match="comma-separated"):
        parse_layers("six", 3)


class _Killer(torch.nn.Module):
    """Wraps a model and dies on the n-th batch, as a killed job would."""

    def __init__(self, model, die_at):
        super().__init__()
        self.model, self.die_at, self.calls = model, die_at, 0
        self.num_layers, self.hidden_size, self.downsample_rate = (
            model.num_layers,
            model.hidden_size,
            model.downsample_rate,
        )
        self.output_lengths = model.output_lengths  # the whole upstream contract

    def forward(self, *args, **kwargs):
        self.calls += 1
        if self.calls == self.die_at:
            raise KeyboardInterrupt("killed")
        return self.model(*args, **kwargs)


def test_resume_after_kill_redoes_only_unfinished_work(testdata, tiny_model, tmp_path):
    src = testdata / "librispeech"
    ref = tmp_path / "ref"
    extract_features(tiny_model, src, ref, "1", fmt="npy", progress=False, batch_seconds=20, chunk_seconds=1)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        extract_features(
            _Killer(tiny_model, 4), src, out, "1", fmt="npy", progress=False, batch_seconds=20, chunk_seconds=1
        )
    committed = sorted(p.name for p in out.glob("index.0.*.json"))
    assert committed and not (out / "done.0").exists()
    # a chunk whose files were written but not committed (killed between the two): must be redone
    (out / "layer1" / "chunk.0.00099.npy").write_bytes(b"half")
    summary = extract_features(tiny_model, src, out, "1", fmt="npy", progress=False, batch_seconds=20, chunk_seconds=1)
    assert not (out / "layer1" / "chunk.0.00099.npy").exists()
    n = len(DataDir.read(src))
    assert summary["done_before"] > 0 and summary["done_before"] + summary["extracted"] == n
    got, want = dict(read_features(out, 1)), dict(read_features(ref, 1))
    assert sorted(got) == sorted(want) and len(got) == n
    for u in want:
        np.testing.assert_allclose(got[u], want[u], atol=1e-5)
    again = extract_features(tiny_model, src, out, "1", fmt="npy", progress=False)  # nothing left to do
    assert again["extracted"] == 0 and again["done_before"] == n


def test_shards_merge_only_when_all_ranks_are_done(testdata, tiny_model, tmp_path):
    src, out = testdata / "pocketsphinx", tmp_path / "feats"
    extract_features(tiny_model, src, out, "2", nshard=2, rank=1, progress=False)
    assert (out / "layer2" / "feats.1.scp").exists() and not (out / "layer2" / "feats.scp").exists()
    extract_features(tiny_model, src, out, "2", nshard=2, rank=0, progress=False)
    lines = (out / "layer2" / "feats.scp").read_text().splitlines()
    assert [l.split()[0] for l in lines] == DataDir.read(src).utt_ids
    with pytest.raises(ValueError, match="other settings"):
        extract_features(tiny_model, src, out, "0", nshard=2, rank=0, progress=False)


def test_float16_npy_and_ark_restriction(testdata, tiny_model, tmp_path):
    src = testdata / "pocketsphinx"
    extract_features(tiny_model, src, tmp_path / "h", "2", fmt="npy", dtype="float16", progress=False)
    arrays = dict(read_features(tmp_path / "h", 2))
    assert all(a.dtype == np.float16 for a in arrays.values()) and len(arrays) == len(DataDir.read(src))
    with pytest.raises(ValueError, match="float32"):
        extract_features(tiny_model, src, tmp_path / "x", "2", fmt="ark", dtype="float16", progress=False)


def test_bad_audio_names_the_utterance_or_is_skipped_and_logged(testdata, tiny_model, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(testdata / "pocketsphinx", data)
    audio = {l.split()[0]: l.split(maxsplit=1)[1] for l in (data / "wav.scp").read_text().splitlines()}
    victim = sorted(audio)[3]
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really")
    (data / "wav.scp").write_text(
        "".join(f"{u} {broken if u == victim else (testdata / 'pocketsphinx' / audio[u])}\n" for u in sorted(audio))
    )
    with pytest.raises(Exception, match=victim):
        extract_features(tiny_model, data, tmp_path / "f", "1", progress=False)
    summary = extract_features(tiny_model, data, tmp_path / "g", "1", skip_bad=True, progress=False)
    assert summary["skipped"] == 1
    bad = json.loads((tmp_path / "g" / "bad_utts.0.json").read_text())
    assert list(bad) == [victim]
    assert victim not in dict(read_features(tmp_path / "g", 1))


def test_cli_extract_on_synthetic_corpus(tiny_data, tiny_model_dir, tmp_path):
    out = tmp_path / "feats"
    cmd = [
        sys.executable,
        "-m",
        "speechssl.cli",
        "extract",
        "--model",
        str(tiny_model_dir),
        "--data",
        str(tiny_data / "dev"),
        "--layers",
        "all",
        "--out",
        str(out),
    ]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    n = len(DataDir.read(tiny_data / "dev"))
    assert summary["extracted"] == n and summary["frames"] > 0
    for layer in range(3):
        assert len((out / f"layer{layer}" / "feats.scp").read_text().splitlines()) == n
    r = subprocess.run(
        cmd[:-6] + ["--model", "/no/such/model", "--data", str(tiny_data / "dev"), "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and "/no/such/model" in r.stderr


def test_cli_convert_roundtrip(tmp_path):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    cfg = transformers.HubertConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        conv_dim=(32, 32),
        conv_kernel=(10, 3),
        conv_stride=(5, 2),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
        vocab_size=8,
    )
    transformers.HubertForCTC(cfg).save_pretrained(tmp_path / "hf")
    cmd = [sys.executable, "-m", "speechssl.cli", "convert", str(tmp_path / "hf"), str(tmp_path / "ours")]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 2 and "lm_head.weight" in r.stderr and "--drop-heads" in r.stderr
    r = subprocess.run(cmd + ["--drop-heads"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "dropped_heads: lm_head.bias, lm_head.weight" in r.stdout
    assert (tmp_path / "ours" / "model.safetensors").is_file()
