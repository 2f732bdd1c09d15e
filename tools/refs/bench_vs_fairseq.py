"""HuBERT Base pretraining step beside fairseq's ``HubertModel`` + ``HubertCriterion``: one process, the same
weights (fairseq's, through our importer), batch, labels, masks and thread count; forward + backward + AdamW,
fastest of ``--repeats`` after a warm-up, float32. Run from the reference venv (``make refs``):

    .refs/venv/bin/python tools/refs/bench_vs_fairseq.py [--size base|tiny] [--batch 2] [--seconds 4] [--threads 2]

Prints both losses (they must agree: same weights, same masks) and fairseq's step time over ours.
"""

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))

from crosscheck.test_hubert_objective import TINY, fairseq_loss, our_loss, ours_from  # noqa: E402

from speechssl.nn.masking import span_mask  # noqa: E402
from speechssl.utils.timing import best_time, cpu_name  # noqa: E402


def build(size: str):
    from fairseq.models.hubert.hubert import HubertConfig, HubertModel
    from fairseq.tasks.hubert_pretraining import HubertPretrainingConfig

    zero = dict(
        dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        dropout_input=0.0,
        dropout_features=0.0,
        encoder_layerdrop=0.0,
    )
    cfg = HubertConfig(**(TINY if size == "tiny" else dict(label_rate=50.0, feature_grad_mult=0.1, **zero)))
    task = HubertPretrainingConfig(data="unused", labels=["km"], label_rate=50.0)
    return HubertModel(cfg, task, [list(range(504))]), cfg


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=["base", "tiny"], default="base")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    fs_model, cfg = build(a.size)
    fs_model.train()
    model, _ = ours_from(fs_model, cfg)
    n = int(a.seconds * 16000)
    g = torch.Generator().manual_seed(0)
    wavs = torch.randn(a.batch, n, generator=g) * 0.1
    frames = (n - 400) // 320 + 1
    labels = torch.randint(0, 504, (a.batch, frames + 2), generator=g)
    row = span_mask(torch.tensor([frames]), frames, 0.8, 10, 2, generator=torch.Generator().manual_seed(1))
    mask = row.expand(a.batch, frames).clone()

    theirs_opt = torch.optim.AdamW(fs_model.parameters(), lr=1e-5)
    ours_opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    losses = {}

    def theirs_step():
        theirs_opt.zero_grad()
        loss, _, _ = fairseq_loss(fs_model, wavs, labels, mask, 1.0, 0.0)
        loss.backward()
        losses.setdefault("fairseq", loss.item())

    def ours_step():
        ours_opt.zero_grad()
        loss, _ = our_loss(model, wavs, labels, mask, 1.0, 0.0)
        loss.backward()
        losses.setdefault("speechssl", loss.item())

    with torch.no_grad():  # the first losses, before any update
        losses["fairseq_first"] = float(fairseq_loss(fs_model, wavs, labels, mask, 1.0, 0.0)[0])
        losses["speechssl_first"] = float(our_loss(model, wavs, labels, mask, 1.0, 0.0)[0])
    t_theirs = best_time(lambda: (theirs_step(), theirs_opt.step()), a.repeats)
    t_ours = best_time(lambda: (ours_step(), ours_opt.step()), a.repeats)
    params = sum(p.numel() for p in model.parameters())
    print(f"CPU: {cpu_name()}, threads {a.threads}, torch {torch.__version__}")
    print(
        f"HuBERT {a.size} ({params / 1e6:.2f}M parameters with heads), batch {a.batch} x {a.seconds:g} s, "
        f"{int(mask.sum())} masked frames"
    )
    print(
        f"loss before the first update: fairseq {losses['fairseq_first']:.6f}, "
        f"speechssl {losses['speechssl_first']:.6f}"
    )
    print(
        f"train step (fwd + bwd + AdamW), fastest of {a.repeats}: fairseq {t_theirs:.3f} s, speechssl {t_ours:.3f} s, "
        f"ratio fairseq / speechssl {t_theirs / t_ours:.2f}"
    )


if __name__ == "__main__":
    main()
