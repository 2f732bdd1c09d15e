"""The README's Python quick start runs as written (on a small model folder and a real recording)."""
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_quick_start_python_block_runs(testdata, tmp_path, monkeypatch):
    from speechssl.models import build_model, save_model

    code = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    save_model(build_model("hubert_small", num_layers=6, hidden_size=32, num_heads=2, ffn_dim=32,
                           pos_conv_kernel=16, pos_conv_groups=4), tmp_path / "exp" / "hubert_base")
    flac = next((testdata / "librispeech").rglob("*.flac"))
    (tmp_path / "utt.flac").write_bytes(flac.read_bytes())
    monkeypatch.chdir(tmp_path)
    scope = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert scope["layer6"].shape[0] == 1 and scope["layer6"].shape[2] == 32
    assert len(scope["out"].hidden_states) == 7
