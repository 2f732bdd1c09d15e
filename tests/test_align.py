"""The independent phone aligner (PocketSphinx forced alignment): real utterances, its agreement with the
synthetic corpus's true alignments, and PNMI that counts what it could not align."""

import pytest

pytest.importorskip("pocketsphinx")

from speechssl.audio.phones import PHONE_SET  # noqa: E402
from speechssl.cli import main  # noqa: E402
from speechssl.data.kaldi_dir import DataDir  # noqa: E402
from speechssl.pipelines.align import align_data_dir, alignment_agreement, read_unaligned  # noqa: E402


def _segments(ctm: str):
    out = {}
    for line in ctm.splitlines():
        utt, _, start, dur, phone = line.split()
        out.setdefault(utt, []).append((float(start), float(dur), phone))
    return out


def test_real_utterances_are_aligned_and_failures_listed(testdata, tmp_path):
    src = testdata / "librispeech"
    assert main(["data", "align", "--data", str(src), "--out", str(tmp_path)]) == 0
    segs = _segments((tmp_path / "alignments.ctm").read_text())
    unaligned = read_unaligned(tmp_path)
    # the two utterances without a verified transcript are listed, with why; the nine others aligned
    assert unaligned == {"1088-134315-0000": "no transcript in text", "2412-153948-0001": "no transcript in text"}
    assert len(segs) == 9
    durations = DataDir.read(src).utt2dur or {}
    for utt, ss in segs.items():
        assert {p for _, _, p in ss} <= set(PHONE_SET)
        for (s0, d0, _), (s1, _, _) in zip(ss, ss[1:]):  # contiguous, in order
            assert abs(s0 + d0 - s1) < 0.011
        if utt in durations:
            assert abs(ss[-1][0] + ss[-1][1] - durations[utt]) < 0.05  # covers the recording
    # CMUdict's pronunciation, in order: "STUFF IT INTO YOU ..." (silence first)
    first = [p for _, _, p in segs["1089-134686-0001"] if p != "SIL"][:6]
    assert first == ["S", "T", "AH", "F", "IH", "T"]
    # 'COUNSELLED' is not in CMUdict: its American spelling's entry is used; 'TRIVIALITIES' (1272-141231-0002)
    # is not either: espeak-ng's letter-to-sound rules pronounce it
    assert "1089-134686-0001" in segs and "1272-141231-0002" in segs


def test_agreement_of_identical_and_shifted_alignments():
    ref = "u 1 0.00 0.20 SIL\nu 1 0.20 0.10 AH\nu 1 0.30 0.20 T\n"
    assert alignment_agreement(ref, ref)["frame_agreement"] == 1.0
    shifted = "u 1 0.00 0.22 SIL\nu 1 0.22 0.10 AH\nu 1 0.32 0.18 T\n"
    a = alignment_agreement(ref, shifted)
    assert a["frame_agreement"] == pytest.approx(46 / 50) and a["boundary_error_ms"] == pytest.approx(20.0)
    assert a["boundaries_within_20ms"] == 1.0


def test_aligner_agrees_with_the_synthetic_corpus_truth(tiny_data, tmp_path):
    """espeak-ng's own phone timings are the truth; PocketSphinx never saw them (its pronunciations are
    CMUdict's, so a word's phones can differ). Floors set below what the tiny dev set gives (stated in
    docs/real-speech.md)."""
    counts = align_data_dir(tiny_data / "dev", tmp_path)
    assert counts["unaligned"] == 0
    a = alignment_agreement(
        (tiny_data / "dev" / "alignments.ctm").read_text(), (tmp_path / "alignments.ctm").read_text()
    )
    assert a["utterances"] == counts["aligned"]
    assert a["frame_agreement"] > 0.5 and a["boundaries_within_20ms"] > 0.5, a


def test_pnmi_leaves_out_unaligned_utterances_and_says_how_many(tmp_path):
    import json

    import numpy as np

    from speechssl.clustering.metrics import evaluate_labels

    d = tmp_path / "data"
    d.mkdir()
    (d / "alignments.ctm").write_text("a 1 0.00 0.10 AH\na 1 0.10 0.10 T\n")
    (d / "alignments.unaligned").write_text("b not in the dictionary: XYZZY\n")
    labels = {"a": np.array([0] * 10 + [1] * 10), "b": np.array([1] * 5)}
    r = evaluate_labels(labels, d, frame_rate=100.0, num_clusters=2)
    assert r["pnmi"] > 0.5 and r["utterances"] == 1 and r["utterances_unaligned"] == 1
    (d / "alignments.unaligned").unlink()
    with pytest.raises(Exception, match="1 labelled utterances have no alignment"):
        evaluate_labels(labels, d, frame_rate=100.0, num_clusters=2)
    assert json.dumps(r)
