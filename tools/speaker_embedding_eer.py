"""How well a speaker embedding separates the speakers of a data dir: EER over every pair of up to
``--per-speaker`` utterances per speaker, for (a) mean + std of an upstream layer (what WavThruVec's
vocoder is conditioned on), (b) mean + std of 80 log-mel bins, (c) the independent judge (resemblyzer,
if installed). A vocoder cannot take a voice from an embedding whose EER is near 50 %.

    python tools/speaker_embedding_eer.py --data data/test_unseen_speakers --upstream exp/hubert_it2/final \
        --layers 0 1 3
"""

import argparse

import torch

from speechssl.data.kaldi_dir import DataDir
from speechssl.downstream.speaker_judge import verification_trials
from speechssl.hub import load_upstream
from speechssl.pipelines.speaker_embedding import logmel_speaker_embedding, speaker_embedding


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--layers", type=int, nargs="+", default=[1])
    ap.add_argument("--per-speaker", type=int, default=6)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    d = DataDir.read(args.data)
    utts = [u for s in sorted(d.spk2utt) for u in sorted(d.spk2utt[s])[: args.per_speaker]]
    speakers = {u: d.utt2spk[u] for u in utts}
    up = load_upstream(args.upstream).eval()
    embs = {f"{args.upstream} layer {L}: mean + std": {} for L in args.layers}
    embs["log-mel (80 bins): mean + std"] = {}
    wavs = {u: d.load_audio(u) for u in utts}
    for u, w in wavs.items():
        with torch.no_grad():
            out = up(torch.from_numpy(w)[None], torch.tensor([len(w)]))
        for L in args.layers:
            embs[f"{args.upstream} layer {L}: mean + std"][u] = speaker_embedding(out.hidden_states[L][0].numpy())
        embs["log-mel (80 bins): mean + std"][u] = logmel_speaker_embedding(w)
    try:
        from speechssl.downstream.speaker_judge import SpeakerJudge

        judge = SpeakerJudge()
        embs["resemblyzer (the independent judge)"] = {u: judge.embed(w) for u, w in wavs.items()}
    except Exception as e:  # the judges extra is optional
        print(f"resemblyzer skipped: {e}")
    print(f"{args.data}: {len(utts)} utterances of {len(set(speakers.values()))} speakers\n")
    print("| embedding | EER % | target / non-target mean cosine |\n|---|---:|---:|")
    for name, e in embs.items():
        r = verification_trials(e, speakers)
        print(f"| {name} | {r['eer']:.1f} | {r['target_mean']:.3f} / {r['nontarget_mean']:.3f} |")


if __name__ == "__main__":
    main()
