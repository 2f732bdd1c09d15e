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
def librispeech_layout(testdata):
    """A builder: ``build(root, subset, ids=None)`` lays testdata's verified LibriSpeech utterances (or ``ids``) out
    as ``root/subset/SPK/CHAPTER/`` with their ``SPK-CHAPTER.trans.txt``, as LibriSpeech, Mini LibriSpeech and
    Libri-light ship them (copies in a temp dir; nothing goes into the repository)."""
    import shutil

    src = testdata / "librispeech"
    text = dict(line.split(maxsplit=1) for line in (src / "text").read_text().splitlines())
    scp = dict(line.split(maxsplit=1) for line in (src / "wav.scp").read_text().splitlines())

    def build(root: Path, subset: str, ids=None) -> Path:
        (root / subset).mkdir(parents=True, exist_ok=True)
        for utt in sorted(text) if ids is None else ids:
            spk, chapter, _ = utt.split("-")
            folder = root / subset / spk / chapter
            folder.mkdir(parents=True, exist_ok=True)
            audio = src / scp[utt].strip()
            shutil.copy(audio, folder / f"{utt}{audio.suffix}")
            with open(folder / f"{spk}-{chapter}.trans.txt", "a") as f:
                f.write(f"{utt} {text[utt].strip()}\n")
        return root

    return build


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


@pytest.fixture(scope="session")
def mfcc_labels(tiny_data, tmp_path_factory):
    """MFCC k-means(16) labels for the tiny corpus's train and dev sets."""
    from speechssl.cli import main

    root = tmp_path_factory.mktemp("labels")
    for split in ("train", "dev"):
        assert (
            main(
                [
                    "features",
                    "--data",
                    str(tiny_data / split),
                    "--out",
                    str(root / "mfcc" / split),
                    "--type",
                    "mfcc",
                    "--deltas",
                    "--cmvn",
                    "utt",
                    "--scale",
                    "float",
                ]
            )
            == 0
        )
    assert (
        main(
            [
                "kmeans",
                "learn",
                "--feats",
                str(root / "mfcc" / "train"),
                "-k",
                "16",
                "--out",
                str(root / "km"),
                "--restarts",
                "1",
            ]
        )
        == 0
    )
    for split in ("train", "dev"):
        assert (
            main(
                [
                    "kmeans",
                    "assign",
                    "--model",
                    str(root / "km"),
                    "--feats",
                    str(root / "mfcc" / split),
                    "--out",
                    str(root / "km" / split),
                ]
            )
            == 0
        )
    return root / "km"


@pytest.fixture(scope="session")
def upstream_25hz(tmp_path_factory) -> Path:
    """A tiny saved 25 Hz upstream: log-mel frontend, 4x subsampling, two Conformer blocks (w2v-BERT's shape)."""
    import torch

    from speechssl.models import save_model
    from speechssl.models.encoder import EncoderConfig, SpeechEncoder

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("upstream_25hz") / "model"
    save_model(
        SpeechEncoder(
            EncoderConfig(
                hidden_size=32,
                num_layers=2,
                num_heads=4,
                ffn_dim=64,
                pos_conv_kernel=0,
                frontend="fbank_conv2d",
                encoder="conformer",
                subsampler_channels=8,
            )
        ),
        path,
    )
    return path
