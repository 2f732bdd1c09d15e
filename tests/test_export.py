"""Export: Hugging Face folders that transformers' AutoModel opens and that match ours on every hidden
state, for every family; LightHuBERT subnets as the HuBERT models they are."""

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers")

from speechssl.errors import InputError  # noqa: E402
from speechssl.interop.hf_export import export_huggingface  # noqa: E402
from speechssl.models import EncoderConfig, SpeechEncoder  # noqa: E402

TOL = 1e-4
CONV = [[32, 10, 5], [32, 3, 2], [32, 3, 2]]
SMALL = dict(
    hidden_size=32, num_layers=2, num_heads=4, ffn_dim=64, pos_conv_kernel=16, pos_conv_groups=4, conv_layers=CONV
)
CASES = {
    "hubert_post_norm": dict(family="hubert", **SMALL),
    "hubert_pre_norm": dict(
        family="hubert", **SMALL, layer_norm_first=True, extractor_mode="layer_norm", conv_bias=True
    ),
    "wav2vec2": dict(family="wav2vec2", **dict(SMALL, pos_conv_kernel=15)),
    "wavlm": dict(family="wavlm", **SMALL, position="gated_bucket", num_buckets=16, max_distance=20),
    "data2vec_audio": dict(
        family="data2vec_audio", **dict(SMALL, pos_conv_kernel=5), pos_conv_layers=3, extractor_mode="layer_norm"
    ),
    "conformer_rel_pos": dict(
        family="wav2vec2",
        **dict(SMALL, pos_conv_kernel=0),
        encoder="conformer",
        position="rel_pos",
        depthwise_kernel=7,
        activation="swish",
    ),
    "w2v_bert_2": dict(
        family="w2v_bert",
        **dict(SMALL, pos_conv_kernel=0),
        frontend="fbank_stack",
        encoder="conformer",
        position="relative_key",
        left_max_position=8,
        right_max_position=4,
        depthwise_kernel=7,
        conv_norm="layer_norm",
        causal_conv=True,
        final_layer_norm=False,
        activation="swish",
    ),
}


def _perturbed(model):
    """Perturbed norms, biases, gates and BatchNorm statistics (as the import tests do), in eval mode."""
    from test_interop import _randomize

    with torch.no_grad():
        for name, p in model.named_parameters():
            if "gate" in name:
                p.add_(0.1 * torch.randn_like(p))
    return _randomize(model).eval()


def _waves(lengths, seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor(lengths)
    valid = torch.arange(int(lengths.max()))[None] < lengths[:, None]
    return torch.randn(len(lengths), int(lengths.max()), generator=g) * valid, lengths


@pytest.mark.parametrize("case", sorted(CASES))
def test_hf_export_opens_with_automodel_and_matches_every_hidden_state(case, tmp_path):
    torch.manual_seed(0)
    ours = _perturbed(SpeechEncoder(EncoderConfig(**CASES[case])))
    export_huggingface(ours, tmp_path)
    theirs = transformers.AutoModel.from_pretrained(tmp_path).eval()
    wavs, lengths = _waves([8000, 5100])
    with torch.no_grad():
        out = ours(wavs, lengths)
        for b, n in enumerate(lengths.tolist()):
            if ours.config.frontend == "fbank_stack":  # same input features through both encoders
                feats, frames = ours.frontend(wavs[b : b + 1, :n], lengths[b : b + 1])
                ref = theirs(input_features=feats, output_hidden_states=True).hidden_states
            else:
                ref = theirs(wavs[b : b + 1, :n], output_hidden_states=True).hidden_states
            t = int(out.lengths[b])
            assert len(ref) == len(out.hidden_states) == ours.num_layers + 1
            assert ref[0].shape[1] == t
            err = max(float((r[0] - o[b, :t]).abs().max()) for r, o in zip(ref, out.hidden_states))
            assert err < TOL, f"{case}: utterance {b} differs by {err}"
    # the feature extractor config comes along, so a transformers user preprocesses the same way
    fe = transformers.AutoFeatureExtractor.from_pretrained(tmp_path)
    assert fe.sampling_rate == 16000


def test_lighthubert_subnet_exports_as_the_hubert_model_it_is(tmp_path):
    from speechssl.models.lighthubert import build_supernet

    torch.manual_seed(0)
    tiny = dict(
        conv_layers=[[32, 10, 5]] + [[32, 3, 2]] * 4 + [[32, 2, 2]] * 2,
        hidden_size=64,
        num_layers=4,
        num_heads=4,
        ffn_dim=256,
        pos_conv_kernel=16,
        pos_conv_groups=4,
    )
    supernet = _perturbed(build_supernet("hubert_small", "lighthubert/space_tiny", **tiny))
    subnet = {"embed_dim": 64, "depth": 3, "heads": [2, 4, 3], "ffn_ratios": [3.0, 4.0, 3.5]}
    supernet.set_subnet(subnet)
    plain = supernet.export()
    assert plain.config.layer_heads == [2, 4, 3]
    _, notes = export_huggingface(plain, tmp_path)
    assert "padded with zero weights to 4 heads and 256 units" in notes[0]
    theirs = transformers.AutoModel.from_pretrained(tmp_path).eval()
    assert type(theirs).__name__ == "HubertModel"
    wavs, _ = _waves([6000])
    with torch.no_grad():
        ours, ref = plain(wavs).hidden_states, theirs(wavs, output_hidden_states=True).hidden_states
    assert max(float((r - o).abs().max()) for r, o in zip(ref, ours)) < TOL
    # a subnet narrower than its heads have no transformers equivalent: said, not mangled
    supernet.set_subnet({"embed_dim": 32, "depth": 3, "heads": [4, 4, 4], "ffn_ratios": [3.0, 3.0, 3.0]})
    with pytest.raises(InputError, match="a layer has 4 heads of width 16, more than hidden size 32 holds"):
        export_huggingface(supernet.export(), tmp_path / "narrow")


def test_a_frontend_without_a_transformers_class_is_refused(tmp_path):
    model = SpeechEncoder(
        EncoderConfig(
            **dict(SMALL, pos_conv_kernel=0), frontend="fbank_conv2d", encoder="conformer", subsampler_channels=8
        )
    )
    with pytest.raises(InputError, match="frontend 'fbank_conv2d' has no transformers model class"):
        export_huggingface(model, tmp_path)
    assert not (tmp_path / "config.json").exists()


@pytest.mark.parametrize("case", ["hubert_post_norm", "wavlm", "data2vec_audio", "conformer_rel_pos", "w2v_bert_2"])
def test_onnx_export_matches_torch_for_any_batch_and_length(case, tmp_path):
    pytest.importorskip("onnxruntime")
    from speechssl.interop.onnx_export import export_onnx, onnx_session, run_onnx

    torch.manual_seed(0)
    ours = _perturbed(SpeechEncoder(EncoderConfig(**CASES[case])))
    import logging

    root_handlers = list(logging.getLogger().handlers)
    summary = export_onnx(ours, tmp_path / "m.onnx", quantize=(case == "hubert_post_norm"))
    assert logging.getLogger().handlers == root_handlers  # onnxruntime's quantizer leaves the root logger alone
    assert summary["outputs"] == ["lengths"] + [f"hidden_state_{i}" for i in range(ours.num_layers + 1)]
    session = onnx_session(tmp_path / "m.onnx")
    for lengths in ([7000], [12000, 9000, 4100], [16000, 16000]):  # none is the export example's shape
        wavs, lengths = _waves(lengths, seed=len(lengths))
        with torch.no_grad():
            ref = ours(wavs, lengths)
        got = run_onnx(session, wavs, lengths)
        assert got[0].tolist() == ref.lengths.tolist()
        for b, n in enumerate(ref.lengths.tolist()):
            err = max(float(np.abs(g[b, :n] - r[b, :n].numpy()).max()) for g, r in zip(got[1:], ref.hidden_states))
            assert err < TOL, f"{case} {lengths.tolist()}: row {b} differs by {err}"
    if "int8" in summary:  # smaller weights, the same representation up to quantization noise
        assert summary["int8_bytes"] < summary["bytes"]
        q = run_onnx(onnx_session(summary["int8"]), wavs, lengths)[-1]
        r = ref.hidden_states[-1].numpy()
        cos = (q * r).sum(-1) / (np.linalg.norm(q, axis=-1) * np.linalg.norm(r, axis=-1))
        assert cos.mean() > 0.95


def test_onnx_export_of_the_fbank_baseline(tmp_path):
    pytest.importorskip("onnxruntime")
    from speechssl.interop.onnx_export import export_onnx, onnx_session, run_onnx
    from speechssl.models import FbankUpstream

    up = FbankUpstream().eval()
    export_onnx(up, tmp_path / "fbank.onnx")
    wavs, lengths = _waves([9000, 6000])
    got = run_onnx(onnx_session(tmp_path / "fbank.onnx"), wavs, lengths)
    with torch.no_grad():
        ref = up(wavs, lengths)
    n = int(ref.lengths[1])
    assert got[0].tolist() == ref.lengths.tolist()
    assert np.abs(got[1][1, :n] - ref.hidden_states[0][1, :n].numpy()).max() < 1e-3


@pytest.mark.parametrize("case", ["hubert_post_norm", "w2v_bert_2"])
def test_an_onnx_file_is_an_upstream_for_extraction_and_superb(case, tmp_path):
    pytest.importorskip("onnxruntime")
    from speechssl.hub import load_upstream
    from speechssl.interop.onnx_export import export_onnx

    torch.manual_seed(0)
    ours = _perturbed(SpeechEncoder(EncoderConfig(**CASES[case])))
    export_onnx(ours, tmp_path / "m.onnx")
    up = load_upstream(str(tmp_path / "m.onnx"))
    lengths = torch.arange(0, 40000, 37)
    assert torch.equal(up.output_lengths(lengths), ours.output_lengths(lengths).clamp_min(0))
    assert (up.num_layers, up.hidden_size, up.downsample_rate) == (
        ours.num_layers,
        ours.hidden_size,
        ours.downsample_rate,
    )
    wavs, lengths = _waves([9000, 7000])
    with torch.no_grad():
        a, b = up(wavs, lengths), ours(wavs, lengths)
    n = int(b.lengths[1])
    assert torch.equal(a.lengths, b.lengths)
    assert float((a.hidden_states[-1][1, :n] - b.hidden_states[-1][1, :n]).abs().max()) < TOL
