"""Shared fixtures: the real recordings in ../shared/testdata and a tiny synthetic corpus."""
from pathlib import Path

import pytest

TESTDATA = Path(__file__).resolve().parents[1].parent / "shared" / "testdata"


def _testdata_sets():
    return ["librispeech", "ljspeech", "fsdd", "pocketsphinx"]


@pytest.fixture(scope="session")
def testdata() -> Path:
    if not TESTDATA.is_dir():
        pytest.skip(f"real recordings not found at {TESTDATA} (../shared/testdata)")
    return TESTDATA


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    from speechssl.corpus.synth import synthesize_corpus

    root = tmp_path_factory.mktemp("corpus") / "tiny"
    synthesize_corpus(root, "tiny", seed=0, num_workers=2, progress=False)
    return root


@pytest.fixture(scope="session")
def tiny_data(tiny_corpus, tmp_path_factory) -> Path:
    from speechssl.data.librispeech import prepare_librispeech

    out = tmp_path_factory.mktemp("data")
    for split in ("train", "dev", "test", "test-unseen-speakers"):
        prepare_librispeech(tiny_corpus, split, out / split)
    return out
