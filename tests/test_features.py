import numpy as np
import pytest
import soundfile as sf
import torch

from speechssl.audio import features as F
from speechssl.audio import load

knf = pytest.importorskip("kaldi_native_fbank")


def knf_features(kind, wav, sr, snip_edges=True, **opts):
    o = knf.FbankOptions() if kind == "fbank" else knf.MfccOptions()
    if kind == "fbank":
        o.mel_opts.num_bins = 80
        o.use_energy = opts.get("use_energy", False)
    o.frame_opts.dither = 0.0
    o.frame_opts.snip_edges = snip_edges
    o.frame_opts.samp_freq = sr
    comp = knf.OnlineFbank(o) if kind == "fbank" else knf.OnlineMfcc(o)
    comp.accept_waveform(sr, wav.tolist())
    comp.input_finished()
    return np.stack([comp.get_frame(i) for i in range(comp.num_frames_ready)])


def real_files(testdata):
    return sorted(p for p in testdata.glob("*/*/*") if p.suffix in (".wav", ".flac"))


def test_fbank_and_mfcc_parity_with_kaldi_native_fbank(testdata):
    """All real recordings at their native rate (8, 16, 22.05 kHz), dither 0.

    The reference computes in float32; in bins ~100 dB below a frame's peak its FFT has no
    precision left, so the 1e-3 bound is checked where the reference is meaningful: fbank bins
    within 80 dB of the frame peak, MFCC frames whose 23 mel bins all lie within 60 dB (the
    cepstral lifter multiplies bin noise by up to 12). Measured: fbank 7.9e-4, MFCC 2.7e-4;
    unrestricted max 4.4e-3 / 2.3e-3, median 2e-5.
    """
    worst = {"fbank": 0.0, "mfcc": 0.0, "fbank_all": 0.0, "mfcc_all": 0.0}
    medians = []
    for path in real_files(testdata):
        sr = sf.info(str(path)).samplerate
        wav = load(path, sample_rate=None)
        x = torch.from_numpy(wav)
        ours, n = F.fbank(x, sample_rate=sr)
        ref = knf_features("fbank", wav, sr)
        assert ours.shape == ref.shape and int(n) == ref.shape[0], path
        diff = np.abs(ours.numpy() - ref)
        near_peak = ref > ref.max(1, keepdims=True) - np.log(1e8)
        worst["fbank"] = max(worst["fbank"], diff[near_peak].max())
        worst["fbank_all"] = max(worst["fbank_all"], diff.max())
        ours_m, _ = F.mfcc(x, sample_rate=sr)
        ref_m = knf_features("mfcc", wav, sr)
        diff_m = np.abs(ours_m.numpy() - ref_m)
        mel23, _ = F.fbank(x, sample_rate=sr, num_mel_bins=23)
        mel23 = mel23.numpy()
        ok = mel23.min(1) > mel23.max(1) - np.log(1e6)
        if ok.any():
            worst["mfcc"] = max(worst["mfcc"], diff_m[ok].max())
        worst["mfcc_all"] = max(worst["mfcc_all"], diff_m.max())
        medians.append(np.median(diff_m))
    assert worst["fbank"] <= 1e-3, worst
    assert worst["mfcc"] <= 1e-3, worst
    assert worst["fbank_all"] <= 1e-2 and worst["mfcc_all"] <= 1e-2, worst
    assert max(medians) <= 1e-4


def test_snip_edges_false_and_energy_match_kaldi(testdata):
    path = testdata / "librispeech/audio/1089-134691-0000.flac"
    wav = load(path)
    x = torch.from_numpy(wav)
    for snip in (True, False):
        ours, _ = F.fbank(x, snip_edges=snip, use_energy=True)
        ref = knf_features("fbank", wav, 16000, snip_edges=snip, use_energy=True)
        assert ours.shape == ref.shape
        assert np.abs(ours.numpy() - ref).max() < 2e-3
        ours_m, _ = F.mfcc(x, snip_edges=snip)
        ref_m = knf_features("mfcc", wav, 16000, snip_edges=snip)
        assert ours_m.shape == ref_m.shape
        assert np.abs(ours_m.numpy() - ref_m).max() < 2e-3


def test_batched_equals_single(testdata):
    paths = [
        "librispeech/audio/1089-134691-0000.flac",
        "fsdd/recordings/3_george_1.wav",
        "pocketsphinx/audio/goforward.wav",
    ]
    wavs = [torch.from_numpy(load(testdata / p)) for p in paths]
    lengths = torch.tensor([w.shape[0] for w in wavs])
    batch = torch.nn.utils.rnn.pad_sequence(wavs, batch_first=True)
    for fn in (F.fbank, F.mfcc):
        for snip in (True, False):
            feats, counts = fn(batch, lengths, snip_edges=snip)
            for i, w in enumerate(wavs):
                single, n = fn(w, snip_edges=snip)
                assert int(counts[i]) == int(n) == single.shape[0]
                torch.testing.assert_close(feats[i, : int(n)], single, atol=1e-4, rtol=1e-5)
                assert feats[i, int(n) :].abs().sum() == 0  # padding frames are zero


def test_frame_counts_and_short_input():
    opts = F.FrameOptions()
    n = torch.tensor([0, 399, 400, 560, 16000])
    assert F.num_frames(n, opts).tolist() == [0, 0, 1, 2, 98]
    assert F.num_frames(n, F.FrameOptions(snip_edges=False)).tolist() == [0, 2, 3, 4, 100]
    feats, count = F.fbank(torch.zeros(100))
    assert feats.shape == (0, 80) and int(count) == 0


def test_dither_and_options():
    x = 0.01 * torch.randn(16000, generator=torch.Generator().manual_seed(0))
    a, _ = F.fbank(x)
    b, _ = F.fbank(x, dither=1.0, generator=torch.Generator().manual_seed(1))
    assert not torch.allclose(a, b)
    c, _ = F.fbank(x, num_mel_bins=40, low_freq=60.0, high_freq=-400.0, window_type="hamming")
    assert c.shape == (98, 40)
    with pytest.raises(TypeError, match="unknown FbankOptions option"):
        F.fbank(x, num_bins=40)
    with pytest.raises(ValueError, match="unknown window_type"):
        F.fbank(x, window_type="kaiser")
    with pytest.raises(ValueError, match="bad mel range"):
        F.fbank(x, low_freq=9000.0)
    with pytest.raises(ValueError, match=r"expected waveform \[T\] or \[B, T\]"):
        F.fbank(torch.zeros(1, 2, 3))


def test_deltas_match_kaldi_formula():
    torch.manual_seed(0)
    x = torch.randn(20, 13)
    y = F.add_deltas(x)
    assert y.shape == (20, 39)
    pad = torch.cat([x[:1], x[:1], x, x[-1:], x[-1:]])  # Kaldi replicates edge frames
    d = sum(n * (pad[2 + n : 22 + n] - pad[2 - n : 22 - n]) for n in (1, 2)) / 10
    torch.testing.assert_close(y[:, 13:26], d)
    pad2 = torch.cat([d[:1], d[:1], d, d[-1:], d[-1:]])
    dd = sum(n * (pad2[2 + n : 22 + n] - pad2[2 - n : 22 - n]) for n in (1, 2)) / 10
    torch.testing.assert_close(y[:, 26:], dd)
    # batched with padding: the short utterance replicates its own last frame, not padding
    batch = torch.stack([x, torch.cat([x[:12], torch.full((8, 13), 99.0)])])
    yb = F.add_deltas(batch, lengths=torch.tensor([20, 12]))
    torch.testing.assert_close(yb[1, :12], F.add_deltas(x[:12]))
    assert yb[1, 12:].abs().sum() == 0


def test_utterance_cmvn():
    torch.manual_seed(0)
    x = 3 + 2 * torch.randn(2, 50, 5)
    lengths = torch.tensor([50, 30])
    y = F.utterance_cmvn(x, lengths, norm_vars=True)
    torch.testing.assert_close(y[1, :30].mean(0), torch.zeros(5), atol=1e-5, rtol=0)
    torch.testing.assert_close(y[1, :30].std(0, unbiased=False), torch.ones(5), atol=1e-4, rtol=0)
    assert y[1, 30:].abs().sum() == 0
    torch.testing.assert_close(y[1, :30], F.utterance_cmvn(x[1, :30], norm_vars=True))


def test_cmvn_stats_kaldi_layout_and_speakers(tmp_path):
    import kaldiio

    torch.manual_seed(0)
    a, b = torch.randn(10, 3) + 5, torch.randn(6, 3) - 1
    stats = F.CmvnStats(3).accumulate(a).accumulate(b)
    both = torch.cat([a, b]).double()
    assert stats.count == 16
    torch.testing.assert_close(stats.stats[0, :3], both.sum(0))
    torch.testing.assert_close(stats.stats[1, :3], both.pow(2).sum(0))
    kaldiio.save_mat(str(tmp_path / "cmvn.ark"), stats.stats.numpy())
    back = F.CmvnStats(stats=torch.tensor(kaldiio.load_mat(str(tmp_path / "cmvn.ark"))))
    out = back.apply(torch.cat([a, b]), norm_vars=True)
    torch.testing.assert_close(out.mean(0), torch.zeros(3), atol=1e-5, rtol=0)
    per_spk = F.speaker_cmvn_stats([("s1-u1", a), ("s2-u1", b)], {"s1-u1": "s1", "s2-u1": "s2"})
    torch.testing.assert_close(per_spk["s2"].apply(b).mean(0), torch.zeros(3), atol=1e-5, rtol=0)
    with pytest.raises(KeyError, match="no speaker"):
        F.speaker_cmvn_stats([("x", a)], {})
    with pytest.raises(ValueError, match="empty"):
        F.CmvnStats(3).apply(a)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU on this machine")
def test_gpu_matches_cpu(testdata):
    x = torch.from_numpy(load(testdata / "librispeech/audio/1089-134691-0000.flac"))
    cpu, _ = F.fbank(x)
    gpu, _ = F.fbank(x.cuda())
    assert gpu.is_cuda
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-3, rtol=1e-4)


def test_cli_features_equal_kaldi_on_its_int16_scale(testdata, tmp_path):
    """`speechssl features` gives the numbers of Kaldi's compute-fbank-feats / compute-mfcc-feats (which read
    int16 samples); `--scale float` gives the float-scale ones, lower in log energy by ln(32768^2)."""
    import kaldiio

    from speechssl.cli import main
    from speechssl.data.kaldi_dir import DataDir

    d = DataDir.read(testdata / "pocketsphinx")
    utt = d.utt_ids[0]
    wav = d.load_audio(utt)
    for kind in ("fbank", "mfcc"):
        assert (
            main(
                ["features", "--data", str(testdata / "pocketsphinx"), "--out", str(tmp_path / kind), "--type", kind]
                + (["--opt", "num_mel_bins=80"] if kind == "fbank" else [])
            )
            == 0
        )
        ours = dict(kaldiio.load_scp(str(tmp_path / kind / "feats.scp")))[utt]
        ref = knf_features(kind, wav * 32768, 16000)
        assert ours.shape == ref.shape
        near = ref > ref.max(1, keepdims=True) - np.log(1e8) if kind == "fbank" else np.ones_like(ref, bool)
        assert np.abs(ours - ref)[near].max() < 2e-3 if kind == "fbank" else np.median(np.abs(ours - ref)) < 1e-3
    assert (
        main(
            [
                "features",
                "--data",
                str(testdata / "pocketsphinx"),
                "--out",
                str(tmp_path / "float"),
                "--type",
                "fbank",
                "--scale",
                "float",
                "--opt",
                "num_mel_bins=80",
            ]
        )
        == 0
    )
    flt = dict(kaldiio.load_scp(str(tmp_path / "float" / "feats.scp")))[utt]
    kal = dict(kaldiio.load_scp(str(tmp_path / "fbank" / "feats.scp")))[utt]
    assert np.median(kal - flt) == pytest.approx(np.log(32768.0**2), abs=1e-3)
