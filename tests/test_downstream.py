"""Downstream building blocks: featurizer, heads, metrics (WER / PER / CER, EER, accuracy) against
hand-computed values, vocabularies, CTC decoding (greedy, beam, n-gram LM) and the scoring dir."""

import math

import numpy as np
import pytest
import torch

from speechssl.data.tokenizers import TokenVocab
from speechssl.downstream.ctc_decode import BeamSearchDecoder, greedy_decode, greedy_ids
from speechssl.downstream.featurizer import WeightedSum, weights_plot
from speechssl.downstream.heads import AMSoftmax, BiLSTMCTC, IntentHead, MeanPoolLinear, XVector, masked_mean
from speechssl.downstream.metrics import accuracy, equal_error_rate, error_counts, per_utt_listing
from speechssl.downstream.ngram import train_arpa
from speechssl.downstream.scoring import write_scoring


# ------------------------------------------------------------------------------ featurizer
def test_weighted_sum_starts_as_the_average_and_learns_a_layer():
    states = [torch.full((2, 3, 4), float(i)) for i in range(5)]
    f = WeightedSum(5)
    assert torch.allclose(f(states), torch.full((2, 3, 4), 2.0))  # zero weights: plain mean
    with torch.no_grad():
        f.weights[3] = 20.0
    assert torch.allclose(f(torch.stack(states)), torch.full((2, 3, 4), 3.0), atol=1e-6)
    assert f.normalized_weights.argmax() == 3 and f.normalized_weights.sum() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="expects 5 hidden states, got 4"):
        f(states[:4])


def test_weighted_sum_layer_norm_equalises_scales(tmp_path):
    x = torch.randn(2, 3, 8)
    f = WeightedSum(2, layer_norm=True)
    out = f([x, 1000 * x])  # same direction, any scale: normalised states are equal
    ref = torch.nn.functional.layer_norm(x, (8,))
    assert torch.allclose(out, ref, atol=1e-4)
    weights_plot([0.1, 0.2, 0.7], tmp_path / "w.png", "t")
    assert (tmp_path / "w.png").read_bytes()[:4] == b"\x89PNG"


# ------------------------------------------------------------------------------ heads
def test_pooled_heads_ignore_padding():
    torch.manual_seed(0)
    x = torch.randn(1, 5, 6)
    padded = torch.cat([x, torch.randn(1, 4, 6) * 100], 1)
    n = torch.tensor([5])
    assert torch.allclose(masked_mean(padded, n), x.mean(1), atol=1e-5)
    head = MeanPoolLinear(6, 3, project=4)
    assert torch.allclose(head(x, n), head(padded, n), atol=1e-5)
    ic = IntentHead(6, [2, 3, 4])
    assert [t.shape for t in ic(x, n)] == [(1, 2), (1, 3), (1, 4)]
    xv = XVector(6, channels=8, pool_dim=10, embed_dim=5).eval()
    assert torch.allclose(xv(x, n), xv(padded, n), atol=1e-4)
    lstm = BiLSTMCTC(6, 7, hidden=8).eval()
    a, _ = lstm(x, n)
    b, _ = lstm(padded, n)
    assert torch.allclose(a, b[:, :5], atol=1e-5)


def test_am_softmax_applies_the_margin_to_the_target_only():
    am = AMSoftmax(2, 2, margin=0.4, scale=2.0)
    with torch.no_grad():
        am.weight.copy_(torch.eye(2))
    emb = torch.tensor([[1.0, 0.0]])  # cos = (1, 0)
    expected = -math.log(math.exp(2 * 0.6) / (math.exp(2 * 0.6) + math.exp(0.0)))
    assert am(emb, torch.tensor([0])).item() == pytest.approx(expected, rel=1e-5)
    # the other class as target: its cosine 0 loses the margin, class 0 keeps 1
    expected = -math.log(math.exp(2 * -0.4) / (math.exp(2 * -0.4) + math.exp(2.0)))
    assert am(emb, torch.tensor([1])).item() == pytest.approx(expected, rel=1e-5)


# ------------------------------------------------------------------------------ metrics
def test_wer_per_and_cer_against_hand_counts():
    refs = ["THE CAT SAT", "A B C D"]
    hyps = ["THE BAT SAT DOWN", "A C D"]
    c = error_counts(refs, hyps, "word")  # 1 sub + 1 ins ; 1 del
    assert (c.ref, c.sub, c.ins, c.dele) == (7, 1, 1, 1)
    assert c.rate == pytest.approx(300 / 7)
    assert c.line("WER", "exp/x") == "%WER 42.86 [ 3 / 7, 1 ins, 1 del, 1 sub ] exp/x"
    per = error_counts(["AH B K", "S IY"], ["AH P K T", ""], "word")  # sub + ins ; 2 del
    assert per.rate == pytest.approx(100 * 4 / 5)
    cer = error_counts(["AB CD"], ["AB CX"], "char")  # spaces do not count
    assert (cer.ref, cer.errors) == (4, 1)
    assert error_counts([""], ["X Y"], "word").ins == 2


def test_per_utt_listing_is_kaldi_shaped():
    text = per_utt_listing(["u1"], ["THE CAT SAT"], ["THE BAT SAT DOWN"])
    lines = text.splitlines()
    assert lines[0].split() == ["u1", "ref", "THE", "CAT", "SAT", "***"]
    assert lines[1].split() == ["u1", "hyp", "THE", "BAT", "SAT", "DOWN"]
    assert lines[2].split() == ["u1", "op", "C", "S", "C", "I"]
    assert lines[3] == "u1 #csid 2 1 1 0"


def test_equal_error_rate_hand_computed():
    # targets 0.9 0.8 0.3, non-targets 0.7 0.2 0.1: at threshold 0.7 one miss in 3 and one false alarm in 3
    eer, thr = equal_error_rate([0.9, 0.8, 0.3, 0.7, 0.2, 0.1], [1, 1, 1, 0, 0, 0])
    assert eer == pytest.approx(100 / 3) and thr == pytest.approx(0.7)
    assert equal_error_rate([0.9, 0.8, 0.2, 0.1], [1, 1, 0, 0])[0] == 0.0
    assert equal_error_rate([0.1, 0.2, 0.8, 0.9], [1, 1, 0, 0])[0] == 100.0
    # miss and false-alarm rates cross between ROC points: (fa 0, miss 1/2) -> (fa 1/2, miss 0) at 25 %
    assert equal_error_rate([0.9, 0.5, 0.5, 0.1], [1, 1, 0, 0])[0] == pytest.approx(25.0)
    with pytest.raises(ValueError, match="target and non-target"):
        equal_error_rate([0.1, 0.2], [1, 1])


def test_accuracy():
    assert accuracy([1, 2, 3, 4], [1, 2, 0, 4]) == 75.0
    assert accuracy([[1, 2], [0, 1]], [[1, 2], [0, 0]]) == 50.0  # intents: all slots must match


# ------------------------------------------------------------------------------ vocabulary and decoding
def test_letter_vocabulary_round_trip_and_fairseq_dict(tmp_path):
    v = TokenVocab.build(["HELLO WORLD", "HELL"], "char")
    assert v.tokens[:2] == ["<blank>", "<unk>"] and "|" in v.tokens
    ids = v.encode("HELLO WORLD")
    assert [v.tokens[i] for i in ids] == list("HELLO") + ["|"] + list("WORLD") + ["|"]
    assert v.decode(ids) == "HELLO WORLD"
    assert v.decode(v.encode("HEX")) == "HE<unk>"
    v.save(tmp_path / "tokens.txt")
    assert TokenVocab.load(tmp_path / "tokens.txt").tokens == v.tokens
    (tmp_path / "dict.ltr.txt").write_text("| 10\nE 5\nT 3\n")
    fs = TokenVocab.load(tmp_path / "dict.ltr.txt")
    assert fs.tokens == ["<s>", "<pad>", "</s>", "<unk>", "|", "E", "T"] and fs.blank == 0
    phones = TokenVocab.build(["AH B", "B K"], "phone")
    assert phones.decode(phones.encode("K AH")) == "K AH"


def _posteriors(vocab, frames):
    """Log-probs putting 0.9 on each frame's token (a string of tokens or '_' for blank)."""
    lp = torch.full((1, len(frames), len(vocab)), math.log(0.1 / (len(vocab) - 1)))
    for t, tok in enumerate(frames):
        lp[0, t, 0 if tok == "_" else vocab.index[tok]] = math.log(0.9)
    return lp


def test_greedy_ctc_collapses_repeats_and_blanks():
    v = TokenVocab.build(["AB BA"], "char")
    lp = _posteriors(v, ["A", "A", "_", "A", "B", "|", "B", "_", "A", "A", "|"])
    assert greedy_ids(lp, torch.tensor([11]))[0] == [v.index[c] for c in "AAB|BA|"]
    assert greedy_decode(lp, torch.tensor([11]), v) == ["AAB BA"]
    assert greedy_decode(lp, torch.tensor([5]), v) == ["AAB"]  # only the valid frames


def test_beam_search_matches_greedy_on_peaky_posteriors_and_uses_an_lm(tmp_path):
    v = TokenVocab.build(["CAT CUT", "AUC"], "char")
    lp = _posteriors(v, ["C", "A", "T", "|", "C", "U", "T"])
    assert BeamSearchDecoder(v, beam=8)(lp, torch.tensor([7])) == greedy_decode(lp, torch.tensor([7]), v)
    pytest.importorskip("kenlm")
    # an ambiguous middle letter: A and U equally likely; the LM has only seen "CUT"
    amb = _posteriors(v, ["C", "A", "T"])
    amb[0, 1] = torch.log(torch.tensor([0.02] + [0.0] * (len(v) - 1)).clamp_min(1e-6))
    amb[0, 1, v.index["A"]] = amb[0, 1, v.index["U"]] = math.log(0.49)
    train_arpa(["CUT"] * 20 + ["THE CUT"], tmp_path / "lm.arpa", order=2)
    with_lm = BeamSearchDecoder(v, beam=8, lm=str(tmp_path / "lm.arpa"), lm_weight=2.0, word_score=0.0)
    assert with_lm(amb, torch.tensor([3])) == ["CUT"]


def test_ngram_lm_is_normalised(tmp_path):
    counts = train_arpa(["A B C", "A B D", "B C A"], tmp_path / "lm.arpa", order=3)
    assert counts == {"1-grams": 7, "2-grams": 9, "3-grams": 8}
    text = (tmp_path / "lm.arpa").read_text()
    assert text.startswith("\n\\data\\\nngram 1=7\nngram 2=9\nngram 3=8\n") and text.rstrip().endswith("\\end\\")
    uni = {
        l.split("\t")[1]: 10 ** float(l.split("\t")[0])
        for l in text.split("\\1-grams:\n")[1].split("\n\n")[0].splitlines()
    }
    assert sum(p for w, p in uni.items() if w != "<s>") == pytest.approx(1.0, abs=1e-5)
    kenlm = pytest.importorskip("kenlm")
    m = kenlm.Model(str(tmp_path / "lm.arpa"))
    for ctx in (["A", "B"], ["C"]):
        total = sum(
            10 ** list(m.full_scores(" ".join(ctx + [w]), bos=False, eos=False))[-1][0]
            for w in ["A", "B", "C", "D", "</s>", "<unk>"]
        )
        assert total == pytest.approx(1.0, abs=1e-5)


def test_scoring_dir(tmp_path):
    r = write_scoring(tmp_path / "dec", ["u1", "u2"], ["A B", "C"], ["A X", "C"], "char", {"decoder": "greedy"})
    assert r["wer"]["rate"] == pytest.approx(100 / 3, abs=1e-3) and r["lines"][0].startswith("%WER 33.33 [ 1 / 3,")
    assert (tmp_path / "dec" / "hyp.txt").read_text() == "u1 A X\nu2 C\n"
    assert "u1 #csid 1 1 0 0" in (tmp_path / "dec" / "per_utt").read_text()
    assert (tmp_path / "dec" / "wer").read_text().splitlines()[1].startswith("%CER")
    p = write_scoring(tmp_path / "pr", ["u"], ["AH B"], ["AH"], "phone")
    assert p["per"]["rate"] == 50.0 and (tmp_path / "pr" / "per").exists()


# ------------------------------------------------------------------------------ the FBANK upstream
def test_fbank_upstream_follows_the_contract(tmp_path):
    import soundfile as sf

    from speechssl.audio.features import add_deltas, fbank, utterance_cmvn
    from speechssl.data.kaldi_dir import DataDir
    from speechssl.hub import load_upstream
    from speechssl.models import FbankUpstream
    from speechssl.pipelines.extract import extract_features, read_features

    up = load_upstream("fbank")
    assert isinstance(up, FbankUpstream) and up.num_layers == 0 and up.hidden_size == 240 and up.downsample_rate == 160
    torch.manual_seed(0)
    wavs = torch.randn(2, 8000) * 0.1
    lengths = torch.tensor([8000, 5000])
    out = up(wavs, lengths)
    assert len(out.hidden_states) == 1 and out.lengths.tolist() == [1 + (8000 - 400) // 160, 1 + (5000 - 400) // 160]
    one = fbank(wavs[1:, :5000] * 32768, num_mel_bins=80, dither=0.0)[0]
    ref = utterance_cmvn(add_deltas(one), norm_vars=True)[0]
    assert torch.allclose(out.hidden_states[0][1, : out.lengths[1]], ref, atol=1e-4)
    # it goes through the extractor like any model
    sf.write(tmp_path / "a.wav", wavs[0].numpy(), 16000)
    d = DataDir(wav_scp={"u1": str(tmp_path / "a.wav")}, utt2spk={"u1": "u1"})
    d.write(tmp_path / "data")
    extract_features(up, tmp_path / "data", tmp_path / "feats", "all", "npy", progress=False)
    ((utt, arr),) = list(read_features(tmp_path / "feats", 0))
    assert utt == "u1" and arr.shape == (48, 240)


def test_an_encoder_that_normalises_its_input_ignores_level_and_offset():
    from speechssl.models import build_model

    tiny = {
        "conv_layers": [[16, 10, 5], [16, 3, 2], [16, 2, 2]],
        "hidden_size": 16,
        "num_layers": 1,
        "num_heads": 2,
        "ffn_dim": 32,
        "pos_conv_kernel": 8,
        "pos_conv_groups": 2,
        "extractor_mode": "layer_norm",
    }
    torch.manual_seed(0)
    m = build_model("hubert_small", **tiny, normalize_waveform=True).eval()
    wav = torch.randn(2, 4000)
    lengths = torch.tensor([4000, 3000])
    a = m(wav, lengths).last_hidden_state
    b = m(wav * 7 + 0.3, lengths).last_hidden_state
    assert torch.allclose(a[0], b[0], atol=1e-4) and torch.allclose(a[1, :20], b[1, :20], atol=1e-4)
    plain = build_model("hubert_small", **tiny).eval()
    plain.load_state_dict(m.state_dict())
    assert not torch.allclose(
        plain(wav, lengths).last_hidden_state, plain(wav * 7 + 0.3, lengths).last_hidden_state, atol=1e-2
    )


def _exact_best_labelling(lp: np.ndarray, blank: int = 0):
    """Brute force: P(labelling) summed over every alignment of length T, the argmax labelling."""
    import itertools

    T, V = lp.shape
    totals = {}
    for path in itertools.product(range(V), repeat=T):
        collapsed = tuple(c for i, c in enumerate(path) if c != blank and (i == 0 or c != path[i - 1]))
        totals[collapsed] = np.logaddexp(totals.get(collapsed, -np.inf), sum(lp[t, c] for t, c in enumerate(path)))
    return list(max(totals, key=totals.get))


@pytest.mark.parametrize("seed", range(4))
def test_prefix_beam_search_finds_the_most_probable_labelling_not_the_best_path(seed):
    from speechssl.downstream.beam_search import CtcPrefixBeamSearch

    g = np.random.default_rng(seed)
    lp = np.log(g.dirichlet(np.ones(3) * 0.7, size=6))
    search = CtcPrefixBeamSearch(["", "a", "b"], boundary=None, beam=64, token_beam=3, prune=1e9)
    assert search.decode(lp) == _exact_best_labelling(lp)
    # best path (blank, blank) is the empty labelling, but "a" is spread over three alignments
    lp = np.log(np.array([[0.6, 0.4, 1e-9], [0.6, 0.4, 1e-9]]))
    assert search.decode(lp) == [1]  # P(a) = .4*.4 + .4*.6 + .6*.4 = .64 > P(empty) = .36
