#!/usr/bin/env python
"""How hard is the synthetic corpus? FBANK baselines for speaker ID and phone recognition.

Speaker ID: mean+std pooled 80-dim fbank per utterance, a linear classifier trained on
``train`` and scored on ``test`` (same speakers, unseen sentences). Phone probe: a linear
classifier on single 10 ms fbank frames (+-4 frames of context) against the corpus's own
alignments, trained on train frames, scored on test frames. Both are also run on a clean
build (raw espeak voices: no channel colouring, noise, reverberation or session EQ) to show
what the degradations do.

    python tools/probe_corpus.py --preset mini --workdir exp/probe
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import torch

from speechssl.audio import features as F
from speechssl.audio.phones import PHONE_SET
from speechssl.corpus.synth import PRESETS, synthesize_corpus
from speechssl.data.kaldi_dir import DataDir
from speechssl.data.librispeech import prepare_librispeech, read_ctm_frames


def utterance_fbank(d: DataDir):
    out = {}
    for utt, wav in d.iter_audio():
        feats, _ = F.fbank(torch.from_numpy(wav))
        out[utt] = feats
    return out


def linear_probe(x_tr, y_tr, x_te, y_te, classes, steps=400, lr=0.05, wd=1e-4, seed=0):
    torch.manual_seed(seed)
    mu, sd = x_tr.mean(0), x_tr.std(0) + 1e-5
    x_tr, x_te = (x_tr - mu) / sd, (x_te - mu) / sd
    model = torch.nn.Linear(x_tr.shape[1], classes)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=wd)
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x_tr), y_tr).backward()
        opt.step()
    with torch.no_grad():
        return float((model(x_te).argmax(-1) == y_te).float().mean())


def speaker_id(train: DataDir, test: DataDir, feats_tr, feats_te) -> float:
    def pool(feats):
        return torch.stack([torch.cat([f.mean(0), f.std(0)]) for f in feats.values()])

    readers = sorted({train.extra["utt2reader"][u] for u in train.utt_ids})
    idx = {r: i for i, r in enumerate(readers)}
    y_tr = torch.tensor([idx[train.extra["utt2reader"][u]] for u in feats_tr])
    y_te = torch.tensor([idx[test.extra["utt2reader"][u]] for u in feats_te])
    return linear_probe(pool(feats_tr), y_tr, pool(feats_te), y_te, len(readers))


def phone_probe(train: DataDir, test: DataDir, feats_tr, feats_te, context=4, max_frames=150_000) -> float:
    pid = {p: i for i, p in enumerate(PHONE_SET)}

    def frames(d, feats):
        labels = read_ctm_frames(d.verbatim["alignments.ctm"])
        xs, ys = [], []
        for utt, f in feats.items():
            lab = labels[utt]
            n = min(len(lab), f.shape[0])
            padded = torch.nn.functional.pad(f[:n].T, (context, context), mode="replicate").T
            ctx = padded.unfold(0, 2 * context + 1, 1).reshape(n, -1)
            xs.append(ctx)
            ys.append(torch.tensor([pid[p] for p in lab[:n]]))
        x, y = torch.cat(xs), torch.cat(ys)
        if x.shape[0] > max_frames:
            keep = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(0))[:max_frames]
            x, y = x[keep], y[keep]
        return x, y

    x_tr, y_tr = frames(train, feats_tr)
    x_te, y_te = frames(test, feats_te)
    return linear_probe(x_tr, y_tr, x_te, y_te, len(PHONE_SET))


def run(preset_name: str, workdir: Path, clean: bool) -> dict:
    preset = PRESETS[preset_name]
    if clean:
        preset = dataclasses.replace(
            preset,
            name=f"{preset_name}-clean",
            noise_prob=0.0,
            reverb_prob=0.0,
            session_eq=False,
            channel_colouring=False,
        )
    tag = preset.name
    corpus = workdir / tag / "corpus"
    synthesize_corpus(corpus, preset, seed=0, progress=False)
    dd = {s: prepare_librispeech(corpus, s, workdir / tag / "data" / s) for s in ("train", "test")}
    feats = {s: utterance_fbank(d) for s, d in dd.items()}
    return {
        "corpus": tag,
        "speaker_id_acc": speaker_id(dd["train"], dd["test"], feats["train"], feats["test"]),
        "phone_probe_acc": phone_probe(dd["train"], dd["test"], feats["train"], feats["test"]),
        "speakers": len(dd["train"].spk2utt),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="mini")
    ap.add_argument("--workdir", default="exp/probe")
    args = ap.parse_args()
    rows = [run(args.preset, Path(args.workdir), clean) for clean in (True, False)]
    print("| corpus | speakers | FBANK speaker ID acc | FBANK phone probe acc |")
    print("|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['corpus']} | {r['speakers']} | {100 * r['speaker_id_acc']:.1f}% | "
            f"{100 * r['phone_probe_acc']:.1f}% |"
        )
    Path(args.workdir, "probe.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
