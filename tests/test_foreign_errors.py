"""Issue 40, point 9: a file that a foreign parser (YAML, safetensors, torch, ONNX, KenLM, NumPy) cannot read is one
line naming the file and the parser's reason, exit 2; a programming error keeps its traceback."""

import pytest
import torch

from speechssl.cli import main
from speechssl.utils.readers import UnreadableFileError, reading

TINY = dict(num_layers=1, hidden_size=32, num_heads=2, ffn_dim=32, pos_conv_kernel=16, pos_conv_groups=4)


def _one_line(capsys, *names):
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [l for l in err.splitlines() if "error:" in l]
    assert len(lines) == 1, err
    for name in names:
        assert name in lines[0], lines[0]
    return lines[0]


@pytest.fixture()
def model_dir(tmp_path):
    from speechssl.models import build_model, save_model

    return save_model(build_model("hubert_small", **TINY), tmp_path / "m")


def _truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def test_a_tab_in_a_yaml_config_names_the_file(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim:\n\tlr: 1e-3\n")
    assert main(["pretrain", "hubert", "--config", str(bad), "--dry-run"]) == 2
    line = _one_line(capsys, str(bad), "YAML")
    assert "ScannerError" in line and "\t" not in line


def test_a_truncated_model_safetensors_names_the_file(model_dir, tmp_path, capsys):
    _truncate(model_dir / "model.safetensors")
    assert main(["convert", str(model_dir), str(tmp_path / "out"), "--to", "hf"]) == 2
    _one_line(capsys, "model.safetensors", "not a readable safetensors file")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_truncated_fairseq_checkpoint_is_not_called_untrusted(tmp_path, capsys):
    pt = tmp_path / "hubert.pt"
    torch.save({"model": {"w": torch.zeros(1000)}, "cfg": {}}, pt)
    _truncate(pt)
    assert main(["convert", str(pt), str(tmp_path / "out")]) == 2
    line = _one_line(capsys, str(pt), "not a readable PyTorch checkpoint")
    assert "trust" not in line  # it is broken, not unsafe: --trust-pickle would not help


def test_a_text_file_given_as_lm_names_the_file(tmp_path):
    from speechssl.downstream.beam_search import WordLM

    lm = tmp_path / "words.txt"
    lm.write_text("HELLO WORLD\nTHIS IS NOT AN ARPA FILE\n")
    with pytest.raises(UnreadableFileError, match="words.txt: not a readable KenLM model"):
        WordLM(str(lm))


def test_an_onnx_file_that_is_not_onnx_names_the_file(tmp_path):
    from speechssl.interop.onnx_export import onnx_session

    fake = tmp_path / "model.onnx"
    fake.write_bytes(b"this is not a protobuf" * 10)
    (tmp_path / "model.onnx.json").write_text('{"layers": 2}')  # a sidecar does not make it a model
    with pytest.raises(UnreadableFileError, match="model.onnx: not a readable ONNX model"):
        onnx_session(fake)


def test_a_corrupt_kmeans_model_names_the_file(tmp_path):
    import numpy as np

    from speechssl.clustering.kmeans import KMeansModel

    d = tmp_path / "km"
    KMeansModel(np.zeros((4, 3), dtype=np.float32), {"k": 4, "dim": 3, "source": {"frame_rate": 50.0}}).save(d)
    _truncate(d / "centroids.npy", keep=0.3)
    with pytest.raises(UnreadableFileError, match="centroids.npy: not a readable NumPy array"):
        KMeansModel.load(d)


def test_the_edge_keeps_bugs_and_missing_files_as_they_are(tmp_path):
    with pytest.raises(TypeError):  # a bug in our call is not the file's fault
        with reading(tmp_path / "x", "thing"):
            raise TypeError("wrong argument")
    with pytest.raises(FileNotFoundError):  # the OS names a missing file already
        with reading(tmp_path / "x", "thing"):
            open(tmp_path / "x")
    with pytest.raises(UnreadableFileError, match=r"x: not a readable thing \(RuntimeError: bad magic\)"):
        with reading(tmp_path / "x", "thing"):
            raise RuntimeError("bad\n   magic")


def test_a_feats_scp_mixing_two_dimensions_names_both_utterances(tmp_path, capsys):
    import kaldiio
    import numpy as np

    d = tmp_path / "feats"
    d.mkdir()
    rng = np.random.default_rng(0)
    with kaldiio.WriteHelper(f"ark,scp:{d / 'f.ark'},{d / 'feats.scp'}") as w:
        for utt, dim in (("a", 13), ("b", 80), ("c", 13)):
            w(utt, rng.standard_normal((50, dim)).astype(np.float32))
    assert main(["kmeans", "learn", "--feats", str(d), "-k", "4", "--out", str(tmp_path / "km")]) == 2
    _one_line(capsys, "feats.scp", "utterance b has 80-dimensional features, a has 13")
    assert not (tmp_path / "km" / "kmeans.json").exists()


def test_an_encoder_too_big_for_memory_is_refused_before_allocation(testdata, tmp_path, monkeypatch, capsys):
    import speechssl.utils.memory as memory
    from speechssl.errors import InputError
    from speechssl.models import build_model

    monkeypatch.setattr(memory, "available_bytes", lambda: 100 << 20)  # a machine with 100 MiB free
    assert build_model("hubert_small", **TINY) is not None  # a small model fits
    with pytest.raises(
        InputError, match=r"hubert_base with its defaults \(0\.09B parameters.*needs 0\.4 GiB.* 0\.1 GiB"
    ):
        build_model("hubert_base")
    monkeypatch.setattr(memory, "available_bytes", lambda: 2 << 30)
    big = tmp_path / "huge.yaml"
    big.write_text("model: hubert_large\nmodel_overrides:\n  hidden_size: 16384\n  ffn_dim: 65536\n  num_heads: 16\n")
    labels = tmp_path / "labels"
    labels.mkdir()
    (labels / "labels.txt").write_text("a " + " ".join(["1"] * 104) + "\n")
    (labels / "kmeans.json").write_text('{"k": 4, "source": {"frame_rate": 50.0}}')
    data = tmp_path / "data"
    data.mkdir()
    (data / "wav.scp").write_text(f"a {testdata / 'librispeech/audio/1089-134691-0000.flac'}\n")
    (data / "utt2spk").write_text("a a\n")
    rc = main(
        [
            "pretrain",
            "hubert",
            "--config",
            str(big),
            f"data.train={data}",
            f"data.train_labels=[{labels}]",
            "data.valid=null",
            f"trainer.out_dir={tmp_path / 'run'}",
        ]
    )
    assert rc == 2
    _one_line(capsys, "hubert_large", "hidden_size': 16384", "needs", "2.0 GiB available", "--dry-run")
