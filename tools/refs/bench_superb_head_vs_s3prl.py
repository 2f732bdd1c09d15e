"""One SUPERB KS head update beside s3prl's, in one process, on the same hidden states, batch and threads.

    .refs/venv/bin/python tools/refs/bench_superb_head_vs_s3prl.py [--states 13] [--dim 768] [--batch 32]

s3prl 0.4.18: its ``Featurizer`` (softmax-weighted sum, then the per-utterance list cut by the downsample rate) and
its ``speech_commands`` expert's forward (pad, 256-d projection, ``UtteranceLevel`` mean pooling, linear, cross
entropy), Adam. Ours: :class:`speechssl.downstream.heads.SuperbModel` with the KS head (``MeanPoolLinear``),
the same loss and Adam. Both start from the same weights (projection and classifier copied); the hidden states
are the upstream's output, as both runners hand them to the head (the upstream's own cost is not timed).
Prints the fastest of ``--repeats`` timings of ``--steps`` updates each, and the ratio.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch
from torch import nn


class _States(nn.Module):
    """A stand-in upstream for s3prl's Featurizer, which probes its upstream once at construction."""

    def __init__(self, num_states: int, dim: int, rate: int = 320):
        super().__init__()
        self.num_states, self.dim, self.rate = num_states, dim, rate

    def get_downsample_rates(self, key=None) -> int:
        return self.rate

    def forward(self, wavs):
        frames = max(len(w) for w in wavs) // self.rate
        return {"hidden_states": [torch.zeros(len(wavs), frames, self.dim) for _ in range(self.num_states)]}


def s3prl_step_fn(states, wavs, labels, classes: int):
    from s3prl.downstream.speech_commands.expert import DownstreamExpert
    from s3prl.upstream.interfaces import Featurizer

    featurizer = Featurizer(_States(len(states), states[0].shape[-1]), upstream_device="cpu")
    expert = DownstreamExpert.__new__(DownstreamExpert)  # the model part only: no dataset folders
    nn.Module.__init__(expert)
    from s3prl.downstream.model import UtteranceLevel

    expert.projector = nn.Linear(states[0].shape[-1], 256)
    expert.model = UtteranceLevel(input_dim=256, output_dim=classes, pooling="MeanPooling")
    expert.objective = nn.CrossEntropyLoss()
    params = list(featurizer.parameters()) + list(expert.parameters())
    opt = torch.optim.Adam(params, lr=1e-3)

    def step():
        records = {"loss": [], "acc": [], "filename": [], "predict": [], "truth": []}
        feats = featurizer(wavs, {"hidden_states": states})
        loss = DownstreamExpert.forward(expert, "train", feats, labels.tolist(), ["u"] * len(wavs), records)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad()
        return loss.item()

    return step, expert, featurizer


def ours_step_fn(states, lengths, labels, classes: int, s3prl_expert):
    from speechssl.downstream.heads import MeanPoolLinear, SuperbModel

    model = SuperbModel(len(states), False, MeanPoolLinear(states[0].shape[-1], classes, 256))
    with torch.no_grad():  # the same starting weights as s3prl's
        model.head.project.load_state_dict(s3prl_expert.projector.state_dict())
        model.head.out.load_state_dict(s3prl_expert.model.post_net.linear.state_dict())
    stacked = torch.stack(states)  # [L, B, T, D], as our runner hands the cache's rows to the head
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step():
        loss = nn.functional.cross_entropy(model(stacked, lengths), labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad()
        return loss.item()

    return step


def fastest(step, steps: int, repeats: int) -> float:
    step()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(steps):
            step()
        best = min(best, (time.perf_counter() - t) / steps)
    return best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--states", type=int, default=13, help="hidden states (HuBERT Base: 13)")
    p.add_argument("--dim", type=int, default=768)
    p.add_argument("--batch", type=int, default=32, help="utterances (s3prl's KS batch)")
    p.add_argument("--seconds", type=float, default=1.0, help="the longest utterance (Speech Commands: 1 s)")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    torch.manual_seed(0)
    rate, classes = 320, 12
    samples = torch.randint(int(0.6 * 16000 * args.seconds), int(16000 * args.seconds) + 1, (args.batch,))
    samples[0] = int(16000 * args.seconds)
    wavs = [torch.zeros(int(n)) for n in samples]
    frames = int(samples.max()) // rate
    states = [torch.randn(args.batch, frames, args.dim) for _ in range(args.states)]
    lengths = torch.tensor([min(frames, round(int(n) / rate)) for n in samples])  # s3prl's cut, so both pool alike
    labels = torch.randint(0, classes, (args.batch,))
    s3prl_step, expert, _ = s3prl_step_fn(states, wavs, labels, classes)
    ours_step = ours_step_fn(states, lengths, labels, classes, expert)
    first = (s3prl_step(), ours_step())  # the same weights and inputs: the same first loss
    theirs, ours = fastest(s3prl_step, args.steps, args.repeats), fastest(ours_step, args.steps, args.repeats)
    cpu = platform.processor() or platform.machine()
    print(f"CPU: {cpu}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(f"KS head, {args.states} states x {args.dim}, batch {args.batch} x {frames} frames")
    print(f"first loss (same weights, same inputs): s3prl {first[0]:.6f}, speechssl {first[1]:.6f}")
    print(f"s3prl {theirs * 1e3:.2f} ms / update, speechssl {ours * 1e3:.2f} ms / update")
    print(f"s3prl / speechssl {theirs / ours:.2f}")


if __name__ == "__main__":
    main()
