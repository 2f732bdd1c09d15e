"""WavThruVec building blocks: vec2wav generator and discriminators (shape bookkeeping, config validation),
HiFi-GAN losses, monotonic alignment search against brute force, the length regulator, and text2vec."""

import dataclasses
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from speechssl.data.kaldi_dir import DataDir
from speechssl.models.text2vec import Text2Vec, Text2VecConfig
from speechssl.models.vec2wav import MultiPeriodDiscriminator, MultiScaleDiscriminator, Vec2WavConfig, Vec2WavGenerator
from speechssl.nn.alignment import durations_from_path, length_regulate, monotonic_alignment_search
from speechssl.objectives.gan import LogMel, discriminator_loss, feature_matching_loss, generator_loss, mel_l1_loss


def tiny_vocoder(**kw) -> Vec2WavConfig:
    cfg = dict(
        feature_dim=12,
        upsample_rates=[10, 8, 4],
        upsample_kernel_sizes=[20, 16, 8],
        upsample_initial_channel=32,
        resblock_kernel_sizes=[3, 5],
        resblock_dilations=[[1, 3], [1, 3]],
        speaker_dim=6,
    )
    cfg.update(kw)
    return Vec2WavConfig(**cfg)


def test_vocoder_config_names_the_hop_mismatch():
    with pytest.raises(ValueError, match=r"multiply to 256.*hop_length=320"):
        tiny_vocoder(upsample_rates=[8, 8, 4], upsample_kernel_sizes=[16, 16, 8]).validate()
    with pytest.raises(ValueError, match="kernel 9 for rate 10"):
        tiny_vocoder(upsample_kernel_sizes=[9, 16, 8]).validate()
    with pytest.raises(ValueError, match="3 upsample_rates but 2"):
        tiny_vocoder(upsample_kernel_sizes=[20, 16]).validate()
    assert Vec2WavConfig().validate().upsample_rates == [10, 8, 2, 2]  # the default multiplies to 320


def test_generator_turns_each_frame_into_a_hop_of_samples_and_listens_to_the_speaker():
    torch.manual_seed(0)
    gen = Vec2WavGenerator(tiny_vocoder()).eval()
    feats = torch.randn(2, 7, 12)
    spk = torch.randn(2, 6)
    wav = gen(feats, spk)
    assert wav.shape == (2, 7 * 320) and wav.abs().max() <= 1
    assert not torch.allclose(gen(feats, spk.flip(0))[0], wav[0])  # another speaker, another waveform
    # frames are local: the first frames' samples barely depend on the last frame. The tolerance sits between
    # the CPU conv kernels' run-to-run noise (the same input twice: up to 6e-6) and a real dependence
    # (frame 1 moved by 3 changes the first hop by 6e-3); 1e-6 failed 2 runs in 20 on noise alone
    feats2 = feats.clone()
    feats2[:, -1] += 3
    assert torch.allclose(gen(feats2, spk)[:, :320], wav[:, :320], atol=1e-4)
    feats1 = feats.clone()
    feats1[:, 1] += 3
    assert not torch.allclose(gen(feats1, spk)[:, :320], wav[:, :320], atol=1e-4)  # ... and does on its own
    with pytest.raises(ValueError, match="speaker-conditioned"):
        gen(feats)
    with pytest.raises(ValueError, match="width 11"):
        gen(torch.randn(1, 7, 11), spk[:1])
    table = Vec2WavGenerator(tiny_vocoder(num_speakers=3)).eval()
    assert table(feats, speaker_ids=torch.tensor([0, 2])).shape == (2, 7 * 320)


def test_a_codebook_snaps_frames_to_learnt_units_and_travels_with_the_export(tmp_path):
    from speechssl.downstream.wavthruvec import load_vocoder
    from speechssl.tasks.vocoder_data import learn_codebook
    from speechssl.training import save_export

    rng = np.random.default_rng(0)
    centres = rng.normal(0, 5, (3, 12)).astype(np.float32)
    feats = {
        f"u{i}": (centres[rng.integers(0, 3, 40)] + rng.normal(0, 0.1, (40, 12))).astype(np.float32) for i in range(5)
    }
    book = learn_codebook(feats, 3, seed=0)
    assert book.shape == (3, 12)
    assert all(np.abs(book.numpy() - c).sum(1).min() < 0.5 for c in centres)  # one centroid per cluster
    torch.manual_seed(0)
    gen = Vec2WavGenerator(tiny_vocoder(codebook_size=3)).eval()
    gen.codebook.copy_(book)
    x = torch.from_numpy(centres[[0, 1, 2, 1]])[None]
    units = gen.quantize(x)
    assert all(any(torch.equal(row, b) for b in book) for row in units[0])  # every frame is a centroid
    assert torch.equal(gen.quantize(x + 0.3), units)  # small moves keep the unit
    spk = torch.randn(1, 6)
    assert torch.equal(gen(x + 0.3, spk), gen(x - 0.2, spk))  # the input is the units, nothing else
    save_export(gen, tmp_path / "voc", "vocoder", {"vec2wav": dataclasses.asdict(gen.cfg)})
    loaded, _ = load_vocoder(tmp_path / "voc")
    assert torch.equal(loaded.codebook, book)
    with pytest.raises(ValueError, match="needs at least as many training frames"):
        learn_codebook({"u": np.zeros((2, 12), np.float32)}, 3)


def test_discriminators_and_losses():
    torch.manual_seed(0)
    mpd = MultiPeriodDiscriminator(channels=(4, 8, 16, 16))
    msd = MultiScaleDiscriminator(width=4)
    real, fake = torch.randn(2, 3200) * 0.1, torch.randn(2, 3200) * 0.1
    for disc, n in ((mpd, 5), (msd, 3)):
        out = disc(real)
        assert len(out) == n and all(s.shape[0] == 2 and len(f) >= 5 for s, f in out)
    ones = [(torch.ones(2, 5), [torch.zeros(1)])]
    zeros = [(torch.zeros(2, 5), [torch.ones(1)])]
    assert discriminator_loss(ones, zeros).item() == 0.0  # a perfect discriminator
    assert discriminator_loss(zeros, ones).item() == 2.0
    assert feature_matching_loss(ones, ones).item() == 0.0 and feature_matching_loss(ones, zeros).item() == 1.0
    log_mel = LogMel()
    assert mel_l1_loss(log_mel, real, real).item() == 0.0 and mel_l1_loss(log_mel, real, fake).item() > 0.1
    assert log_mel(real).shape == (2, 80, 3200 // 256 + 1) or log_mel(real).shape[:2] == (2, 80)
    fake.requires_grad_(True)
    parts = generator_loss([mpd(real), msd(real)], [mpd(fake), msd(fake)], mel_l1_loss(log_mel, real, fake))
    parts["loss"].backward()
    assert fake.grad.abs().sum() > 0
    assert parts["loss"].item() == pytest.approx(
        parts["adv"].item() + 2 * parts["fm"].item() + 45 * parts["mel"].item(), rel=1e-5
    )


def _brute_force_best(value, tx, ty):
    best, best_path = -float("inf"), None
    for cuts in itertools.combinations(range(1, ty), tx - 1):
        bounds = (0,) + cuts + (ty,)
        score = sum(value[i, bounds[i] : bounds[i + 1]].sum().item() for i in range(tx))
        if score > best:
            best, best_path = score, bounds
    return best, best_path


def test_monotonic_alignment_search_finds_the_best_monotonic_path():
    g = torch.Generator().manual_seed(0)
    for tx, ty in ((1, 4), (3, 3), (3, 7), (4, 9), (5, 8)):
        value = torch.randn(1, tx, ty, generator=g)
        path = monotonic_alignment_search(value, torch.tensor([tx]), torch.tensor([ty]))[0]
        assert torch.equal(path.sum(0), torch.ones(ty))  # each frame to one token
        d = durations_from_path(path[None])[0]
        assert (d >= 1).all() and d.sum() == ty
        best, bounds = _brute_force_best(value[0], tx, ty)
        assert (path * value[0]).sum().item() == pytest.approx(best, abs=1e-5)
        assert d.tolist() == [bounds[i + 1] - bounds[i] for i in range(tx)]


def test_alignment_search_respects_padding_and_refuses_short_items():
    g = torch.Generator().manual_seed(1)
    value = torch.randn(2, 4, 9, generator=g)
    x_len, y_len = torch.tensor([4, 2]), torch.tensor([9, 5])
    path = monotonic_alignment_search(value, x_len, y_len)
    alone = monotonic_alignment_search(value[1:, :2, :5], x_len[1:], y_len[1:])
    assert torch.equal(path[1, :2, :5], alone[0]) and path[1, 2:].sum() == 0 and path[1, :, 5:].sum() == 0
    with pytest.raises(ValueError, match="item 0 has 2 frames for 3 tokens"):
        monotonic_alignment_search(value[:1, :3, :2], torch.tensor([3]), torch.tensor([2]))


def test_length_regulator_matches_repeat_interleave():
    x = torch.randn(2, 3, 4)
    d = torch.tensor([[2, 0, 3], [1, 1, 1]])
    out, frames = length_regulate(x, d)
    assert frames.tolist() == [5, 3] and out.shape == (2, 5, 4)
    assert torch.equal(out[0], torch.repeat_interleave(x[0], d[0], dim=0))
    assert torch.equal(out[1, :3], x[1]) and out[1, 3:].abs().sum() == 0


@pytest.mark.parametrize("block", ["transformer", "conformer"])
def test_text2vec_learns_features_and_durations(block):
    torch.manual_seed(0)
    cfg = Text2VecConfig(
        num_phones=6,
        feature_dim=8,
        dim=32,
        encoder_layers=1,
        decoder_layers=1,
        heads=2,
        ffn_dim=64,
        block=block,
        dropout=0.0,
        speaker_dim=4,
        duration_predictor_channels=16,
    )
    model = Text2Vec(cfg)
    # two utterances: phone p lasts p + 1 frames and has its own feature vector
    protos = torch.randn(6, 8) * 2
    phones = torch.tensor([[1, 2, 3, 4], [5, 2, 1, 0]])
    plen = torch.tensor([4, 3])
    durs = (phones + 1) * (phones > 0)
    feats, flen = length_regulate(protos[phones], durs)
    spk = torch.randn(2, 4)
    # alignment search on the model's own projection: with mu at the true prototypes it recovers the durations
    with torch.no_grad():
        assert model.align(protos[phones], feats, plen, flen).tolist() == durs.tolist()
    # teacher-forced training on given durations (a corpus's phone alignments): features and durations fit
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _step in range(150):
        out = model(phones, plen, feats, flen, speaker=spk, durations=durs)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        first = first if first is not None else out["loss"].item()
    assert out["loss"].item() < 0.3 * first and out["features"].shape == feats.shape
    model.eval()
    pred, frames = model.synthesize(phones, plen, speaker=spk)
    assert frames.tolist() == flen.tolist() and pred.shape[1] == int(flen.max())
    assert torch.nn.functional.cosine_similarity(pred[0, : int(flen[0])], feats[0, : int(flen[0])], dim=-1).mean() > 0.9
    # without durations the step aligns by itself: one per token, covering every frame
    out = model(phones, plen, feats, flen, speaker=spk)
    assert (out["durations"].sum(1) == flen).all() and (out["durations"][phones > 0] >= 1).all()


# -------------------------------------------------------------------- training, end to end
def test_wavthruvec_trains_synthesizes_and_converts_on_the_tiny_corpus(tiny_data, tmp_path):
    from speechssl.config import load_config
    from speechssl.downstream.wavthruvec import load_vocoder
    from speechssl.models import build_model, save_model
    from speechssl.tasks.vec2wav import Vec2WavTrainConfig, train_vocoder

    torch.manual_seed(0)
    up = tmp_path / "upstream"
    save_model(
        build_model(
            "hubert_small",
            conv_layers=[[32, 10, 5]] + [[32, 3, 2]] * 4 + [[32, 2, 2]] * 2,
            hidden_size=32,
            num_layers=2,
            num_heads=2,
            ffn_dim=64,
            pos_conv_kernel=16,
            pos_conv_groups=4,
        ),
        up,
    )
    over = [
        f"upstream={up}",
        f"data.train={tiny_data / 'train'}",
        f"data.valid={tiny_data / 'dev'}",
        f"trainer.out_dir={tmp_path / 'voc'}",
    ]
    cfg = load_config(Vec2WavTrainConfig, ["tts/vec2wav_tiny"], over)
    summary = train_vocoder(cfg)
    assert summary["steps"] == 6 and (tmp_path / "voc" / "features" / "train" / "layer2" / "feats.scp").is_file()
    gen, spec = load_vocoder(tmp_path / "voc" / "final")
    assert spec["layer"] == 2 and gen.cfg.feature_dim == 32 and gen.cfg.speaker_dim == 64  # mean + std of 32
    assert gen(torch.randn(1, 5, 32), torch.randn(1, 64)).shape == (1, 1600)
    # a larger budget resumes from the checkpoint: the features are not extracted again
    stamp = (tmp_path / "voc" / "features" / "train" / "layer2" / "feats.scp").stat().st_mtime
    cfg = load_config(
        Vec2WavTrainConfig, ["tts/vec2wav_tiny"], over + ["trainer.max_steps=9", "snapshot_every_steps=4"]
    )
    assert train_vocoder(cfg)["steps"] == 9
    assert sorted(p.name for p in (tmp_path / "voc" / "snapshots").iterdir()) == ["step0000008"]
    assert (tmp_path / "voc" / "features" / "train" / "layer2" / "feats.scp").stat().st_mtime == stamp
    # mel-only warm-up: the discriminators' optimizer holds no state until they start
    for start, trained in ((100, False), (1, True)):
        out = tmp_path / f"voc_warm{start}"
        train_vocoder(
            load_config(
                Vec2WavTrainConfig,
                ["tts/vec2wav_tiny"],
                over
                + [
                    f"trainer.out_dir={out}",
                    f"data.features={tmp_path / 'voc' / 'features'}",
                    "trainer.max_steps=3",
                    f"optim.discriminator_start_steps={start}",
                ],
            )
        )
        ckpt = torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)
        opt_g, opt_d = ckpt["optimizer_states"]
        assert opt_g["state"] and bool(opt_d["state"]) == trained
    # speaker perturbation: the vocoder's training input comes from a voice-shifted copy (same frames, other
    # values); the target audio, the valid split and the speaker embeddings stay clean
    from speechssl.tasks.tts_common import read_layer

    train_vocoder(
        load_config(
            Vec2WavTrainConfig,
            ["tts/vec2wav_tiny"],
            over
            + [
                f"trainer.out_dir={tmp_path / 'voc_pert'}",
                f"data.features={tmp_path / 'voc' / 'features'}",
                "trainer.max_steps=2",
                "data.perturb_semitones=3",
            ],
        )
    )
    pert = read_layer(tmp_path / "voc_pert" / "perturbed" / "train_shift3_seed0" / "features", 2)
    clean = read_layer(tmp_path / "voc" / "features" / "train", 2)
    assert sorted(pert) == sorted(clean) and all(pert[u].shape == clean[u].shape for u in clean)
    assert not any(np.allclose(pert[u], clean[u], atol=1e-3) for u in clean)
    assert not (tmp_path / "voc_pert" / "perturbed" / "dev_shift3_seed0").exists()
    with pytest.raises(ValueError, match="multiply to 160"):  # refused when the config loads
        load_config(
            Vec2WavTrainConfig,
            ["tts/vec2wav_tiny"],
            over + ["model.upsample_rates=[10,8,2]", "model.upsample_kernel_sizes=[20,16,4]"],
        )

    # stage 1 on the same upstream layer: durations from the corpus's alignments, then by alignment search
    from speechssl.audio.io import info
    from speechssl.cli import main
    from speechssl.downstream.wavthruvec import load_acoustic
    from speechssl.tasks.text2vec import Text2VecTrainConfig, train_acoustic

    tover = [
        f"upstream={up}",
        f"data.train={tiny_data / 'train'}",
        f"data.valid={tiny_data / 'dev'}",
        f"trainer.out_dir={tmp_path / 'ac'}",
        f"data.features={tmp_path / 'voc' / 'features'}",
    ]
    with pytest.raises(ValueError, match="perturb_semitones is the vocoder's option"):
        train_acoustic(load_config(Text2VecTrainConfig, ["tts/text2vec_tiny"], tover + ["data.perturb_semitones=2"]))
    with pytest.raises(ValueError, match="new_voices is the vocoder's option"):
        train_acoustic(load_config(Text2VecTrainConfig, ["tts/text2vec_tiny"], tover + ["data.new_voices=1"]))
    with pytest.raises(ValueError, match="target_train / target_valid are the vocoder's options"):
        train_acoustic(
            load_config(
                Text2VecTrainConfig, ["tts/text2vec_tiny"], tover + [f"data.target_train={tiny_data / 'train'}"]
            )
        )
    summary = train_acoustic(load_config(Text2VecTrainConfig, ["tts/text2vec_tiny"], tover))
    assert summary["steps"] == 10 and summary["durations"] == "alignments"
    model, spec = load_acoustic(tmp_path / "ac" / "final")
    assert spec["layer"] == 2 and model.cfg.feature_dim == 32 and model.cfg.num_phones == 41
    mas = train_acoustic(
        load_config(
            Text2VecTrainConfig,
            ["tts/text2vec_tiny"],
            tover[:-2]
            + [
                f"trainer.out_dir={tmp_path / 'ac_mas'}",
                f"data.features={tmp_path / 'voc' / 'features'}",
                "data.durations=mas",
                "trainer.max_steps=3",
            ],
        )
    )
    assert mas["durations"] == "mas" and mas["steps"] == 3
    # the uses, from the command line
    ref = next(iter(l.split(None, 1)[1] for l in (tiny_data / "dev" / "wav.scp").read_text().splitlines()))
    out = tmp_path / "tts.wav"
    assert (
        main(
            [
                "synthesize",
                "--text",
                "Turn on the lights.",
                "--speaker-ref",
                ref,
                "--out",
                str(out),
                "--acoustic",
                str(tmp_path / "ac" / "final"),
                "--vocoder",
                str(tmp_path / "voc" / "final"),
            ]
        )
        == 0
    )
    i = info(str(out))
    assert i.sample_rate == 16000 and i.num_frames % 320 == 0 and i.num_frames >= 320 * 5
    vc = tmp_path / "vc.wav"
    src = next(iter(l.split(None, 1)[1] for l in (tiny_data / "test" / "wav.scp").read_text().splitlines()))
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
                str(tmp_path / "voc" / "final"),
            ]
        )
        == 0
    )
    assert abs(info(str(vc)).num_frames - info(src).num_frames) < 2 * 320
    # a vocoder whose voice comes from the reference's log-mel statistics, beside a text2vec conditioned on
    # the upstream's: each stage gets the embedding it was trained with
    from speechssl.downstream.wavthruvec import WavThruVec

    train_vocoder(
        load_config(
            Vec2WavTrainConfig,
            ["tts/vec2wav_tiny"],
            over
            + [
                f"trainer.out_dir={tmp_path / 'voc_logmel'}",
                f"data.features={tmp_path / 'voc' / 'features'}",
                "trainer.max_steps=2",
                "speaker.source=logmel",
                "model.speaker_standardize=true",
            ],
        )
    )
    gen, spec = load_vocoder(tmp_path / "voc_logmel" / "final")
    assert gen.cfg.speaker_dim == 160 and spec["speaker"]["source"] == "logmel"
    from speechssl.pipelines.speaker_embedding import logmel_speaker_embedding

    train = DataDir.read(tiny_data / "train")
    embs = torch.from_numpy(np.stack([logmel_speaker_embedding(train.load_audio(u)) for u in train.utt_ids]))
    assert torch.allclose(gen.speaker_mean, embs.mean(0), atol=1e-6) and torch.allclose(
        gen.speaker_std, embs.std(0), atol=1e-6
    )
    assert torch.allclose(gen.speaker_vector(embs[:1]), (embs[:1] - embs.mean(0)) / embs.std(0), atol=1e-4)
    wtv = WavThruVec(str(tmp_path / "voc_logmel" / "final"), str(tmp_path / "ac" / "final"), device="cpu")
    ref_wav, src_wav = (
        DataDir.read(tiny_data / d).load_audio(DataDir.read(tiny_data / d).utt_ids[0]) for d in ("dev", "test")
    )
    feats, spk_v, spk_a = wtv.layers(ref_wav, wtv.vspec, wtv.aspec)
    assert spk_v.shape == (160,) and spk_a.shape == (64,) and torch.equal(wtv.layers(ref_wav)[1], spk_v)
    assert wtv.synthesize("Turn on the lights.", ref_wav)[0].shape[0] >= 320 * 5
    assert not np.allclose(wtv.voice_convert(src_wav, ref_wav), wtv.voice_convert(src_wav, src_wav))
    # the measurements (no ASR here: the recipe passes its fine-tuned model)
    assert (
        main(
            [
                "tts",
                "eval",
                "--vocoder",
                str(tmp_path / "voc" / "final"),
                "--acoustic",
                str(tmp_path / "ac" / "final"),
                "--data",
                str(tiny_data / "test"),
                "--ref-data",
                str(tiny_data / "test-unseen-speakers"),
                "--max-utts",
                "2",
                "--out",
                str(tmp_path / "eval"),
                "--clean-data",
                str(tiny_data / "test"),
            ]
        )
        == 0
    )
    res = json.loads((tmp_path / "eval" / "tts_eval.json").read_text())
    rs = res["resynthesis"]
    assert res["utterances"] == 2 and rs["mcd"] > 0 and 0 <= rs["stoi_utterances"] <= 2
    # the clean twin's figures (here the test set stands for its own twin, so they equal the original's)
    assert (
        res["clean_twin"]["resynthesis_mcd"] == pytest.approx(rs["mcd"]) and res["clean_twin"]["asr_original"] is None
    )
    from speechssl.tasks.tts_eval import evaluate

    with pytest.raises(ValueError, match="dev: not the clean twin of .*test: it lacks"):
        evaluate(
            str(tmp_path / "voc" / "final"),
            str(tiny_data / "test"),
            str(tmp_path / "eval_bad"),
            max_utts=1,
            clean_data=str(tiny_data / "dev"),
            judges=False,
        )
    assert (rs["stoi"] is None) == (rs["stoi_utterances"] == 0) and (rs["stoi"] is None or -1 <= rs["stoi"] <= 1)
    assert {"similarity_to_target", "similarity_to_source"} <= set(res["voice_conversion"])
    assert -1 <= res["speaker_similarity_scale"]["source_vs_target_originals"] <= 1
    assert "speaker_similarity" in res["tts"] and (tmp_path / "eval" / "spectrograms.png").stat().st_size > 1000
    assert len((tmp_path / "eval" / "tts" / "wav.scp").read_text().splitlines()) == 2
    j = res["judges"]  # the independent judges (installed with the test extra)
    assert 0 <= j["judge_on_real_audio"]["test_speakers"]["eer"] <= 100 and j["wer"]["original"] >= 0
    assert j["wer"]["tts_over_floor"] >= 0 and 0 <= j["vc_closer_to_target"] <= 1
    # the content-matched control: the source speaker on other sentences
    assert -1 <= j["speaker_similarity"]["vc_to_source_speaker"] <= 1
    assert 0 <= j["vc_closer_to_target_than_source_speaker"] <= 1
    assert j["mcd_dtw"]["resynthesis"] > 0 and j["mcd_dtw"]["tts_own_voice"] > 0
    assert -1 <= j["speaker_similarity"]["vc_to_target"] <= 1
    assert 0 <= j["vocoder_embedding_on_real_audio"]["reference_speakers"]["eer"] <= 100
    assert (
        main(
            [
                "tts",
                "curve",
                "--snapshots",
                str(tmp_path / "voc" / "snapshots"),
                "--data",
                str(tiny_data / "test"),
                "--max-utts",
                "2",
                "--out",
                str(tmp_path / "curve"),
            ]
        )
        == 0
    )
    curve = json.loads((tmp_path / "curve" / "curve.json").read_text())
    assert [p["step"] for p in curve["points"]] == [8] and (tmp_path / "curve" / "curve.png").is_file()
    # a rerun reuses the snapshot's audio (and an ASR's scoring) instead of vocoding again
    wav = Path((tmp_path / "curve" / "step0000008" / "wav.scp").read_text().split()[1])
    stamp = wav.stat().st_mtime_ns
    assert (
        main(
            [
                "tts",
                "curve",
                "--snapshots",
                str(tmp_path / "voc" / "snapshots"),
                "--data",
                str(tiny_data / "test"),
                "--max-utts",
                "2",
                "--out",
                str(tmp_path / "curve"),
            ]
        )
        == 0
    )
    again = json.loads((tmp_path / "curve" / "curve.json").read_text())["points"][0]
    assert wav.stat().st_mtime_ns == stamp and again["mcd"] == pytest.approx(curve["points"][0]["mcd"], rel=0.02)


def test_speech_quality_measures():
    from speechssl.tasks.tts_eval import cosine, mel_cepstral_distortion, stoi

    g = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    clean = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    clean += 0.01 * g.standard_normal(16000).astype(np.float32)
    noisy = clean + 0.3 * g.standard_normal(16000).astype(np.float32)
    assert mel_cepstral_distortion(clean, clean) == 0.0
    assert mel_cepstral_distortion(clean, noisy) > 1.0 > mel_cepstral_distortion(clean, clean + 1e-4)
    assert mel_cepstral_distortion(noisy, 2 * noisy) < 1e-3  # a gain moves c0 only, which MCD leaves out
    # the cepstra are those of log|H| = c0 + sum_d c_d cos(d w) (natural log amplitude) over the mel bands
    import librosa

    from speechssl.tasks.tts_eval import mel_cepstra

    log_amp = 0.5 * np.log(librosa.feature.melspectrogram(y=noisy, sr=16000, n_fft=400, hop_length=160, n_mels=40))
    k = np.arange(40) + 0.5
    basis = np.cos(np.pi * np.arange(1, 25)[:, None] * k[None] / 40)  # [24, 40]
    np.testing.assert_allclose(mel_cepstra(noisy), (2 / 40) * log_amp.T @ basis.T, rtol=1e-3, atol=1e-4)
    assert stoi(clean, clean) > 0.99 and stoi(clean, noisy) < stoi(clean, clean)
    assert np.isnan(stoi(clean[:3200], noisy[:3200]))  # 0.2 s: too short to score, not 1e-5
    assert cosine([1, 0], [1, 0]) == 1.0 and cosine([1, 0], [0, 1]) == 0.0
