"""Building blocks and models: the upstream contract, padding invariance, masking semantics, positions."""

import math

import pytest
import torch

from speechssl.models import EncoderConfig, available_models, build_model, load_model, model_config, save_model
from speechssl.nn.attention import MultiheadSelfAttention, sinusoid_relative_table
from speechssl.nn.conformer import ConvolutionModule
from speechssl.nn.masking import apply_mask, channel_mask, span_mask

TINY = dict(hidden_size=32, num_layers=2, num_heads=4, ffn_dim=64)
TINY_CONFIGS = {
    "hubert_small": dict(TINY, conv_layers=[[32, 10, 5], [32, 3, 2], [32, 3, 2]], pos_conv_kernel=16),
    "hubert_large": dict(TINY, conv_layers=[[32, 10, 5], [32, 3, 2]], pos_conv_kernel=16),
    "w2v_bert_small": dict(TINY, subsampler_channels=8, depthwise_kernel=5),
    "w2v_bert_2": dict(TINY, depthwise_kernel=5, left_max_position=6, right_max_position=2),
    "wav2vec2_conformer_large_rel_pos": dict(TINY, conv_layers=[[32, 10, 5], [32, 3, 2]], depthwise_kernel=5),
    "rotary_conformer": dict(
        TINY,
        encoder="conformer",
        position="rotary",
        pos_conv_kernel=0,
        depthwise_kernel=5,
        conv_layers=[[32, 10, 5], [32, 3, 2]],
    ),
    "fast_hubert": dict(
        TINY, frontend="fbank_conv1d", subsampler_channels=8, subsampler_kernels=[5, 3], pos_conv_kernel=8
    ),
}
BASE_OF = {"rotary_conformer": "w2v_bert_xl", "fast_hubert": "hubert_small"}


def _tiny(name):
    base = BASE_OF.get(name, name)
    overrides = dict(TINY_CONFIGS[name])
    if name == "rotary_conformer":
        overrides["frontend"] = "waveform_cnn"
    torch.manual_seed(0)
    model = build_model(model_config(base, **overrides)).eval()
    with torch.no_grad():  # non-trivial norms and running statistics
        for n, p in model.named_parameters():
            if "norm" in n or "bias" in n:
                p.add_(0.1 * torch.randn_like(p))
        for n, b in model.named_buffers():
            if n.endswith("running_var"):
                b.uniform_(0.5, 1.5)
    return model


@pytest.mark.parametrize("name", sorted(TINY_CONFIGS))
def test_padded_batch_equals_each_utterance_alone(name):
    model = _tiny(name)
    g = torch.Generator().manual_seed(0)
    lengths = torch.tensor([12000, 7000, 4100])
    wavs = torch.randn(3, 12000, generator=g)
    wavs = wavs * (torch.arange(12000)[None] < lengths[:, None])
    with torch.no_grad():
        out = model(wavs, lengths)
        assert len(out.hidden_states) == model.num_layers + 1
        assert out.lengths.tolist() == model.output_lengths(lengths).tolist()
        for b, n in enumerate(lengths.tolist()):
            alone = model(wavs[b : b + 1, :n])
            frames = int(out.lengths[b])
            assert alone.hidden_states[0].shape[1] == frames
            for h_batch, h_alone in zip(out.hidden_states, alone.hidden_states):
                assert torch.allclose(h_batch[b, :frames], h_alone[0], atol=1e-5), name


def test_fast_hubert_frontend_is_25_hz_with_lengths_that_match_its_frames():
    from speechssl.nn.frontends import Conv1dGluSubsampler

    sub = Conv1dGluSubsampler(num_mel_bins=80, channels=8, kernels=[5, 5])
    assert sub.downsample_rate == 640  # 10-ms log-mel frames, 4x: 25 Hz
    lengths = torch.tensor([16000, 15999, 1040, 400])  # 98, 98, 5 and 1 log-mel frames
    feats, frames = sub(torch.randn(4, 16000), lengths)
    assert frames.tolist() == sub.output_lengths(lengths).tolist() == [25, 25, 2, 1]  # ceil(ceil(n / 2) / 2)
    assert feats.shape == (4, 25, 8)
    assert feats[2, 2:].abs().sum() == 0 and feats[2, :2].abs().sum() > 0


def test_contract_attributes_and_export_roundtrip(tmp_path):
    model = _tiny("hubert_small")
    assert model.downsample_rate == 5 * 2 * 2 and model.hidden_size == 32 and model.num_layers == 2
    wavs = torch.randn(2, 6000)
    with torch.no_grad():
        ref = model(wavs, torch.tensor([6000, 5000]))
    save_model(model, tmp_path / "m", metadata={"note": "test"})
    again = load_model(tmp_path / "m")
    assert again.metadata == {"note": "test"}
    with torch.no_grad():
        out = again(wavs, torch.tensor([6000, 5000]))
    assert all(torch.equal(a, b) for a, b in zip(ref.hidden_states, out.hidden_states))
    assert torch.equal(ref.last_hidden_state, out.last_hidden_state)


def test_config_typos_and_bad_values_fail_loudly():
    with pytest.raises(ValueError, match="hiden_size.*did you mean hidden_size"):
        EncoderConfig.from_dict({"hiden_size": 10})
    with pytest.raises(ValueError, match="position='relative'"):
        EncoderConfig(position="relative").validate()
    with pytest.raises(KeyError, match="did you mean hubert_base"):
        model_config("hubert_bse")
    with pytest.raises(FileNotFoundError, match="not an exported model folder"):
        load_model("/nonexistent/model")


def test_short_utterance_error_names_it():
    model = _tiny("hubert_small")
    with pytest.raises(ValueError, match=r"utterances \[1\].*\[8\] samples"):
        model(torch.randn(2, 4000), torch.tensor([4000, 8]))


def test_published_sizes():
    """Parameter counts of the named configs against the published model sizes."""
    expected = {"hubert_base": 94.4e6, "hubert_large": 315.4e6, "w2v_bert_2": 580.5e6, "w2v_bert_xl": 0.6e9}
    for name, size in expected.items():
        with torch.device("meta"):
            n = sum(p.numel() for p in build_model(name).parameters())
        assert abs(n - size) / size < 0.02, (name, n)
    assert "hubert_small" in available_models() and "w2v_bert_small" in available_models()


# -- attention ---------------------------------------------------------------------------------


def _naive_attention(att, x, valid):
    """Direct, loop-over-positions reference for the relative position schemes."""
    B, T, D = x.shape
    H, d = att.num_heads, att.head_dim
    q = att.q_proj(x).view(B, T, H, d).transpose(1, 2)
    k = att.k_proj(x).view(B, T, H, d).transpose(1, 2)
    v = att.v_proj(x).view(B, T, H, d).transpose(1, 2)
    scores = torch.zeros(B, H, T, T)
    if att.position == "rel_pos":
        table = sinusoid_relative_table(T, D)  # row r <-> relative position T-1-r
        p = att.pos_proj(table).view(2 * T - 1, H, d)
    for i in range(T):
        for j in range(T):
            s = (q[:, :, i] * k[:, :, j]).sum(-1)
            if att.position == "rel_pos":
                r = T - 1 - (i - j)
                s = ((q[:, :, i] + att.pos_bias_u) * k[:, :, j]).sum(-1) + ((q[:, :, i] + att.pos_bias_v) * p[r]).sum(
                    -1
                )
            elif att.position == "relative_key":
                e = att.distance_embedding.weight[
                    max(-att.left_max_position, min(att.right_max_position, j - i)) + att.left_max_position
                ]
                s = s + (q[:, :, i] * e).sum(-1)
            scores[:, :, i, j] = s / math.sqrt(d)
    scores = scores.masked_fill(~valid[:, None, None, :], float("-inf"))
    out = torch.softmax(scores, -1) @ v
    return att.out_proj(out.transpose(1, 2).reshape(B, T, D))


@pytest.mark.parametrize("position", ["none", "rel_pos", "relative_key"])
def test_attention_matches_direct_formula(position):
    torch.manual_seed(0)
    att = MultiheadSelfAttention(16, 2, position=position, left_max_position=3, right_max_position=2).eval()
    with torch.no_grad():
        for p in att.parameters():
            p.normal_(0, 0.3)
        x = torch.randn(2, 9, 16)
        valid = torch.arange(9)[None] < torch.tensor([9, 6])[:, None]
        assert torch.allclose(att(x, valid), _naive_attention(att, x, valid), atol=1e-5)


# -- conformer convolution -------------------------------------------------------------------


def test_causal_convolution_does_not_look_ahead():
    torch.manual_seed(0)
    conv = ConvolutionModule(8, kernel_size=5, norm="layer_norm", causal=True).eval()
    x = torch.randn(1, 20, 8)
    y = x.clone()
    y[:, 12:] = torch.randn(1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(conv(x)[:, :12], conv(y)[:, :12], atol=1e-6)
        assert not torch.allclose(conv(x)[:, 12:], conv(y)[:, 12:], atol=1e-3)


def test_padded_frames_are_zeroed_before_depthwise_convolution():
    torch.manual_seed(0)
    conv = ConvolutionModule(8, kernel_size=5).eval()
    x = torch.randn(1, 10, 8)
    garbage = x.clone()
    garbage[:, 7:] = 100.0
    valid = torch.arange(10)[None] < 7
    with torch.no_grad():
        assert torch.allclose(conv(x, valid)[:, :7], conv(garbage, valid)[:, :7], atol=1e-6)
        assert torch.allclose(conv(x[:, :7])[:, :7], conv(x, valid)[:, :7], atol=1e-6)


# -- masking ----------------------------------------------------------------------------------


def test_fraction_mode_is_fairseq_mask_prob():
    g = torch.Generator().manual_seed(0)
    lengths = torch.full((400,), 500)
    mask = span_mask(lengths, 500, 0.65, 10, min_masks=2, generator=g)
    coverage = mask.float().mean().item()
    # 0.65 * 500 / 10 = 32.5 spans of 10 with random starts: about 1 - (1 - 32.5/491)^10 covered
    expected = 1 - (1 - 32.5 / 491) ** 10
    assert abs(coverage - expected) < 0.01, (coverage, expected)
    starts = mask[:, 1:] & ~mask[:, :-1]
    assert starts.sum(1).float().mean() < 32.5  # overlaps merge spans


def test_start_prob_mode_is_per_frame_probability():
    g = torch.Generator().manual_seed(0)
    lengths = torch.full((400,), 500)
    mask = span_mask(lengths, 500, 0.065, 10, mode="start_prob", generator=g)
    covered = mask[:, 9:491].float().mean().item()  # away from the edges every frame has 10 possible starts
    assert abs(covered - (1 - (1 - 0.065) ** 10)) < 0.01


def test_masks_respect_lengths_and_min_masks():
    g = torch.Generator().manual_seed(0)
    lengths = torch.tensor([100, 37, 12, 5])
    mask = span_mask(lengths, 100, 0.2, 10, min_masks=2, generator=g)
    valid = torch.arange(100)[None] < lengths[:, None]
    assert not (mask & ~valid).any()
    assert mask[1].sum() >= 10 and mask[2].sum() >= 10  # min_masks honoured where spans fit
    assert mask[3].sum() == 0  # a span of 10 cannot fit in 5 frames
    again = span_mask(lengths, 100, 0.2, 10, min_masks=2, generator=torch.Generator().manual_seed(0))
    assert torch.equal(mask, again)
    with pytest.raises(ValueError, match="mask mode"):
        span_mask(lengths, 100, 0.2, 10, mode="bogus")


def test_channel_mask_and_apply():
    g = torch.Generator().manual_seed(0)
    cmask = channel_mask(4, 64, 0.5, 8, generator=g)
    assert cmask.shape == (4, 64) and cmask.any()
    x = torch.randn(4, 10, 64)
    tmask = torch.zeros(4, 10, dtype=torch.bool)
    tmask[:, 3:5] = True
    emb = torch.full((64,), 7.0)
    y = apply_mask(x, tmask, emb, cmask)
    assert torch.all(y[:, 3:5][~cmask[:, None, :].expand(-1, 2, -1)] == 7.0)
    assert torch.all(y.masked_select(cmask[:, None, :].expand_as(y)) == 0)
    assert torch.equal(y[:, 0][~cmask], x[:, 0][~cmask])


def test_layerdrop_skips_layers_only_in_training():
    model = _tiny("hubert_small")
    model.encoder.layerdrop = 1.0
    wavs = torch.randn(1, 4000)
    model.train()
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    out = model(wavs)
    assert all(torch.equal(h, out.hidden_states[0]) for h in out.hidden_states)
    model.eval()
    out = model(wavs)
    assert not torch.equal(out.hidden_states[1], out.hidden_states[0])
