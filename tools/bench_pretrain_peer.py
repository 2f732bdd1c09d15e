"""wav2vec 2.0 pretraining step against transformers' ``Wav2Vec2ForPreTraining``, on one config, one batch, the
same weights (imported from the peer's folder), the same masks and the same distractors.

1. Loss parity. The contrastive sum in eval mode (no dropout, no Gumbel noise: hard code choices). The
   diversity sum in train mode, where both use the softmax perplexity (deterministic: the Gumbel noise only
   picks the codes); transformers' eval mode switches to the perplexity of the hard choices, which fairseq's
   wav2vec 2.0 and ours do not.
2. Speed in train mode: forward + backward + AdamW, fastest of ``--repeats`` after a warm-up, float32 and bf16
   autocast; the ratio is their step time over ours.

Sizes: ``mini`` (hubert_mini's shape: 7-layer CNN of 128 channels, 6 x 256 post-norm Transformer) or ``base``
(wav2vec 2.0 Base). transformers is a test-only dependency.

    python tools/bench_pretrain_peer.py [--size mini|base] [--threads 2] [--repeats 3]
"""

import argparse
import tempfile

import numpy as np
import torch

from speechssl.interop.hf_pretraining import import_wav2vec2_pretraining, negatives_from_flat
from speechssl.objectives.contrastive import wav2vec2_loss_sums
from speechssl.utils.timing import best_time, cpu_name

SIZES = {
    "mini": dict(
        conv_dim=(128,) * 7,
        hidden_size=256,
        num_hidden_layers=6,
        num_attention_heads=4,
        intermediate_size=1024,
        num_conv_pos_embeddings=64,
        num_conv_pos_embedding_groups=16,
        codevector_dim=256,
        proj_codevector_dim=128,
    ),
    "base": dict(),  # transformers' defaults are wav2vec 2.0 Base
}


def peer_config(size: str):
    from transformers import Wav2Vec2Config

    zero = dict(
        hidden_dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        feat_proj_dropout=0.0,
        feat_quantizer_dropout=0.0,
        final_dropout=0.0,
        layerdrop=0.0,
    )  # mask_time_prob stays > 0: it creates masked_spec_embed
    return Wav2Vec2Config(**SIZES[size], **zero)


def same_inputs(cfg, model, batch: int, seconds: float, seed: int = 0):
    """Waves, transformers' masks (p 0.65, spans of 10) and distractors, as both models take them."""
    from transformers.models.wav2vec2.modeling_wav2vec2 import _compute_mask_indices, _sample_negative_indices

    g = torch.Generator().manual_seed(seed)
    wavs = torch.randn(batch, int(seconds * 16000), generator=g) * 0.1
    lengths = torch.full((batch,), wavs.shape[1])
    frames = int(model._get_feat_extract_output_lengths(wavs.shape[1]))
    np.random.seed(seed)
    mask = _compute_mask_indices((batch, frames), mask_prob=0.65, mask_length=10, min_masks=2)
    flat = _sample_negative_indices((batch, frames), cfg.num_negatives, mask)
    return wavs, lengths, torch.from_numpy(mask), torch.from_numpy(flat).long()


def peer_sums(peer, wavs, mask, flat):
    out = peer(wavs, mask_time_indices=mask, sampled_negative_indices=flat)
    return {"contrastive": out.contrastive_loss, "diversity": out.diversity_loss, "loss": out.loss}


def best_step(step, params, bf16: bool, repeats: int) -> float:
    opt = torch.optim.AdamW(params, lr=1e-4)

    def one():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = step()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return best_time(one, repeat=repeats, warmup=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=sorted(SIZES), default="mini")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=4.0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from transformers import Wav2Vec2ForPreTraining

    cfg = peer_config(args.size)
    torch.manual_seed(0)
    peer = Wav2Vec2ForPreTraining(cfg).eval()
    with tempfile.TemporaryDirectory() as tmp:
        peer.save_pretrained(tmp)
        ours = import_wav2vec2_pretraining(tmp)
    wavs, lengths, mask, flat = same_inputs(cfg, peer, args.batch, args.seconds)
    negatives = negatives_from_flat(flat, mask)
    temp, weight = cfg.contrastive_logits_temperature, cfg.diversity_loss_weight
    with torch.no_grad():
        theirs = peer_sums(peer, wavs, mask, flat)
        mine = wav2vec2_loss_sums(ours, wavs, lengths, mask, negatives, temp, weight)
        peer.train()
        ours.train()
        theirs["diversity"] = peer_sums(peer, wavs, mask, flat)["diversity"]
        mine["diversity"] = wav2vec2_loss_sums(ours, wavs, lengths, mask, negatives, temp, weight)["diversity"]
    print(
        f"CPU: {cpu_name()}, {args.threads} threads, torch {torch.__version__}; size {args.size}, "
        f"{args.batch} x {args.seconds:g} s, {int(mask.sum())} masked frames, {cfg.num_negatives} distractors"
    )
    print("\n| sum over masked frames | transformers | speechssl | relative difference |\n|---|---:|---:|---:|")
    for key, mode in (("contrastive", "eval mode"), ("diversity", "train mode")):
        a, b = float(theirs[key]), float(mine[key])
        print(f"| {key} ({mode}) | {a:.5f} | {b:.5f} | {abs(a - b) / max(abs(a), 1e-12):.1e} |")
    print(
        "\n| train step (fwd + bwd + AdamW) | transformers s | speechssl s | speed ratio (theirs / ours) |\n"
        "|---|---:|---:|---:|"
    )
    for bf16 in (False, True):
        t_peer = best_step(lambda: peer_sums(peer, wavs, mask, flat)["loss"], peer.parameters(), bf16, args.repeats)
        t_ours = best_step(
            lambda: wav2vec2_loss_sums(ours, wavs, lengths, mask, negatives, temp, weight)["loss"],
            ours.parameters(),
            bf16,
            args.repeats,
        )
        print(
            f"| {'bf16 autocast' if bf16 else 'float32'} | {t_peer:.3f} | {t_ours:.3f} | {t_peer / t_ours:.2f}x |",
            flush=True,
        )


if __name__ == "__main__":
    main()
