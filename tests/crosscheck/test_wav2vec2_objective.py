"""wav2vec 2.0's objective (the contrastive half of w2v-BERT) against fairseq's Wav2Vec2Model +
Wav2vecCriterion: the same weights, quantizer state, masks and distractors give the same InfoNCE, diversity
and feature penalty, and every gradient; the Gumbel quantizer alone gives fairseq's codes and targets."""

from dataclasses import asdict
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
    latent_vars=8,
    latent_groups=2,
    latent_dim=0,
    num_negatives=5,
    cross_sample_negatives=0,
    dropout=0.0,
    attention_dropout=0.0,
    activation_dropout=0.0,
    dropout_input=0.0,
    dropout_features=0.0,
    encoder_layerdrop=0.0,
    feature_grad_mult=1.0,
    logit_temp=0.1,
    latent_temp=(2.0, 0.5, 0.999995),
    quantize_targets=True,
)


def fairseq_wav2vec2():
    reference("fairseq")
    from fairseq.models.wav2vec.wav2vec2 import Wav2Vec2Config, Wav2Vec2Model

    cfg = Wav2Vec2Config(**TINY)
    return Wav2Vec2Model(cfg), cfg


def ours_from(fs):
    """Our wav2vec 2.0 pretraining model (a W2vBertPretrainModel whose every block is contrastive) with
    fairseq's weights: the encoder through our importer, the quantizer and projections copied here."""
    from speechssl.interop.fairseq import encoder_from_fairseq
    from speechssl.models.w2v_bert import W2vBertHeads, W2vBertPretrainModel
    from speechssl.nn.quantizer import GumbelVectorQuantizer

    model, cfg = fs
    state = model.state_dict()
    encoder = encoder_from_fairseq(
        {"model": state, "cfg": {"model": {"_name": "wav2vec2", **asdict(cfg)}}}, Path("fairseq-tiny"), drop_heads=True
    )
    G, V = cfg.latent_groups, cfg.latent_vars
    quantizer = GumbelVectorQuantizer(32, V, G, cfg.final_dim, temperature=cfg.latent_temp)
    heads = W2vBertHeads(cfg.encoder_embed_dim, cfg.final_dim, cfg.final_dim, G * V)
    with torch.no_grad():
        quantizer.codevectors.copy_(state["quantizer.vars"][0])
        quantizer.weight_proj.load_state_dict(model.quantizer.weight_proj.state_dict())
        heads.project_q.load_state_dict(model.project_q.state_dict())
        heads.project_context.load_state_dict(model.final_proj.state_dict())
    ours = W2vBertPretrainModel(encoder, quantizer, heads, contrastive_layers=encoder.num_layers)
    names = {
        "quantizer.vars": "quantizer.codevectors",
        "quantizer.weight_proj.weight": "quantizer.weight_proj.weight",
        "quantizer.weight_proj.bias": "quantizer.weight_proj.bias",
        "project_q.weight": "heads.project_q.weight",
        "project_q.bias": "heads.project_q.bias",
        "final_proj.weight": "heads.project_context.weight",
        "final_proj.bias": "heads.project_context.bias",
    }
    from .test_hubert_objective import fairseq_names

    names.update(
        {
            k: v
            for k, v in fairseq_names({k: None for k in state if k not in names}).items()
            if not k.startswith(("final_proj", "label_embs"))
        }
    )
    return ours, names


def equal_count_mask(B, T, spans, seed=1):
    """A span mask with the same number of masked frames in every row (fairseq views them as [B, -1, C])."""
    from speechssl.nn.masking import span_mask

    row = span_mask(torch.tensor([T]), T, 0.65, 10, min_masks=2, generator=torch.Generator().manual_seed(seed))
    return row.expand(B, T).clone()


def test_infonce_diversity_penalty_and_gradients_equal_fairseq():
    fs = fairseq_wav2vec2()  # skips without fairseq
    from fairseq.criterions.wav2vec_criterion import Wav2vecCriterion

    from speechssl.objectives.contrastive import sample_negatives, wav2vec2_loss_sums

    fs_model, cfg = fs
    ours, names = ours_from(fs)
    # eval: the quantizer takes its noise-free choice in both (the Gumbel draw is checked below)
    fs_model.eval()
    ours.eval()
    B, n = 2, 16000
    wavs = torch.randn(B, n, generator=torch.Generator().manual_seed(0)) * 0.1
    T = (n - 400) // 320 + 1
    mask = equal_count_mask(B, T, 5)
    utt = mask.nonzero()[:, 0]
    negatives, usable = sample_negatives(utt, cfg.num_negatives, torch.Generator().manual_seed(2))
    assert usable.all()

    def given_negatives(y, num, padding_count=None):  # y [B, T_m, C] -> [K, B, T_m, C] from our draw
        flat = y.reshape(-1, y.shape[-1])
        return flat[negatives.t()].view(cfg.num_negatives, *y.shape), None

    fs_model.sample_negatives = given_negatives
    crit = Wav2vecCriterion(task=None, infonce=True, loss_weights=[0.1, 10.0], log_keys=["prob_perplexity"])
    sample = {"net_input": {"source": wavs, "mask_indices": mask}, "id": torch.arange(B)}
    fs_loss, sample_size, log = crit(fs_model, sample)
    fs_loss.backward()

    mine = wav2vec2_loss_sums(ours, wavs, torch.full((B,), n), mask, negatives, temperature=0.1, diversity_weight=0.1)
    feats, _ = ours.encoder.frontend(wavs, torch.full((B,), n))
    pen = feats.float().pow(2).mean()
    total = mine["loss"] + 10.0 * pen * int(sample_size)
    total.backward()

    assert int(sample_size) == int(mask.sum())
    # fairseq logs its terms as loss_0 (InfoNCE sum), loss_1 (weighted diversity), loss_2 (weighted penalty)
    torch.testing.assert_close(mine["contrastive"].item(), log["loss_0"], rtol=1e-5, atol=0)
    torch.testing.assert_close(0.1 * mine["diversity"].item(), log["loss_1"], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(10.0 * pen.item() * int(sample_size), log["loss_2"], rtol=1e-5, atol=0)
    torch.testing.assert_close(total, fs_loss, rtol=1e-5, atol=0)
    params = dict(ours.named_parameters())
    floor = 1e-6 * max(p.grad.abs().max() for p in fs_model.parameters() if p.grad is not None)
    for fs_name, p in fs_model.named_parameters():
        if p.grad is None:
            continue
        g = params[names[fs_name]].grad.reshape(p.grad.shape)
        assert_grad_close(g, p.grad, fs_name, floor)


@pytest.mark.parametrize("step", [0, 50_000])
def test_gumbel_quantizer_in_training_takes_fairseqs_codes_and_targets(step):
    """Same logits, same seed: the straight-through codes, the target ids (the Gumbel draw, not the noise-free
    argmax) and both perplexities equal fairseq's GumbelVectorQuantizer's."""
    reference("fairseq")
    from fairseq.modules import GumbelVectorQuantizer as FairseqQuantizer

    from speechssl.nn.quantizer import GumbelVectorQuantizer

    G, V, D = 2, 8, 16
    theirs = FairseqQuantizer(
        dim=32, num_vars=V, temp=(2.0, 0.5, 0.999995), groups=G, combine_groups=False, vq_dim=D, time_first=True
    ).train()
    ours = GumbelVectorQuantizer(32, V, G, D).train()
    with torch.no_grad():
        ours.codevectors.copy_(theirs.vars[0])
        ours.weight_proj.load_state_dict(theirs.weight_proj.state_dict())
    theirs.set_num_updates(step)
    ours.set_num_updates(step)
    x = torch.randn(3, 40, 32)
    torch.manual_seed(7)
    ref = theirs(x, produce_targets=True)
    torch.manual_seed(7)
    out = ours(x.reshape(-1, 32))
    assert ours.temperature == pytest.approx(theirs.curr_temp)
    torch.testing.assert_close(out.quantized, ref["x"].reshape(-1, D))
    assert torch.equal(out.ids, ref["targets"].reshape(-1, G))
    torch.testing.assert_close(out.prob_perplexity, ref["prob_perplexity"])
    torch.testing.assert_close(out.code_perplexity, ref["code_perplexity"])
