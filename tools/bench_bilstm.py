"""The SUPERB ASR head's BiLSTM on a CPU: nn.LSTM on a packed batch against nn/rnn.py's unpacked call, side by side
in one process, forward + backward. ``python tools/bench_bilstm.py [--frames 3500] [--batch 2] [--hidden 16]``."""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from speechssl.nn.rnn import padded_bilstm
from speechssl.utils.timing import cpu_name


def packed(lstm, x, lengths):
    p = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    return nn.utils.rnn.pad_packed_sequence(lstm(p)[0], batch_first=True, total_length=x.shape[1])[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--frames", type=int, default=3500)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    lstm = nn.LSTM(args.hidden, args.hidden, 2, batch_first=True, bidirectional=True).train()
    x = torch.randn(args.batch, args.frames, args.hidden)
    lengths = torch.linspace(args.frames, args.frames * 0.8, args.batch).long()
    seconds = {}
    for name, fn in (("packed", packed), ("unpacked", padded_bilstm)):
        x_ = x.clone().requires_grad_()
        t0 = time.perf_counter()
        fn(lstm, x_, lengths).sum().backward()
        seconds[name] = time.perf_counter() - t0
    cpu = cpu_name()
    print(
        f"{args.batch} x {args.frames} frames, 2-layer BiLSTM of {args.hidden}, {args.threads} thread(s), {cpu}: "
        f"packed {seconds['packed']:.2f} s, unpacked {seconds['unpacked']:.2f} s, "
        f"{seconds['packed'] / seconds['unpacked']:.0f}x"
    )


if __name__ == "__main__":
    main()
