"""Preparation of the real layouts: Mini LibriSpeech (train-clean-5), Libri-light's limited-supervision sets,
speaker-disjoint held-out splits. Small layouts are built in a temp dir from ../shared/testdata's LibriSpeech
recordings; the fetched corpora (docs/real-speech.md) are checked when present, else those tests skip."""

import json
import os
from pathlib import Path

import pytest

from speechssl.cli import main
from speechssl.data.heldout import split_by_reader
from speechssl.data.kaldi_dir import DataDir, DataDirError
from speechssl.data.librilight import prepare_librilight
from speechssl.data.librispeech import find_librispeech_root, prepare_librispeech
from speechssl.errors import InputError

CORPORA = Path(os.environ.get("SPEECHSSL_CORPORA", Path(__file__).resolve().parents[2] / "corpora"))


def test_corpus_dir_may_be_the_librispeech_folder_or_its_parent(librispeech_layout, tmp_path):
    librispeech_layout(tmp_path / "LibriSpeech", "train-clean-5")
    assert find_librispeech_root(tmp_path, ["train-clean-5"]) == tmp_path / "LibriSpeech"
    assert find_librispeech_root(tmp_path / "LibriSpeech", ["train-clean-5"]) == tmp_path / "LibriSpeech"
    with pytest.raises(DataDirError, match="dev-clean-2 found neither in it nor in"):
        find_librispeech_root(tmp_path, ["dev-clean-2"])
    for corpus_dir in (tmp_path, tmp_path / "LibriSpeech"):
        assert (
            main(
                [
                    "data",
                    "prep-librispeech",
                    "--corpus-dir",
                    str(corpus_dir),
                    "--subsets",
                    "train-clean-5",
                    "--out",
                    str(tmp_path / "data"),
                ]
            )
            == 0
        )
    d = DataDir.read(tmp_path / "data" / "train_clean_5")
    assert len(d) == 9 and d.extra["utt2reader"]["1089-134686-0000"] == "1089"
    assert d.text["1089-134686-0001"] == "STUFF IT INTO YOU HIS BELLY COUNSELLED HIM"


def test_reader_split_is_speaker_disjoint_and_loses_no_utterance(librispeech_layout, tmp_path):
    librispeech_layout(tmp_path, "train-clean-5")
    d = prepare_librispeech(tmp_path, "train-clean-5", tmp_path / "data" / "all")
    parts = split_by_reader(d, {"dev": ["1089"], "test": ["2412"]})
    readers = {name: {s.split("-")[0] for s in p.utt2spk.values()} for name, p in parts.items()}
    assert readers["dev"] == {"1089"} and readers["test"] == {"2412"}
    assert not readers["train"] & (readers["dev"] | readers["test"])
    assert sum(len(p) for p in parts.values()) == len(d)
    assert set(parts["dev"].text) == set(parts["dev"].utt2spk)  # tables follow their utterances
    with pytest.raises(InputError, match="reader 9999 has no utterance"):
        split_by_reader(d, {"dev": ["9999"]})
    with pytest.raises(InputError, match="reader 1089 is in held-out splits dev and test"):
        split_by_reader(d, {"dev": ["1089"], "test": ["1089"]})
    assert (
        main(
            [
                "data",
                "split-readers",
                "--data",
                str(tmp_path / "data" / "all"),
                "--out",
                str(tmp_path / "data"),
                "--split",
                "dev=1089",
                "--split",
                "test=2412,1272",
            ]
        )
        == 0
    )
    assert len(DataDir.read(tmp_path / "data" / "test")) == 3
    assert main(["data", "validate", str(tmp_path / "data" / "train")]) == 0


def _librilight_layout(build, root: Path) -> Path:
    """A Libri-light-shaped tree: 1h/0/clean, 1h/1/other, 9h/other (no 9h/clean, as the fetched copy), phones."""
    ll = root / "librispeech_finetuning"
    build(ll, "1h/0/clean", ["1089-134686-0000", "1089-134686-0001"])
    build(ll, "1h/1/other", ["2412-153948-0000"])
    for k in range(2, 6):
        build(ll, f"1h/{k}/clean", ["1089-134691-0000"] if k == 2 else [])
        (ll / f"1h/{k}/clean").mkdir(parents=True, exist_ok=True)
    build(ll, "9h/other", ["1995-1837-0001"])
    (ll / "phones").mkdir()
    (ll / "phones" / "phones_mapping.json").write_text(json.dumps({"h": 0, "iː": 1, "s": 2}))
    lines = "1089-134686-0000 0 1\n1089-134686-0001 2 1 0\n2412-153948-0000 1\n"
    (ll / "phones" / "1h_phones.txt").write_text(lines)
    (ll / "phones" / "10min_phones.txt").write_text(lines)
    (ll / "phones" / "10h_phones.txt").write_text(lines + "1995-1837-0001 9\n")
    return root


def test_librilight_sets_with_phone_transcriptions(librispeech_layout, tmp_path, caplog):
    root = _librilight_layout(librispeech_layout, tmp_path)
    one_hour = prepare_librilight(root, "1h", tmp_path / "data" / "1h")
    assert len(one_hour) == 4
    assert one_hour.extra["utt2cond"]["2412-153948-0000"] == "other"
    assert one_hour.extra["text.phone"]["1089-134686-0001"] == "s iː h"
    ten_min = prepare_librilight(root / "librispeech_finetuning", "10min", tmp_path / "data" / "10min")
    assert sorted(ten_min.utt2spk) == ["1089-134686-0000", "1089-134686-0001"]  # fold 0 only
    assert (tmp_path / "data" / "1h" / "text.phone").is_file()
    with pytest.raises(DataDirError, match=r"10h_phones.txt:4: phone id 9 is not in phones_mapping.json"):
        prepare_librilight(root, "10h", tmp_path / "data" / "10h")
    with caplog.at_level("WARNING"):
        (root / "librispeech_finetuning" / "phones" / "10h_phones.txt").write_text("")
        prepare_librilight(root, "9h", tmp_path / "data" / "9h")
    assert "9h/clean: missing" in caplog.text
    with pytest.raises(DataDirError, match="Libri-light set '2h'"):
        prepare_librilight(root, "2h", tmp_path / "data" / "2h")
    with pytest.raises(DataDirError, match="no Libri-light limited-supervision set"):
        prepare_librilight(tmp_path / "data" / "10min", "1h", tmp_path / "x")


@pytest.mark.skipif(
    not (CORPORA / "LibriSpeech" / "train-clean-5").is_dir(),
    reason=f"Mini LibriSpeech train-clean-5 not fetched at {CORPORA} (docs/real-speech.md)",
)
def test_fetched_mini_librispeech_has_its_published_size(tmp_path):
    d = prepare_librispeech(CORPORA / "LibriSpeech", "train-clean-5", tmp_path / "tc5")
    readers = {s.split("-")[0] for s in d.utt2spk.values()}
    assert len(d) == 1519 and len(readers) == 28
    assert abs(sum(d.utt2dur.values()) / 3600 - 5.31) < 0.01


@pytest.mark.skipif(
    not (CORPORA / "librispeech_finetuning" / "1h").is_dir(),
    reason=f"Libri-light limited supervision not fetched at {CORPORA} (docs/real-speech.md)",
)
def test_fetched_librilight_one_hour_has_its_published_size(tmp_path):
    d = prepare_librilight(CORPORA, "1h", tmp_path / "1h")
    assert len(d) == 286 and len({s.split("-")[0] for s in d.utt2spk.values()}) == 24
    assert abs(sum(d.utt2dur.values()) / 3600 - 1.04) < 0.01
    assert len(d.extra["text.phone"]) == 286


def _recipe_data_dirs(build, tmp_path: Path) -> Path:
    """The data dirs `run.sh --corpus mini_librispeech` stage 1 writes, on testdata's utterances: training readers
    1089, 1272 and 61, held-out readers 1995 (dev) and 2412 (test), a Libri-light 1 h set with folds 4 and 5."""
    root = _librilight_layout(build, tmp_path / "corpora")
    data = tmp_path / "data"
    tc5 = prepare_librispeech(build(tmp_path / "ls" / "LibriSpeech", "train-clean-5"), "train-clean-5", data / "tc5")
    for name, d in split_by_reader(tc5, {"dev": ["1995"], "test": ["2412"]}, rest="train").items():
        d.write(data / name)
    whole = prepare_librilight(root, "1h", data / "librilight_1h")
    whole.extra["text.phone"] = {u: "h iː" for u in whole.utt_ids}  # every utterance phoned, as the real set
    whole.write(data / "librilight_1h")
    for fold, utt in ((4, "1089-134686-0001"), (5, "2412-153948-0000")):
        whole.subset([utt]).write(data / f"librilight_1h_{fold}")
    return data


def test_superb_task_dirs_from_the_real_speech_data_dirs(librispeech_layout, tmp_path):
    """PR on Libri-light's phones (folds 0-3 / 4 / 5), ASR 1 h -> held-out readers, SID per-reader utterance
    split, ASV trials only among readers the head never trains on."""
    data = _recipe_data_dirs(librispeech_layout, tmp_path)
    assert (
        main(
            [
                "data",
                "prep-superb",
                "--layout",
                "mini_librispeech",
                "--task",
                "all",
                "--src",
                str(data),
                "--out",
                str(tmp_path / "superb"),
            ]
        )
        == 0
    )
    sup = tmp_path / "superb"
    pr = {s: DataDir.read(sup / "pr" / s) for s in ("train", "dev", "test")}
    assert pr["dev"].utt_ids == ["1089-134686-0001"] and pr["test"].utt_ids == ["2412-153948-0000"]
    assert not set(pr["train"].utt_ids) & {"1089-134686-0001", "2412-153948-0000"}
    assert all(d.extra["text.phone"] for d in pr.values())
    asr = {s: DataDir.read(sup / "asr" / s) for s in ("train", "dev", "test")}
    assert asr["dev"].utt_ids == ["1995-1837-0001"] and asr["test"].utt_ids == ["2412-153948-0000"]
    sid = {s: DataDir.read(sup / "sid" / s) for s in ("train", "dev", "test")}
    assert {u.split("-")[0] for s in sid.values() for u in s.utt_ids} == {"1089", "1272", "61"}
    assert set(sid["train"].extra["utt2label"].values()) == {"1089", "1272", "61"}
    asv_train = DataDir.read(sup / "asv" / "train")
    trials = (sup / "asv" / "test" / "trials").read_text().split("\n")[:-1]
    test_readers = {u.split("-")[0] for line in trials for u in line.split()[:2]}
    assert test_readers and not test_readers & set(asv_train.extra["utt2label"].values())
    assert {line.split()[2] for line in trials} <= {"target", "nontarget"} and any(" nontarget" in t for t in trials)
    info = json.loads((sup / "asv" / "task.json").read_text())
    assert info["layout"] == "mini_librispeech" and info["counts"]["trials"] == len(trials)
    # a missing fold is named with the option that writes it
    (data / "librilight_1h_4" / "wav.scp").unlink()
    import shutil

    shutil.rmtree(data / "librilight_1h_4")
    assert (
        main(
            [
                "data",
                "prep-superb",
                "--layout",
                "mini_librispeech",
                "--task",
                "pr",
                "--src",
                str(data),
                "--out",
                str(tmp_path / "again"),
            ]
        )
        == 2
    )


@pytest.mark.skipif(
    not (CORPORA / "librispeech_finetuning" / "1h").is_dir()
    or not (CORPORA / "LibriSpeech" / "train-clean-5").is_dir(),
    reason=f"Mini LibriSpeech or Libri-light not fetched at {CORPORA} (docs/real-speech.md)",
)
def test_superb_task_dirs_on_the_fetched_real_corpora(tmp_path):
    """The recipe's held-out readers (conf/mini_librispeech.conf) and Libri-light folds -> the four task dirs, with
    the sizes docs/real-speech.md states."""
    data = tmp_path / "data"
    tc5 = prepare_librispeech(CORPORA / "LibriSpeech", "train-clean-5", data / "tc5")
    for name, d in split_by_reader(tc5, {"dev": ["1970", "3242"], "test": ["3664", "4680"]}, rest="train").items():
        d.write(data / name)
    for name in ("1h", "1h/4", "1h/5"):
        prepare_librilight(CORPORA, name, data / ("librilight_" + name.replace("/", "_")))
    assert (
        main(
            [
                "data",
                "prep-superb",
                "--layout",
                "mini_librispeech",
                "--task",
                "all",
                "--src",
                str(data),
                "--out",
                str(tmp_path / "superb"),
            ]
        )
        == 0
    )
    counts = {
        t: json.loads((tmp_path / "superb" / t / "task.json").read_text())["counts"]
        for t in ("pr", "asr", "sid", "asv")
    }
    assert counts["pr"]["train"] + counts["pr"]["dev"] + counts["pr"]["test"] == 286
    assert counts["sid"]["speakers"] == 24 and counts["sid"]["train"] > 6 * counts["sid"]["test"]
    assert counts["asr"]["train"] == 286 and counts["asr"]["dev"] + counts["asr"]["test"] == len(tc5) - len(
        DataDir.read(data / "train")
    )
    assert counts["asv"]["test_readers"] >= 20 and counts["asv"]["target_trials"] > 0
    print(json.dumps(counts))
