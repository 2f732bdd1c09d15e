#!/usr/bin/env python
"""Feature extraction throughput: ours (single utterance and batched) against
kaldi-native-fbank and librosa on the same audio, in one run. Prints a Markdown table of
real-time factors (audio seconds per wall second) and ratios to kaldi-native-fbank.

    python tools/bench_features.py [--utts 64] [--threads 2]

librosa computes a different (Slaney/HTK) mel filterbank: it stands in for "a popular
feature library", not for a Kaldi-exact peer.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from speechssl.audio import features as F
from speechssl.data.kaldi_dir import DataDir
from speechssl.utils.timing import best_time

TESTDATA = Path(__file__).resolve().parents[1].parent / "shared" / "testdata"


def load_corpus(n: int):
    wavs = []
    for name in ("librispeech", "ljspeech", "pocketsphinx", "fsdd"):
        d = DataDir.read(TESTDATA / name)
        wavs += [w for _, w in d.iter_audio()]
    rng = np.random.default_rng(0)
    return [wavs[i] for i in rng.permutation(len(wavs))[:n]]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--utts", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import kaldi_native_fbank as knf
    import librosa

    wavs = load_corpus(args.utts)
    seconds = sum(w.shape[0] for w in wavs) / 16000
    tensors = [torch.from_numpy(w) for w in wavs]
    order = sorted(range(len(wavs)), key=lambda i: wavs[i].shape[0])  # length bucketing
    batches = []
    for i in range(0, len(order), args.batch):
        idx = order[i : i + args.batch]
        batches.append(
            (
                torch.nn.utils.rnn.pad_sequence([tensors[j] for j in idx], batch_first=True),
                torch.tensor([wavs[j].shape[0] for j in idx]),
            )
        )

    def knf_run(kind):
        def run():
            for w in wavs:
                o = knf.FbankOptions() if kind == "fbank" else knf.MfccOptions()
                if kind == "fbank":
                    o.mel_opts.num_bins = 80
                o.frame_opts.dither = 0.0
                c = knf.OnlineFbank(o) if kind == "fbank" else knf.OnlineMfcc(o)
                c.accept_waveform(16000, w)
                c.input_finished()
                np.stack([c.get_frame(i) for i in range(c.num_frames_ready)])

        return run

    def ours_single(fn):
        def run():
            with torch.no_grad():
                for t in tensors:
                    fn(t)

        return run

    def ours_batched(fn):
        def run():
            with torch.no_grad():
                for b, l in batches:
                    fn(b, l)

        return run

    def librosa_run(kind):
        def run():
            for w in wavs:
                if kind == "fbank":
                    librosa.power_to_db(
                        librosa.feature.melspectrogram(
                            y=w, sr=16000, n_fft=512, win_length=400, hop_length=160, n_mels=80
                        )
                    )
                else:
                    librosa.feature.mfcc(y=w, sr=16000, n_mfcc=13, n_fft=512, win_length=400, hop_length=160, n_mels=23)

        return run

    print(f"{len(wavs)} utterances, {seconds:.0f} s of audio, {args.threads} threads, batch {args.batch}\n")
    print("| features | implementation | x real time | vs kaldi-native-fbank |")
    print("|---|---|---|---|")
    for kind, fn in (("fbank 80", F.fbank), ("MFCC 13", F.mfcc)):
        k = kind.split()[0].lower()
        rows = [
            ("kaldi-native-fbank", best_time(knf_run(k))),
            ("speechssl, one utterance at a time", best_time(ours_single(fn))),
            (f"speechssl, batched ({args.batch})", best_time(ours_batched(fn))),
            ("librosa", best_time(librosa_run(k))),
        ]
        ref = rows[0][1]
        for name, t in rows:
            print(f"| {kind} | {name} | {seconds / t:,.0f} | {ref / t:.2f}x |")


if __name__ == "__main__":
    main()
