"""The command's contract: defaults in help, -v after a sub-command, --version, one-line errors for bad input
and tracebacks for bugs; the helpers behind it (atomic writes, text read with file:line)."""

import os

import pytest

from speechssl import __version__
from speechssl.cli import main
from speechssl.errors import ConfigError, InputError, NotFoundError, SpeechSSLError
from speechssl.utils.atomic import atomic_path, write_text
from speechssl.utils.text import read_text_lines


def test_help_shows_defaults_and_version(capsys):
    with pytest.raises(SystemExit):
        main(["kmeans", "learn", "--help"])
    out = capsys.readouterr().out
    assert "(default: 100)" in out and "(default: kmeans++)" in out
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"speechssl {__version__}"


def test_verbose_after_the_subcommand(tmp_path, capsys):
    (tmp_path / "wav.scp").write_text("a a.wav\n")
    (tmp_path / "utt2spk").write_text("a a\n")
    assert main(["data", "validate", str(tmp_path), "-v"]) == 0
    assert main(["-v", "data", "validate", str(tmp_path)]) == 0


def test_user_errors_are_one_line_bugs_keep_their_traceback(tmp_path, capsys, monkeypatch):
    assert main(["data", "validate", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("speechssl data validate: error: ") and "nowhere: not a directory" in err
    assert "Traceback" not in err and err.count("\n") == 1
    # a programming error inside a command is not swallowed
    import speechssl.data.kaldi_dir as kaldi_dir

    monkeypatch.setattr(kaldi_dir, "DataDir", None)
    with pytest.raises(AttributeError):
        main(["data", "validate", str(tmp_path)])


def test_error_classes_are_also_the_builtins_callers_catch():
    assert issubclass(ConfigError, ValueError) and issubclass(InputError, SpeechSSLError)
    assert issubclass(NotFoundError, KeyError) and str(NotFoundError("no model x")) == "no model x"


def test_atomic_write_leaves_the_old_file_when_the_write_fails(tmp_path):
    target = tmp_path / "f.json"
    write_text(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["f.json"]


def test_text_files_name_file_line_and_byte(tmp_path):
    f = tmp_path / "text"
    f.write_bytes(b"u1 HELLO\nu2 WOR\xffLD\n")
    with pytest.raises(InputError, match=r"text:2: byte b'\\xff' at column 7 is not utf-8"):
        read_text_lines(f)
    (tmp_path / "wav.scp").write_text("u1 a.wav\nu2 b.wav\n")
    (tmp_path / "utt2spk").write_text("u1 u1\nu2 u2\n")
    assert main(["data", "validate", str(tmp_path)]) == 2
