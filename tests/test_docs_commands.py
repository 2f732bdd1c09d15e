"""Every `speechssl` and `./run.sh` command in README.md and docs/ parses against the code as written, and a
training command's configs and overrides load (tools/check_docs.py); the checker fails on a stale option, a
renamed config key and an unknown recipe option, naming file and line."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("check_docs", ROOT / "tools" / "check_docs.py")
check_docs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_docs)


def test_every_documented_command_parses(capsys):
    assert check_docs.main([]) == 0, capsys.readouterr().out
    checked = int(capsys.readouterr().out.split("check_docs: ")[1].split()[0])
    assert checked >= 80


def test_the_checker_names_stale_commands(tmp_path, capsys):
    doc = tmp_path / "stale.md"
    doc.write_text(
        "text\n\n```bash\n"
        "speechssl kmeans learn --feats x -k 10 --out y --clusters 5   # an option that never was\n"
        "speechssl pretrain hubert --config pretrain/hubert_mini optim.learning_rate=1e-3\n"
        "./run.sh --stage 3 --corpus-dri /data\n"
        "speechssl kmeans learn --feats x -k 10 \\\n  --out y [--init kmeans++|random]   # fine\n"
        "```\n"
    )
    assert check_docs.main([str(doc)]) == 1
    out = capsys.readouterr().out
    assert "stale.md:4:" in out and "--clusters" in out
    assert "stale.md:5:" in out and "learning_rate" in out
    assert "stale.md:6:" in out and "--corpus-dri" in out
    assert "stale.md:7:" not in out and "3 failing" in out
