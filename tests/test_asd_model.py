"""The active speaker model: shapes for each audio branch and fusion, rate conversion, config errors, and a
toy where only the audio tells who speaks (two identical faces): the audio-visual model learns it."""

import pytest
import torch

from speechssl.models.asd import ActiveSpeakerModel, AsdConfig, to_video_rate

SMALL = dict(channels=[4, 8], dim=16, dropout=0.0)


@pytest.mark.parametrize("audio,fusion", [("mfcc", "add"), ("ssl", "add"), ("ssl", "cross_attention"), ("none", "add")])
def test_shapes(audio, fusion):
    torch.manual_seed(0)
    cfg = AsdConfig(audio=audio, fusion=fusion, ssl_layers=3, ssl_dim=12, **SMALL)
    model = ActiveSpeakerModel(cfg)
    frames = torch.randint(0, 255, (2, 10, 112, 112), dtype=torch.uint8)
    kw = (
        {"mfcc": torch.randn(2, 40, 13)}
        if audio == "mfcc"
        else {"hidden_states": [torch.randn(2, 21, 12) for _ in range(3)]}
        if audio == "ssl"
        else {}
    )
    av, v = model(frames, **kw)
    assert av.shape == (2, 10) and v.shape == (2, 10)
    loss = model.loss(av, v, torch.randint(0, 2, (2, 10)))
    loss.backward()
    assert loss.item() > 0 and model.visual.proj.weight.grad.abs().sum() > 0


def test_rate_conversion_and_errors():
    x = torch.arange(8.0).view(1, 8, 1)
    assert to_video_rate(x, 2, 4).flatten().tolist() == [0.5, 2.5, 4.5, 6.5]
    assert to_video_rate(x[:, :7], 2, 4).flatten().tolist() == [0.5, 2.5, 4.5, 6.0]  # short: last frame repeated
    with pytest.raises(ValueError, match="audio must be mfcc, ssl or none"):
        AsdConfig(audio="wav").validate()
    with pytest.raises(ValueError, match="needs ssl_layers"):
        AsdConfig(audio="ssl").validate()
    # a 25 Hz upstream (w2v-BERT) has one frame per video frame: taken as it is, not squeezed into half the clip
    model = ActiveSpeakerModel(AsdConfig(audio="ssl", ssl_layers=2, ssl_dim=4, ssl_frames_per_video_frame=1, **SMALL))
    h = [torch.randn(1, 6, 4), torch.randn(1, 6, 4)]
    torch.testing.assert_close(model.audio_features(6, hidden_states=h), model.audio(model.weighted_sum(h)))
    model = ActiveSpeakerModel(AsdConfig(audio="mfcc", **SMALL))
    with pytest.raises(ValueError, match="needs mfcc"):
        model(torch.zeros(1, 4, 112, 112))


def test_audio_decides_when_faces_look_alike():
    """Faces are identical noise; the label is whether the 'audio' channel is loud: only the AV model learns it."""
    torch.manual_seed(0)
    B, T = 8, 6
    faces = torch.rand(1, 1, 112, 112).expand(B, T, 112, 112)  # one face image everywhere
    labels = (torch.rand(B, T) > 0.5).long()
    mfcc = torch.randn(B, 4 * T, 13) * 0.1
    mfcc[..., 0] += labels.repeat_interleave(4, 1).float() * 3

    def fit(audio):
        model = ActiveSpeakerModel(AsdConfig(audio=audio, **SMALL))
        opt = torch.optim.Adam(model.parameters(), 1e-2)
        for _ in range(60):
            av, v = model(faces, mfcc=mfcc)
            loss = model.loss(av, v, labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            av, _ = model(faces, mfcc=mfcc)
        return ((av > 0).long() == labels).float().mean().item()

    assert fit("mfcc") > 0.95
    assert fit("none") < 0.9  # the same faces carry no answer


def test_prepare_train_eval_predict_on_the_tiny_corpus(tiny_data, tmp_path, capsys):
    import csv
    import json

    from speechssl.cli import main
    from speechssl.downstream.ava_ap import ava_average_precision, read_ava_csv
    from speechssl.models import build_model, save_model

    root = tmp_path / "asd"
    assert main(["asd", "prepare", "--synthetic", "--data", str(tiny_data), "--clips", "5", "--out", str(root)]) == 0
    assert (root / "csv" / "test_orig.csv").is_file() and (root / "csv" / "train_orig.csv").is_file()
    common = [f"data.root={root}", "data.valid=val"]
    assert main(["asd", "train", "--config", "asd/mfcc_tiny", f"trainer.out_dir={tmp_path / 'mfcc'}", *common]) == 0
    summary = json.loads((tmp_path / "mfcc" / "summary.json").read_text())
    assert summary["steps"] == 8 and summary["audio"] == "mfcc"
    assert (
        main(
            [
                "asd",
                "eval",
                "--model",
                str(tmp_path / "mfcc" / "final"),
                "--root",
                str(root),
                "--split",
                "test",
                "--out",
                str(tmp_path / "eval"),
            ]
        )
        == 0
    )
    res = json.loads((tmp_path / "eval" / "test_results.json").read_text())
    gt = read_ava_csv(root / "csv" / "test_orig.csv")
    assert res["face_frames"] == len(gt) and 0 <= res["mAP"]["overall"] <= 100
    # the predictions CSV is the official format: scoring it again gives the same AP
    pred_csv = tmp_path / "pred.csv"
    assert (
        main(
            [
                "asd",
                "predict",
                "--model",
                str(tmp_path / "mfcc" / "final"),
                "--root",
                str(root),
                "--split",
                "test",
                "--out",
                str(pred_csv),
            ]
        )
        == 0
    )
    with open(pred_csv) as f:
        preds = list(csv.DictReader(f))
    assert len(preds) == len(gt) and {p["label"] for p in preds} == {"SPEAKING_AUDIBLE"}
    assert round(100 * ava_average_precision(gt, preds), 2) == res["mAP"]["overall"]
    # SSL audio through the upstream contract
    up = tmp_path / "up"
    save_model(
        build_model(
            "hubert_small",
            conv_layers=[[16, 10, 5]] + [[16, 3, 2]] * 4 + [[16, 2, 2]] * 2,
            hidden_size=16,
            num_layers=2,
            num_heads=2,
            ffn_dim=32,
            pos_conv_kernel=16,
            pos_conv_groups=4,
        ),
        up,
    )
    assert (
        main(
            [
                "asd",
                "train",
                "--config",
                "asd/ssl_tiny",
                f"upstream={up}",
                "trainer.max_steps=3",
                f"trainer.out_dir={tmp_path / 'ssl'}",
                *common,
            ]
        )
        == 0
    )
    spec = (tmp_path / "ssl" / "final" / "asd.yaml").read_text()
    assert "ssl_layers: 3" in spec and "ssl_dim: 16" in spec and "ssl_frames_per_video_frame: 2" in spec
    # fine-tuning the upstream: its Transformer moves, its CNN does not, and the export carries it
    ft = tmp_path / "ssl_ft"
    assert (
        main(
            [
                "asd",
                "train",
                "--config",
                "asd/ssl_tiny",
                f"upstream={up}",
                "finetune_upstream=true",
                "upstream_lr_scale=1.0",
                "trainer.max_steps=3",
                f"trainer.out_dir={ft}",
                *common,
            ]
        )
        == 0
    )
    from safetensors.torch import load_file

    before = load_file(str(up / "model.safetensors"))
    after = load_file(str(ft / "final" / "upstream" / "model.safetensors"))
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert moved and all(not k.startswith("frontend.") for k in moved)
    assert any(k.startswith("encoder.") for k in moved)
    import shutil

    shutil.rmtree(up)  # the export stands on its own
    assert (
        main(
            [
                "asd",
                "eval",
                "--model",
                str(ft / "final"),
                "--root",
                str(root),
                "--split",
                "test",
                "--out",
                str(tmp_path / "eval_ft"),
            ]
        )
        == 0
    )
    assert json.loads((tmp_path / "eval_ft" / "test_results.json").read_text())["face_frames"] == len(gt)
    capsys.readouterr()
    assert (
        main(["asd", "train", "--config", "asd/mfcc_tiny", "finetune_upstream=true", f"trainer.out_dir={ft}2", *common])
        == 2
    )
    assert "finetune_upstream needs model.audio=ssl, got 'mfcc'" in capsys.readouterr().err
