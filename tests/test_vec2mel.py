"""vec2mel, WavThruVec's GAN-free vocoder: shapes at two mel frames per 25 Hz feature frame, Griffin-Lim's
inversion of a true log-mel, training on the tiny corpus (the loss falls, the upstream's hop is adopted, the
export drops into voice conversion), and text2vec's durations at a 25 Hz upstream."""

import numpy as np
import pytest
import torch

from speechssl.models.vec2mel import Vec2MelConfig, Vec2MelGenerator, griffin_lim
from speechssl.objectives.gan import LogMel


def _voiced(seconds: float = 1.0, f0: float = 140.0) -> np.ndarray:
    """A vowel-like test signal: 30 harmonics of a gliding f0 under a moving spectral envelope."""
    t = np.arange(int(16000 * seconds)) / 16000
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.2 * t)) / 16000
    formant = 600 + 900 * t / seconds
    wav = sum(np.exp(-(((k * f0 - formant) / 400) ** 2)) * np.sin(k * phase) for k in range(1, 31))
    return (0.5 * wav / np.abs(wav).max()).astype(np.float32)


def test_griffin_lim_turns_a_true_log_mel_back_into_audio_with_that_mel():
    cfg = Vec2MelConfig(hop_length=640, mel_hop_length=320)
    log_mel = LogMel(hop_length=320)
    wav = _voiced()
    mel = log_mel(torch.from_numpy(wav)[None])[0].T.numpy()  # [N, 80]
    out = griffin_lim(mel, cfg)
    assert out.shape == (len(mel) * 320,) and out.dtype == np.float32 and abs(np.abs(out).max() - 0.9) < 1e-4
    assert np.array_equal(out, griffin_lim(mel, cfg))  # seeded: the same audio twice
    again = log_mel(torch.from_numpy(out)[None])[0].T.numpy()
    speech = mel.max(1) > mel.max() - 6  # frames within 6 nepers of the peak
    a, b = mel[speech] - mel[speech].mean(), again[speech] - again[speech].mean()  # the level is normalised away
    r = float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))
    assert r > 0.9, r  # the spectrogram comes back
    noise = log_mel(torch.randn(1, len(wav)) * 0.1)[0].T.numpy()[speech]
    c = noise - noise.mean()
    assert float((a * c).sum() / np.sqrt((a * a).sum() * (c * c).sum())) < 0.5  # ... which noise does not do


def test_generator_gives_each_feature_frame_its_mel_frames_and_listens_to_the_speaker():
    torch.manual_seed(0)
    cfg = Vec2MelConfig(
        feature_dim=12,
        hop_length=640,
        mel_hop_length=320,
        channels=16,
        dilations=[1, 2],
        speaker_dim=6,
        griffin_lim_iters=2,
    )
    gen = Vec2MelGenerator(cfg).eval()
    gen.mel_mean.fill_(-3.0)
    feats, spk = torch.randn(2, 7, 12), torch.randn(2, 6)
    mel = gen(feats, spk)
    assert mel.shape == (2, 14, 80) and abs(float(mel.mean()) + 3) < 1  # around the training mean
    assert not torch.allclose(gen(feats, spk.flip(0))[0], mel[0])  # another speaker, another mel
    assert gen.waveform(feats, speaker=spk).shape == (2, 7 * 640)
    # the spread widens each bin's deviation from its utterance mean and leaves the mean where it was
    gen.mel_spread.fill_(2.0)
    wide = gen.restore_spread(mel)
    assert torch.allclose(wide.mean(1), mel.mean(1), atol=1e-5)
    assert torch.allclose(wide - wide.mean(1, keepdim=True), 2 * (mel - mel.mean(1, keepdim=True)), atol=1e-5)
    # an export from before the spread existed loads with the identity spread
    older = {k: v for k, v in gen.state_dict().items() if k != "mel_spread"}
    again = Vec2MelGenerator(cfg)
    again.load_state_dict(older)
    assert torch.equal(again.mel_spread, torch.ones(80)) and torch.equal(again.mel_mean, gen.mel_mean)
    with pytest.raises(ValueError, match="speaker-conditioned"):
        gen(feats)
    with pytest.raises(ValueError, match="vec2mel: features of width 11"):
        gen(torch.randn(1, 7, 11), spk[:1])
    with pytest.raises(ValueError, match="mel_hop_length 300 must divide the feature hop 640"):
        Vec2MelConfig(hop_length=640, mel_hop_length=300).validate()
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        Vec2MelConfig(kernel_size=4).validate()


def test_vec2mel_trains_resumes_and_converts_voices_on_the_tiny_corpus(tiny_data, upstream_25hz, tmp_path, monkeypatch):
    from speechssl.audio.io import info
    from speechssl.cli import main
    from speechssl.config import load_config
    from speechssl.downstream.wavthruvec import load_vocoder
    from speechssl.tasks.vec2mel import Vec2MelTrainConfig, train_mel_vocoder
    from speechssl.tasks.vec2wav import Vec2WavTrainConfig, train_vocoder

    up = upstream_25hz
    # valid = train: the loss is measured on whole training utterances, the same ones before and after
    over = [
        f"upstream={up}",
        f"data.train={tiny_data / 'train'}",
        f"data.valid={tiny_data / 'train'}",
        f"trainer.out_dir={tmp_path / 'mel'}",
        "optim.total_steps=200",
        "optim.lr=3e-3",
        "trainer.val_every_steps=3",
    ]
    first = train_mel_vocoder(load_config(Vec2MelTrainConfig, ["tts/vec2mel_tiny"], over + ["trainer.max_steps=3"]))
    later = train_mel_vocoder(
        load_config(
            Vec2MelTrainConfig, ["tts/vec2mel_tiny"], over + ["trainer.max_steps=200", "trainer.val_every_steps=100"]
        )
    )
    assert first["steps"] == 3 and later["steps"] == 200  # resumed, not restarted
    # with the papers' init of the upstream, 1.483 -> 1.318 (AMD EPYC, float32): a fall of more than 7 %
    assert later["metrics"]["val/mel"] < 0.93 * first["metrics"]["val/mel"], (first["metrics"], later["metrics"])
    gen, spec = load_vocoder(tmp_path / "mel" / "final")
    assert isinstance(gen, Vec2MelGenerator) and spec["layer"] == 2
    assert gen.cfg.hop_length == 640 and gen.cfg.mels_per_frame == 2  # the upstream's hop, adopted
    assert gen.cfg.feature_dim == 32 and float(gen.mel_mean.mean()) < -1  # the training mean, not zeros
    # the regression flattens the mel: the fitted spread widens it again, within its clamp
    spread = gen.mel_spread
    assert bool((spread >= 1).all() and (spread <= 3).all()) and float(spread.mean()) > 1.1, spread  # 1.39 seen
    src = next(iter(l.split(None, 1)[1] for l in (tiny_data / "test" / "wav.scp").read_text().splitlines()))
    ref = next(iter(l.split(None, 1)[1] for l in (tiny_data / "dev" / "wav.scp").read_text().splitlines()))
    vc = tmp_path / "vc.wav"
    assert (
        main(
            [
                "voice-convert",
                "--source",
                src,
                "--target-ref",
                ref,
                "--out",
                str(vc),
                "--vocoder",
                str(tmp_path / "mel" / "final"),
            ]
        )
        == 0
    )
    assert abs(info(str(vc)).num_frames - info(src).num_frames) < 2 * 640
    # the GAN vocoder, whose rates multiply to 320, is refused on a 640-sample upstream, with the reason; the hop
    # comes from the extracted features' spec, so the upstream is not loaded again
    import speechssl.tasks.tts_common as tts_common

    monkeypatch.setattr(tts_common, "load_upstream", lambda *a, **k: pytest.fail("upstream loaded again"))
    with pytest.raises(ValueError, match="a frame every 640 samples, but the vocoder's model.hop_length is 320"):
        train_vocoder(
            load_config(
                Vec2WavTrainConfig,
                ["tts/vec2wav_tiny"],
                over[:3] + [f"trainer.out_dir={tmp_path / 'gan'}", f"data.features={tmp_path / 'mel' / 'features'}"],
            )
        )


def test_text2vec_counts_alignment_durations_in_the_upstreams_frames(tiny_data, tmp_path):
    from speechssl.tasks.text2vec import AcousticDataset, alignments_from_ctm

    ctm = tiny_data / "train" / "alignments.ctm"
    at50, at25 = alignments_from_ctm(ctm, 50.0), alignments_from_ctm(ctm, 25.0)
    utt = sorted(at50)[0]
    assert at50[utt][0] == at25[utt][0] and abs(sum(at50[utt][1]) - 2 * sum(at25[utt][1])) <= 1
    frames = sum(at25[utt][1])
    feats = {u: np.zeros((sum(d) + 1, 4), np.float32) for u, (_, d) in at25.items()}  # an upstream a frame longer
    emb = {u: np.zeros(2, np.float32) for u in feats}
    ds = AcousticDataset(str(tiny_data / "train"), feats, emb, True, ["s"], hop=640)
    item = ds[ds.data.utt_ids.index(utt)]
    assert int(item["durations"].sum()) == len(item["features"]) == frames + 1 and item["samples"] == (frames + 1) * 640
    assert item["durations"][:-1].tolist() == at25[utt][1][:-1]  # only the last phone absorbs the difference


def test_vocoder_crops_take_their_audio_from_the_target_twin_and_refuse_a_stranger(tiny_data, tmp_path):
    from speechssl.audio.io import save
    from speechssl.data.kaldi_dir import DataDir
    from speechssl.errors import InputError
    from speechssl.tasks.vocoder_data import VocoderDataset

    data = DataDir.read(tiny_data / "train")
    utts = data.utt_ids[:4]
    data.subset(utts).write(tmp_path / "src")
    twin = DataDir.read(tmp_path / "src")
    for u in utts:  # the twin: the same utterances at a third of the level (as the clean corpus is, at its own)
        save(tmp_path / f"{u}.wav", data.load_audio(u) / 3, 16000)
        twin.wav_scp[u] = str(tmp_path / f"{u}.wav")
    twin.write(tmp_path / "twin")
    feats = {u: np.random.randn(len(data.load_audio(u)) // 640, 8).astype(np.float32) for u in utts}
    emb = {u: np.zeros(4, np.float32) for u in utts}
    ds = VocoderDataset(str(tmp_path / "src"), feats, emb, None, 640, [], target_dir=str(tmp_path / "twin"))
    item = ds[0]
    n = item["frames"] * 640
    np.testing.assert_allclose(item["wav"][:n].numpy(), data.load_audio(utts[0])[:n] / 3, atol=1e-4)
    # a twin that lacks an utterance, or whose audio is another length, is refused by name
    DataDir.read(tmp_path / "twin").subset(utts[1:]).write(tmp_path / "short")
    with pytest.raises(InputError, match=f"short: 1 utterances of .*src have no target audio \\(first: {utts[0]}\\)"):
        VocoderDataset(str(tmp_path / "src"), feats, emb, None, 640, [], target_dir=str(tmp_path / "short"))
    save(tmp_path / f"{utts[0]}.wav", np.zeros(16000 * 9, np.float32), 16000)
    with pytest.raises(InputError, match=f"target audio of {utts[0]} lasts 225 frames .* not its twin"):
        ds[0]
