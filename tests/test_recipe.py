"""The LibriSpeech recipe skeleton: stages gate, options parse, stages 0-2 and 4 run on the tiny corpus."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "librispeech"


@pytest.fixture()
def recipe(tmp_path):
    work = tmp_path / "recipes" / "librispeech"
    shutil.copytree(RECIPE, work, ignore=shutil.ignore_patterns("corpus", "data", "exp"))
    return work


def _run(recipe, *args):
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    return subprocess.run(["bash", "run.sh", *args], cwd=recipe, env=env, capture_output=True, text=True)


def test_unknown_option_and_bad_corpus_fail_clearly(recipe):
    r = _run(recipe, "--stgae", "1")
    assert r.returncode == 1 and "unknown option --stgae" in r.stderr
    r = _run(recipe, "--corpus", "timit")
    assert r.returncode == 1 and "--corpus must be mini or librispeech" in r.stderr


def test_stages_on_tiny_corpus(recipe):
    r = _run(recipe, "--stage", "0", "--stop-stage", "2", "--preset", "tiny", "--nj", "2")
    assert r.returncode == 0, r.stderr[-2000:]
    for split in ("train", "dev", "test", "test_unseen_speakers"):
        assert (recipe / "data" / split / "wav.scp").is_file()
        n = len((recipe / "data" / split / "utt2spk").read_text().splitlines())
        assert len((recipe / "exp" / "mfcc" / split / "feats.scp").read_text().splitlines()) == n
    r = _run(recipe, "--stage", "3", "--preset", "tiny")
    assert r.returncode == 1 and "issue 4" in r.stderr
    r = _run(recipe, "--stage", "4", "--preset", "tiny", "--train-sets", "dev", "--layers", "0,3")
    assert r.returncode == 0, r.stderr[-2000:]
    n = len((recipe / "data" / "dev" / "utt2spk").read_text().splitlines())
    for layer in (0, 3):
        assert len((recipe / "exp" / "feats" / "hubert_small" / "dev" / f"layer{layer}" / "feats.scp")
                   .read_text().splitlines()) == n
