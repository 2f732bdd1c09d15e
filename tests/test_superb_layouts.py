"""SF, SD and QbE task dirs from the layouts SUPERB uses (Audio SNIPS, Libri2Mix, QUESST 2014), each built
as a fixture tree from the real recordings in ../shared/testdata; every task then trains or searches and
scores through ``speechssl superb``; bad trees give errors that name the file and line."""

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechssl.cli import main
from speechssl.corpus.superb_prep_sf_sd_qbe import (
    SNIPS_SPEAKERS,
    iob_to_slot_text,
    prepare_librimix,
    prepare_quesst14,
    prepare_snips,
)
from speechssl.data.kaldi_dir import DataDir
from speechssl.errors import InputError, MissingInputError

DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
FAST = [
    "trainer.max_steps=30",
    "trainer.val_every_steps=15",
    "batch_size=8",
    "head.project=16",
    "head.hidden=16",
    "head.layers=1",
    "trainer.progress_bar=false",
    "lr=3e-3",
]


def _fsdd(testdata):
    d = DataDir.read(testdata / "fsdd")
    return [
        (d.utt2spk[u], DIGITS.index(d.text[u].lower()), int(u.rsplit("_", 1)[1]), d.audio_source(u)[0])
        for u in d.utt_ids
    ]


def _link(src, dst: Path):
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(os.path.abspath(src), dst)


def _run(args):
    assert main(args) == 0


# ------------------------------------------------------------------------------ Audio SNIPS (SF)
def _snips_fixture(testdata, root: Path) -> Path:
    """SNIPS/all.iob.snips.txt and {train,valid,test}/<voice>-snips-<split>-<n>.wav from the spoken digits."""
    snips = root / "SNIPS"
    lines = []
    rec = _fsdd(testdata)  # 4 speakers x 10 digits x 5 takes
    for i, (_spk, digit, take, path) in enumerate(rec):
        split = "valid" if take == 3 else "test" if take == 4 else "train"
        voices = SNIPS_SPEAKERS["dev" if split == "valid" else split]
        uid = f"{voices[i % len(voices)]}-snips-{split}-{i}"
        _link(path, snips / split / f"{uid}.wav")
        # "play <digit> please": the digit is a one-word slot
        lines.append(f"{uid} BOS play {DIGITS[digit]} please EOS\tO O B-number O PlayNumber")
    _link(rec[0][3], snips / "train" / "Ivy-snips-train-99999.wav")  # a recording with no label line
    _link(rec[1][3], snips / "train" / "Brian-snips-train-88888.wav")  # a test voice in train: not used
    (snips / "all.iob.snips.txt").write_text("\n".join(lines) + "\n")
    return snips


def test_iob_tags_become_superb_slot_text():
    words = "play the song hey jude by the beatles".split()
    tags = ["O", "O", "O", "B-track", "I-track", "O", "B-artist", "I-artist"]
    assert iob_to_slot_text(words, tags) == "PLAY THE SONG B-track HEY JUDE E-track BY B-artist THE BEATLES E-artist"
    # two adjacent spans of one kind stay two spans; a stray I- opens one
    assert iob_to_slot_text(["a", "b", "c"], ["B-x", "B-x", "I-y"]) == "B-x A E-x B-x B E-x B-y C E-y"


def test_snips_layout_prepares_sf_with_the_benchmark_voices_and_trains(testdata, tmp_path, caplog):
    snips = _snips_fixture(testdata, tmp_path)
    counts = prepare_snips(snips, tmp_path / "sf")
    assert counts == {"train": 120, "dev": 40, "test": 40}
    assert "1 recordings have no line" in caplog.text
    train = DataDir.read(tmp_path / "sf" / "train")
    assert {train.utt2spk[u] for u in train.utt_ids} <= set(SNIPS_SPEAKERS["train"])
    slot = train.extra["text.slot"]
    u = train.utt_ids[0]
    assert slot[u].startswith("PLAY B-number ") and slot[u].endswith(" E-number PLEASE")
    assert train.extra["utt2label"][u] == "PlayNumber"
    out = tmp_path / "exp"
    _run(["superb", "--task", "sf", "--upstream", "fbank", "--data", str(tmp_path / "sf"), "--out", str(out)] + FAST)
    r = json.loads((out / "fbank" / "sf" / "result.json").read_text())
    assert r["layout"] == "snips" and r["test_utterances"] == 40 and 0 <= r["value"] <= 100
    assert r["slot_value_cer"] == r["extra_values"][0] >= 0  # the benchmark's second SF metric
    assert r["train_loss"]["end"] < r["train_loss"]["start"]
    # a malformed label line is named with its line number
    text = (snips / "all.iob.snips.txt").read_text().splitlines()
    text[2] = text[2].replace(" B-number", "")
    (snips / "all.iob.snips.txt").write_text("\n".join(text) + "\n")
    with pytest.raises(InputError, match=r"all.iob.snips.txt:3: 3 words but 2 slot tags"):
        prepare_snips(snips, tmp_path / "sf2")


# ------------------------------------------------------------------------------ Libri2Mix (SD)
def _librimix_fixture(testdata, root: Path, seconds: float = 4.0) -> Path:
    """Libri2Mix/wav16k/max/{split}/mix_both/<a>_<b>.wav from pairs of real LibriSpeech utterances (first
    ``seconds`` of each), the metadata CSVs (mixture paths from another machine) and the sources' RTTMs."""
    ls = DataDir.read(testdata / "librispeech")
    utts = [u for u in ls.utt_ids if ls.utt2spk[u]]
    pairs = [(a, b) for i, a in enumerate(utts) for b in utts[i + 1 :] if ls.utt2spk[a] != ls.utt2spk[b]]
    base = root / "Libri2Mix" / "wav16k" / "max"
    splits = {"train-100": pairs[:6], "dev": pairs[6:8], "test": pairs[8:10]}
    rttm_names = {"train-100": "train_clean_100", "dev": "dev_clean", "test": "test_clean"}
    (base / "metadata").mkdir(parents=True)
    (root / "metadata" / "LibriSpeech").mkdir(parents=True)
    n = int(seconds * 16000)
    for split, ps in splits.items():
        rows, rttm = [], set()
        for a, b in ps:
            wa, wb = ls.load_audio(a)[:n], ls.load_audio(b)[:n]
            mix = np.zeros(max(len(wa), len(wb)), np.float32)
            mix[: len(wa)] += wa
            mix[: len(wb)] += wb
            mix_id = f"{a}_{b}"
            sf.write(
                base / split / "mix_both" / f"{mix_id}.wav"
                if (base / split / "mix_both").is_dir()
                else _mkdir(base / split / "mix_both") / f"{mix_id}.wav",
                mix,
                16000,
            )
            rows.append(
                [
                    mix_id,
                    f"/corpora/LibriMix/Libri2Mix/wav16k/max/{split}/mix_both/{mix_id}.wav",
                    "s1.wav",
                    "s2.wav",
                    "noise.wav",
                    len(mix),
                ]
            )
            for u, w in ((a, wa), (b, wb)):
                spk = ls.utt2spk[u]
                rec = u[len(spk) + 1 :]  # s3prl's RTTMs name the utterance without its speaker
                dur = len(w) / 16000
                rttm.add(f"SPEAKER {rec} 1 0.100 {dur / 2 - 0.2:.3f} <NA> <NA> {spk} <NA> <NA>")
                rttm.add(f"SPEAKER {rec} 1 {dur / 2:.3f} {dur / 2 - 0.1:.3f} <NA> <NA> {spk} <NA> <NA>")
        with open(base / "metadata" / f"mixture_{split}_mix_both.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["mixture_ID", "mixture_path", "source_1_path", "source_2_path", "noise_path", "length"])
            w.writerows(rows)
        (root / "metadata" / "LibriSpeech" / f"{rttm_names[split]}.rttm").write_text("\n".join(sorted(rttm)) + "\n")
    return root


def _mkdir(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


def test_librimix_layout_prepares_sd_with_rttm_and_the_head_trains(testdata, tmp_path):
    from speechssl.downstream.diarization import read_rttm

    root = _librimix_fixture(testdata, tmp_path / "LibriMix")
    counts = prepare_librimix(root, tmp_path / "sd")
    assert counts == {"train": 6, "dev": 2, "test": 2}
    test = DataDir.read(tmp_path / "sd" / "test")
    ref = read_rttm(tmp_path / "sd" / "test" / "rttm")
    for u in test.utt_ids:  # two speakers, two segments each, from the sources
        assert sorted(ref[u]) == sorted({s.split("-")[0] for s in u.split("_")})
        assert all(len(segs) == 2 for segs in ref[u].values())
        assert Path(test.wav_scp[u]).is_file()  # the CSV's foreign path fell back to the standard place
    out = tmp_path / "exp"
    sd_fast = [o for o in FAST if not o.startswith("head.project")]  # the diarization head has no projection
    _run(["superb", "--task", "sd", "--upstream", "fbank", "--data", str(tmp_path / "sd"), "--out", str(out)] + sd_fast)
    r = json.loads((out / "fbank" / "sd" / "result.json").read_text())
    assert r["layout"] == "librimix" and 0 <= r["value"] <= 200 and 0 <= r["der_collar_0.25"] <= 200
    assert r["train_loss"]["end"] < r["train_loss"]["start"]
    # a source without speech activity is named with its CSV line
    rttm = root / "metadata" / "LibriSpeech" / "dev_clean.rttm"
    first_dev = (root / "Libri2Mix/wav16k/max/metadata/mixture_dev_mix_both.csv").read_text().splitlines()[1]
    src = first_dev.split(",")[0].split("_")[0]
    rttm.write_text("".join(l + "\n" for l in rttm.read_text().splitlines() if src.split("-", 1)[1] not in l))
    with pytest.raises(MissingInputError, match=rf"mixture_dev_mix_both.csv:2: source {src} .* no speech activity"):
        prepare_librimix(root, tmp_path / "sd2")


# ------------------------------------------------------------------------------ QUESST 2014 (QbE)
def _quesst_fixture(testdata, root: Path) -> Path:
    """quesst14Database: documents of three spoken digits each (takes 0-2), single-digit queries from take 4
    (dev: speaker 0, eval: speaker 1), English and non-English language keys, the ground-truth RTTMs."""
    rec = _fsdd(testdata)
    speakers = sorted({r[0] for r in rec})
    by = {(s, d, t): p for s, d, t, p in rec}
    (root / "Audio").mkdir(parents=True)
    rng = np.random.default_rng(0)
    docs, truth_words = [], {}
    for i in range(12):
        spk = speakers[i % 2]
        digits = [int(x) for x in rng.choice(10, 3, replace=False)]
        wav = np.concatenate([sf.read(by[(spk, d, i % 3)])[0] for d in digits]).astype(np.float32)
        name = f"quesst14_{i + 1:05d}"
        sf.write(root / "Audio" / f"{name}.wav", wav, 8000)
        docs.append(f"quesst14Database/Audio/{name}.wav nnenglish")
        truth_words[name] = digits
    docs.append("quesst14Database/Audio/quesst14_09999.wav nnczech")  # another language: left out
    scoring = root / "scoring"
    scoring.mkdir()
    (scoring / "language_key_utterances.lst").write_text("\n".join(docs) + "\n")
    for key, spk in (("dev", speakers[0]), ("eval", speakers[1])):
        lst, rttm = [], []
        for d in range(5):
            q = f"quesst14_{key}_{d + 1:04d}"
            _link(by[(spk, d, 4)], root / f"{key}_queries" / f"{q}.wav")
            lst.append(f"quesst14Database/{key}_queries/{q}.wav nnenglish")
            rttm += [f"LEXEME {doc} 1 0.00 0.50 {q} <NA> <NA> <NA>" for doc, ds in truth_words.items() if d in ds]
        lst.append(f"quesst14Database/{key}_queries/quesst14_{key}_0999.wav nnbasque")
        (scoring / f"language_key_{key}.lst").write_text("\n".join(lst) + "\n")
        gt = scoring / f"groundtruth_quesst14_{key}"
        gt.mkdir()
        (gt / f"quesst14_{key}.rttm").write_text("\n".join(rttm) + "\n")
    return root


def test_quesst_layout_prepares_qbe_and_searches_every_layer(testdata, tmp_path):
    root = _quesst_fixture(testdata, tmp_path / "quesst14Database")
    counts = prepare_quesst14(root, tmp_path / "qbe")
    assert counts["dev"]["queries"] == 5 and counts["dev"]["documents"] == 12
    terms = DataDir.read(tmp_path / "qbe" / "dev").extra["utt2terms"]
    gt = (root / "scoring" / "groundtruth_quesst14_dev" / "quesst14_dev.rttm").read_text().split("\n")
    assert sum(len(t.split()) for t in terms.values()) == len([l for l in gt if l])
    out = tmp_path / "exp"
    _run(
        [
            "superb",
            "--task",
            "qbe",
            "--upstream",
            "fbank",
            "--data",
            str(tmp_path / "qbe"),
            "--out",
            str(out),
            "trainer.progress_bar=false",
        ]
    )
    r = json.loads((out / "fbank" / "qbe" / "result.json").read_text())
    assert r["layout"] == "quesst14" and r["test_utterances"] == 5 * 12
    assert -1.0 <= r["value"] <= 1.0 and 0 < r["map"] <= 100
    # a query listed but absent is named with its list line
    os.unlink(root / "eval_queries" / "quesst14_eval_0003.wav")
    with pytest.raises(MissingInputError, match=r"language_key_eval.lst:3: .*quesst14_eval_0003.wav does not exist"):
        prepare_quesst14(root, tmp_path / "qbe2")


def test_prep_superb_cli_knows_the_new_layouts_and_refuses_a_mismatch(tmp_path, capsys):
    args = ["data", "prep-superb", "--src", str(tmp_path), "--out", str(tmp_path / "x")]
    assert main(args + ["--task", "sd", "--layout", "snips"]) != 0
    assert "layout snips prepares sf, not sd" in capsys.readouterr().err
    assert main(args + ["--task", "sf", "--layout", "snips"]) != 0
    assert "all.iob.snips.txt: missing (Audio SNIPS transcripts" in capsys.readouterr().err
