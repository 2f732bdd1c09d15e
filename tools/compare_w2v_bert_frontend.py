#!/usr/bin/env python
"""Our w2v-BERT 2.0 fbank frontend against transformers' SeamlessM4TFeatureExtractor on real audio.

Each recording of ../shared/testdata (loaded and resampled to 16 kHz) goes through both; the
script prints the median and max absolute difference of the normalised, stacked features, and
where the max falls: the mel bin's level below the frame's loudest bin (log-mel, before
normalisation), which shows whether disagreements sit in near-empty bins.

    python tools/compare_w2v_bert_frontend.py [--limit 40]
"""

import argparse
import math
from pathlib import Path

import numpy as np
import torch

from speechssl.audio.features import fbank
from speechssl.data.kaldi_dir import DataDir
from speechssl.nn.frontends import FbankStacker

TESTDATA = Path(__file__).resolve().parents[1].parent / "shared" / "testdata"


def main():
    import transformers

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--limit", type=int, default=40, help="recordings per data set")
    args = p.parse_args()
    reference, ours = transformers.SeamlessM4TFeatureExtractor(), FbankStacker()
    medians, worst = [], (0.0, None)
    for name in ("librispeech", "ljspeech", "fsdd", "pocketsphinx"):
        data = DataDir.read(TESTDATA / name)
        for utt in data.utt_ids[: args.limit]:
            wav = torch.from_numpy(data.load_audio(utt, 16000))
            ref = reference(wav.numpy(), sampling_rate=16000, return_tensors="pt").input_features[0]
            feats, frames = ours(wav[None], torch.tensor([len(wav)]))
            n = int(frames[0])
            diff = (feats[0, :n] - ref[:n]).abs()
            medians.append(float(diff.median()))
            if float(diff.max()) > worst[0]:
                t, col = divmod(int(diff.argmax()), diff.shape[1])
                logmel, _ = fbank(wav * 32768.0, None, ours.logmel.opts)
                frame = logmel[2 * t + col // 80]
                below_db = float(frame.max() - frame[col % 80]) * 10 / math.log(10)
                worst = (
                    float(diff.max()),
                    f"{name}/{utt} frame {t}, bin {col % 80}, {below_db:.0f} dB below the frame's loudest bin",
                )
    print(f"{len(medians)} recordings: median |diff| {np.median(medians):.1e}, max {worst[0]:.3g} at {worst[1]}")


if __name__ == "__main__":
    main()
