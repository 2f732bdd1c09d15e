"""HuBERT's masked prediction against fairseq's HubertModel + HubertCriterion and torchaudio's
HuBERTPretrainModel: the same weights, audio, labels and masks give the same loss, parts and gradients."""

from pathlib import Path

import pytest
import torch

from .conftest import assert_grad_close, reference

TINY = dict(
    conv_feature_layers="[(32, 10, 5)] + [(32, 3, 2)] * 4 + [(32, 2, 2)] * 2",
    encoder_layers=2,
    encoder_embed_dim=64,
    encoder_ffn_embed_dim=128,
    encoder_attention_heads=4,
    conv_pos=16,
    conv_pos_groups=4,
    final_dim=16,
    dropout=0.0,
    attention_dropout=0.0,
    activation_dropout=0.0,
    dropout_input=0.0,
    dropout_features=0.0,
    encoder_layerdrop=0.0,
    feature_grad_mult=0.1,
    label_rate=50.0,
    logit_temp=0.1,
    mask_prob=0.8,
    mask_length=10,
)
NUM_CLASSES = 12


def fairseq_hubert(**overrides):
    reference("fairseq")
    from fairseq.models.hubert.hubert import HubertConfig, HubertModel
    from fairseq.tasks.hubert_pretraining import HubertPretrainingConfig

    cfg = HubertConfig(**{**TINY, **overrides})
    task_cfg = HubertPretrainingConfig(data="unused", labels=["km"], label_rate=50.0, sample_rate=16000)
    # a list stands in for fairseq's Dictionary, whose 4 special symbols would add 4 never-target classes
    return HubertModel(cfg, task_cfg, [list(range(NUM_CLASSES))]), cfg


def ours_from(fs_model, cfg):
    """Our HubertPretrainModel holding fairseq's weights (through our fairseq importer), and the name map."""
    from dataclasses import asdict

    from speechssl.interop.fairseq import encoder_from_fairseq
    from speechssl.models.hubert import HubertPretrainModel

    state = fs_model.state_dict()
    encoder = encoder_from_fairseq(
        {"model": state, "cfg": {"model": {"_name": "hubert", **asdict(cfg)}}}, Path("fairseq-tiny")
    )
    model = HubertPretrainModel.from_encoder(encoder).train()
    return model, fairseq_names(state)


def fairseq_names(state):
    """fairseq parameter name -> ours, by the importer's own renaming rules (heads by hand)."""
    from speechssl.interop.fairseq import RULES
    from speechssl.interop.keymap import rename_keys

    heads = {
        "final_proj.weight": "heads.final_proj.weight",
        "final_proj.bias": "heads.final_proj.bias",
        "label_embs_concat": "heads.label_embeddings",
    }
    outside = ("quantizer.", "project_q.", "target_glu.")  # wav2vec 2.0's heads: mapped where they are used
    renamed, unmatched = rename_keys({k: k for k in state if k not in heads and not k.startswith(outside)}, RULES)
    assert not unmatched, unmatched
    return {**heads, **{theirs: f"encoder.{ours}" for ours, theirs in renamed.items()}}


def batch(B=2, seconds=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    n = int(seconds * 16000)
    wavs = torch.randn(B, n, generator=g) * 0.1
    frames = (n - 400) // 320 + 1
    labels = torch.randint(0, NUM_CLASSES, (B, frames + 3), generator=g)
    return wavs, labels, frames


def mask_for(B, T, seed=1):
    from speechssl.nn.masking import span_mask

    return span_mask(torch.full((B,), T), T, 0.8, 10, min_masks=2, generator=torch.Generator().manual_seed(seed))


def our_loss(model, wavs, labels, mask, pred_masked_weight, pred_nomask_weight, feature_pen_weight=10.0):
    from speechssl.nn.utils import GradMultiply, lengths_to_mask
    from speechssl.objectives.masked_prediction import hubert_loss, hubert_sums

    lengths = torch.full((wavs.shape[0],), wavs.shape[1])
    feats, frames = model.encoder.frontend(wavs, lengths)
    feats = GradMultiply.apply(feats, 0.1)
    valid = lengths_to_mask(frames, feats.shape[1])
    sums = hubert_sums(model, feats, frames, valid, mask, [labels], [50.0], 50.0, 0.1)
    return hubert_loss(
        sums,
        pred_masked_weight=pred_masked_weight,
        pred_nomask_weight=pred_nomask_weight,
        feature_pen_weight=feature_pen_weight,
    )


def fairseq_loss(fs_model, wavs, labels, mask, pred_masked_weight, pred_nomask_weight, feature_pen_weight=10.0):
    from fairseq.criterions.hubert_criterion import HubertCriterion

    def given_mask(x, padding_mask, target_list):  # the masks are passed in, not drawn
        x = x.clone()
        x[mask] = fs_model.mask_emb
        return x, mask

    fs_model.apply_mask = given_mask
    crit = HubertCriterion(
        task=None,
        pred_masked_weight=pred_masked_weight,
        pred_nomask_weight=pred_nomask_weight,
        loss_weights=[feature_pen_weight],
    )
    sample = {
        "net_input": {"source": wavs, "padding_mask": torch.zeros_like(wavs, dtype=torch.bool)},
        "target_list": [labels],
        "id": torch.arange(len(wavs)),
    }
    loss, sample_size, log = crit(fs_model, sample)
    return loss / sample_size, sample_size, log


@pytest.mark.parametrize(
    "weights,pre_norm",
    [((1.0, 0.0), False), ((1.0, 0.5), False), ((1.0, 0.0), True)],
    ids=["paper_masked_only", "with_unmasked", "pre_norm"],
)
def test_loss_parts_and_every_gradient_equal_fairseq(weights, pre_norm):
    fs_model, cfg = fairseq_hubert(layer_norm_first=pre_norm)
    fs_model.train()
    model, names = ours_from(fs_model, cfg)
    wavs, labels, frames = batch()
    mask = mask_for(len(wavs), frames)

    loss, parts = our_loss(model, wavs, labels, mask, *weights)
    loss.backward()
    fs_loss, sample_size, log = fairseq_loss(fs_model, wavs, labels, mask, *weights)
    fs_loss.backward()

    n_m = int(mask.sum())
    assert sample_size == n_m + (mask.numel() - n_m if weights[1] > 0 else 0)
    torch.testing.assert_close(loss, fs_loss, rtol=1e-5, atol=0)
    torch.testing.assert_close(parts["loss_m"].item() * n_m, log["loss_m_0"], rtol=1e-5, atol=0)
    torch.testing.assert_close(parts["loss_u"].item() * (mask.numel() - n_m), log["loss_u_0"], rtol=1e-5, atol=0)
    torch.testing.assert_close(
        parts["feature_pen"].item() * 10.0 * sample_size, log["loss_features_pen"], rtol=1e-5, atol=0
    )
    assert parts["acc_m"].item() * n_m == log["correct_m_0"]
    ours = dict(model.named_parameters())
    floor = 1e-6 * max(p.grad.abs().max() for p in fs_model.parameters() if p.grad is not None)
    for fs_name, p in fs_model.named_parameters():
        if p.grad is None:
            continue
        g = ours[names[fs_name]].grad
        assert_grad_close(g, p.grad, fs_name, floor)


def test_torchaudio_hubert_pretrain_model_gives_the_same_loss():
    """torchaudio's HuBERTPretrainModel (fairseq's weights through torchaudio's own importer) gives our
    masked / unmasked logits' losses and feature penalty; the loss is formed as torchaudio's HuBERT example
    (``examples/hubert/loss/hubert_loss.py``, not in the wheel) forms it: the cross-entropy sums of the masked
    (and unmasked) logits against class 0 plus ``feature_weight * penalty * masked frames``."""
    reference("fairseq")
    reference("torchaudio")
    import torch.nn.functional as F
    from torchaudio.models.wav2vec2.components import LogitGenerator
    from torchaudio.models.wav2vec2.model import HuBERTPretrainModel
    from torchaudio.models.wav2vec2.utils import import_fairseq_model

    fs_model, cfg = fairseq_hubert()
    model, _ = ours_from(fs_model, cfg)
    wavs, labels, frames = batch()
    mask = mask_for(len(wavs), frames)

    class GivenMask(torch.nn.Module):
        def forward(self, x, padding_mask):
            return torch.where(mask[..., None], fs_model.mask_emb, x), mask

    logits = LogitGenerator(cfg.encoder_embed_dim, NUM_CLASSES, cfg.final_dim, False, False)
    with torch.no_grad():
        logits.final_proj.load_state_dict(fs_model.final_proj.state_dict())
        logits.label_embeddings.copy_(fs_model.label_embs_concat)
    ta_model = HuBERTPretrainModel(import_fairseq_model(fs_model), GivenMask(), logits, feature_grad_mult=0.1).train()
    logit_m, logit_u, pen = ta_model(wavs, labels[:, :frames])
    n_m = logit_m.shape[0]
    ce_m = F.cross_entropy(logit_m, torch.zeros(n_m, dtype=torch.long), reduction="sum")
    ce_u = F.cross_entropy(logit_u, torch.zeros(logit_u.shape[0], dtype=torch.long), reduction="sum")
    ta_loss = ce_m + 10.0 * pen * n_m

    loss, parts = our_loss(model, wavs, labels, mask, 1.0, 0.0)
    assert n_m == int(mask.sum())
    torch.testing.assert_close(parts["loss_m"] * n_m, ce_m, rtol=1e-5, atol=0)
    torch.testing.assert_close(parts["loss_u"] * logit_u.shape[0], ce_u, rtol=1e-5, atol=0)
    torch.testing.assert_close(parts["feature_pen"], pen, rtol=1e-5, atol=0)
    torch.testing.assert_close(loss * n_m, ta_loss, rtol=1e-5, atol=0)
