"""The independent judges work on real speech before they judge synthesis: resemblyzer separates the
speakers of ../shared/testdata, PocketSphinx recognises its read speech and not the same audio reversed,
and published MCD is zero for a copy, small for a time-stretched copy and larger for another speaker."""

import numpy as np
import pytest

from speechssl.data.kaldi_dir import DataDir

pytest.importorskip("resemblyzer", reason="the judges extra: pip install 'speechssl[judges]'")
pytest.importorskip("pocketsphinx", reason="the judges extra: pip install 'speechssl[judges]'")
pytest.importorskip("pyworld", reason="the judges extra: pip install 'speechssl[judges]'")


def test_speaker_judge_separates_real_speakers(testdata):
    from speechssl.downstream.speaker_judge import SpeakerJudge, judge_data_dir, verification_trials

    judge = SpeakerJudge()
    ls = judge_data_dir(judge, DataDir.read(testdata / "librispeech"), max_seconds=6.0)  # 114 s -> 56 s of audio
    assert ls["speakers"] == 6 and ls["eer"] <= 10.0  # measured 0.0
    assert ls["target_mean"] > ls["nontarget_mean"] + 0.15
    digits = judge_data_dir(judge, DataDir.read(testdata / "fsdd"), per_speaker=4)
    assert digits["trials"] == 120 and digits["eer"] <= 25.0  # 8 kHz digits under a second long
    with pytest.raises(Exception, match="at least two speakers"):
        verification_trials({"a": np.ones(2), "b": np.ones(2)}, {"a": "x", "b": "y"})


@pytest.fixture(scope="module")
def read_speech(testdata):
    """Six of the PocketSphinx test set's 11 transcribed utterances (four short commands, two LibriVox sentences;
    12.5 s of the 41 s: the decode is the cost) and their decode with the general LM (once: two tests read it)."""
    from speechssl.downstream.sphinx_judge import SphinxJudge, judge_wer

    d = DataDir.read(testdata / "pocketsphinx")
    chosen = ("cards_001", "cards_002", "cards_003", "goforward", "librivox_ss01-0880", "librivox_ss01-0930")
    wavs = {u: d.load_audio(u) for u in chosen if u in d.text}
    return d, wavs, judge_wer(SphinxJudge(), wavs, d.text)


def test_sphinx_judge_recognises_read_speech_and_not_its_reverse(read_speech):
    from speechssl.downstream.sphinx_judge import SphinxJudge, judge_wer

    d, wavs, floor = read_speech
    assert floor["utterances"] == 6 and floor["wer"] <= 35.0  # measured 16.67 (all 11: 21.9)
    backwards = {u: wavs[u][::-1].copy() for u in sorted(wavs)[:4]}  # four are plenty to fail on
    reversed_ = judge_wer(SphinxJudge(), backwards, d.text)
    assert reversed_["utterances"] == 4 and reversed_["wer"] >= 80.0


def test_published_mcd_zero_for_a_copy_small_for_a_stretch_larger_for_another_speaker(testdata):
    import librosa

    from speechssl.downstream.mcd import mcd_dtw

    d = DataDir.read(testdata / "librispeech")
    a = d.load_audio("1089-134686-0001")
    other = d.load_audio(next(u for u in d.utt_ids if d.utt2spk[u] != d.utt2spk["1089-134686-0001"]))[: len(a)]
    assert mcd_dtw(a, a)[0] == pytest.approx(0.0, abs=1e-9)
    stretched, frames = mcd_dtw(a, librosa.effects.time_stretch(a, rate=0.9))
    assert frames >= len(a) / 0.9 / 256 and stretched < 6.0  # measured 4.6 (phase-vocoder artefacts)
    assert mcd_dtw(a, other)[0] > stretched + 3.0  # measured 9.9


def test_sphinx_judge_takes_a_domain_lm_in_the_toolkits_upper_case_arpa(read_speech, tmp_path):
    from speechssl.downstream.ngram import train_arpa
    from speechssl.downstream.sphinx_judge import SphinxJudge, judge_wer
    from speechssl.errors import MissingInputError

    d, wavs, general_decode = read_speech
    train_arpa([d.text[u] for u in wavs], tmp_path / "lm.arpa", order=3)  # upper case, as the recipe's
    text = (tmp_path / "lm.arpa").read_text()
    assert "\\1-grams:" in text and any(w.isalpha() and w.isupper() for w in text.split())
    general = general_decode["wer"]
    domain = judge_wer(SphinxJudge(str(tmp_path / "lm.arpa")), wavs, d.text)["wer"]
    assert domain < general  # the LM is the one decoding
    with pytest.raises(MissingInputError, match="language model does not exist"):
        SphinxJudge(str(tmp_path / "nope.arpa"))
