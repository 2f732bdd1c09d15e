"""The README's Python quick start runs as written: a hub id from an offline cache the test fills with a
small WavLM, a real recording, and both exports."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def test_quick_start_python_block_runs(testdata, tmp_path, monkeypatch):
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("onnxruntime")
    code = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    cache = tmp_path / "hf"
    repo = cache / "models--microsoft--wavlm-base-plus"
    commit = "0" * 40
    small = transformers.WavLMModel(
        transformers.WavLMConfig(
            hidden_size=32,
            num_hidden_layers=6,
            num_attention_heads=2,
            intermediate_size=32,
            num_conv_pos_embeddings=16,
            num_conv_pos_embedding_groups=4,
            conv_dim=(32,) * 7,
            num_buckets=16,
            max_bucket_distance=40,
        )
    )
    small.save_pretrained(repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    flac = next((testdata / "librispeech").rglob("*.flac"))
    (tmp_path / "utt.flac").write_bytes(flac.read_bytes())
    monkeypatch.chdir(tmp_path)
    scope = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert scope["layer6"].shape[0] == 1 and scope["layer6"].shape[2] == 32
    assert len(scope["out"].hidden_states) == 7
    assert transformers.AutoModel.from_pretrained(tmp_path / "exp" / "wavlm_hf").config.model_type == "wavlm"
    assert (tmp_path / "exp" / "wavlm.int8.onnx").is_file()
