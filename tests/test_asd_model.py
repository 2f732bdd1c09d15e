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
    kw = {"mfcc": torch.randn(2, 40, 13)} if audio == "mfcc" else \
        {"hidden_states": [torch.randn(2, 21, 12) for _ in range(3)]} if audio == "ssl" else {}
    av, v = model(frames, **kw)
    assert av.shape == (2, 10) and v.shape == (2, 10)
    loss = model.loss(av, v, torch.randint(0, 2, (2, 10)))
    loss.backward()
    assert loss.item() > 0 and model.visual.proj.weight.grad.abs().sum() > 0


def test_rate_conversion_and_errors():
    x = torch.arange(8.0).view(1, 8, 1)
    assert to_video_rate(x, 2, 4).flatten().tolist() == [0.5, 2.5, 4.5, 6.5]
    assert to_video_rate(x[:, :7], 2, 4).flatten().tolist() == [0.5, 2.5, 4.5, 6.0]   # short: last frame repeated
    with pytest.raises(ValueError, match="audio must be mfcc, ssl or none"):
        AsdConfig(audio="wav").validate()
    with pytest.raises(ValueError, match="needs ssl_layers"):
        AsdConfig(audio="ssl").validate()
    model = ActiveSpeakerModel(AsdConfig(audio="mfcc", **SMALL))
    with pytest.raises(ValueError, match="needs mfcc"):
        model(torch.zeros(1, 4, 112, 112))


def test_audio_decides_when_faces_look_alike():
    """Faces are identical noise; the label is whether the 'audio' channel is loud: only the AV model learns it."""
    torch.manual_seed(0)
    B, T = 8, 6
    faces = torch.rand(1, 1, 112, 112).expand(B, T, 112, 112)   # one face image everywhere
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
    assert fit("none") < 0.9      # the same faces carry no answer
