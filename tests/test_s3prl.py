"""The s3prl upstream contract (its upstream/README.md), and torch.hub on the repository's hubconf.py."""

from pathlib import Path

import pytest
import torch

from speechssl.models import build_model, save_model
from speechssl.s3prl import UpstreamExpert

REPO = Path(__file__).resolve().parent.parent
TINY = dict(
    conv_layers=[[32, 10, 5]] + [[32, 3, 2]] * 4 + [[32, 2, 2]] * 2,
    hidden_size=32,
    num_layers=2,
    num_heads=4,
    ffn_dim=64,
    pos_conv_kernel=16,
    pos_conv_groups=4,
)

TOLERABLE_SEQLEN_DIFF = 3  # s3prl's own check in S3PRLUpstream: len(wav) / downsample_rate vs frames


@pytest.fixture()
def folder(tmp_path):
    torch.manual_seed(0)
    save_model(build_model("hubert_small", **TINY), tmp_path / "m")
    return tmp_path / "m"


def test_s3prl_contract_list_of_unpadded_wavs_in_padded_layers_out(folder):
    expert = UpstreamExpert(str(folder))
    wavs = [torch.randn(n) for n in (16000, 12345, 8000)]
    with torch.no_grad():
        out = expert(wavs)
    rate = expert.get_downsample_rates("hidden_states")
    assert rate == 320
    states = out["hidden_states"]
    assert isinstance(states, list) and len(states) == 3
    for h in states:
        assert h.shape[0] == 3 and h.shape[2] == 32 and h.shape[1] == out["lengths"].max()
    for i, w in enumerate(wavs):
        assert abs(len(w) / rate - int(out["lengths"][i])) <= TOLERABLE_SEQLEN_DIFF
        with torch.no_grad():
            alone = expert([w])["hidden_states"][-1][0]
        n = int(out["lengths"][i])
        assert torch.allclose(states[-1][i, :n], alone, atol=1e-5)  # padding changes nothing


def test_torch_hub_loads_an_exported_folder_through_hubconf(folder):
    expert = torch.hub.load(str(REPO), "upstream", source="local", ckpt=str(folder))
    encoder = torch.hub.load(str(REPO), "encoder", source="local", ckpt=str(folder))
    wav = torch.randn(9000)
    with torch.no_grad():
        a = expert([wav])["hidden_states"][-1][0]
        b = encoder(wav[None]).hidden_states[-1][0]
    assert torch.allclose(a, b)


def test_s3prl_04_upstream_and_featurizer_faces(tmp_path):
    """s3prl 0.4's S3PRLUpstream attributes and forward, and its Featurizer, over a random-init encoder saved
    with save_pretrained (which records that the weights are random)."""
    import speechssl
    from speechssl.models.encoder import EncoderConfig, SpeechEncoder
    from speechssl.s3prl import Featurizer, S3PRLUpstream

    torch.manual_seed(0)
    enc = SpeechEncoder(
        EncoderConfig(
            hidden_size=32,
            num_layers=2,
            num_heads=4,
            ffn_dim=64,
            pos_conv_kernel=0,
            conv_layers=[[32, 10, 5], [32, 3, 2], [32, 2, 2], [32, 2, 2], [32, 2, 2], [32, 2, 2], [32, 2, 2]],
        )
    )
    enc.save_pretrained(tmp_path / "enc")
    loaded = speechssl.load_model(tmp_path / "enc")
    assert loaded.metadata == {"weights": "random init"}
    up = S3PRLUpstream(str(tmp_path / "enc"))
    assert (up.num_layers, up.downsample_rates, up.hidden_sizes) == (3, [320] * 3, [32] * 3)
    wavs, wavs_len = torch.randn(2, 16000), torch.tensor([16000, 8000])
    all_hs, all_hs_len = up(wavs, wavs_len)
    assert len(all_hs) == 3 and all_hs[0].shape == (2, 49, 32) and all_hs_len[0].tolist() == [49, 24]
    featurizer = Featurizer(up)
    hs, hs_len = featurizer(all_hs, all_hs_len)
    torch.testing.assert_close(hs, torch.stack(all_hs).mean(0))  # zero weights: a plain average at the start
    assert hs_len.tolist() == [49, 24] and featurizer.output_size == 32
