"""The command line starts without torch or Lightning: ``--help``, ``--version`` and the parser of every command
import only the standard library and omegaconf; each command imports the library when it runs. The constants
the parser shows (presets, SUPERB tasks, LM defaults, Kaldi's scale) are the library's own."""

import json
import subprocess
import sys

PROBE = """
import json, sys
before = set(sys.modules)
from speechssl.cli.main import build_parser
build_parser()
std = sys.stdlib_module_names
tops = {m.split(".")[0] for m in set(sys.modules) - before}
print(json.dumps(sorted(t for t in tops if not {t, t.lstrip("_")} & std and not t.lstrip("_").startswith("cython"))))
"""


def test_cli_parser_builds_with_the_standard_library_and_omegaconf_alone():
    """What makes ``--help`` fast, checked without a clock (a timing would depend on the machine and its load):
    building every command's parser imports no package but omegaconf and its YAML (torch alone takes seconds)."""
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    third_party = set(json.loads(out.stdout))
    assert third_party <= {"speechssl", "omegaconf", "yaml", "antlr4", "attr"}, third_party


def test_help_and_version_answer_from_the_light_parser():
    for argv in (["--version"], ["--help"], ["data", "validate", "--help"], ["kmeans", "learn", "--help"]):
        out = subprocess.run([sys.executable, "-m", "speechssl.cli", *argv], capture_output=True, text=True)
        assert out.returncode == 0, (argv, out.stderr)
        assert "speechssl" in out.stdout


def test_the_parsers_constants_are_the_librarys():
    from speechssl import constants
    from speechssl.corpus import synth
    from speechssl.corpus.presets import PRESETS
    from speechssl.corpus.superb_prep import LAYOUT_TASKS, MINI_TASKS
    from speechssl.downstream import ctc_decode
    from speechssl.pipelines import features
    from speechssl.tasks.superb import task_names

    assert tuple(task_names()) == constants.SUPERB_TASKS
    assert synth.PRESETS is PRESETS
    assert (LAYOUT_TASKS, MINI_TASKS) == (constants.SUPERB_LAYOUT_TASKS, constants.SUPERB_MINI_TASKS)
    assert ctc_decode.DEFAULT_LM_WEIGHT == constants.DEFAULT_LM_WEIGHT
    assert features.KALDI_SCALE == constants.KALDI_SCALE == 32768.0
    assert json.dumps(sorted(PRESETS))
