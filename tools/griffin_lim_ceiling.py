"""The ceiling of a mel-predicting vocoder: each utterance's *true* log-mel (vec2mel's spectrogram) turned back
into audio by Griffin-Lim, scored by a CTC model beside the original audio. If this is near the original's WER,
a vocoder that predicts the mel well enough is intelligible without a neural waveform generator.

    python tools/griffin_lim_ceiling.py --data data/test --max-utts 32 --asr exp/asr/w2v_bert/final \
        --beam 20 --lm exp/lm/3gram.arpa --settings-from exp/asr/w2v_bert/decode_dev_beam_lm --out exp/tts/gl_ceiling
"""

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from speechssl.data.kaldi_dir import DataDir
from speechssl.downstream.asr_decode import decode_asr
from speechssl.models.vec2mel import Vec2MelConfig, griffin_lim
from speechssl.objectives.gan import LogMel
from speechssl.tasks.lm_tuning import settings_from
from speechssl.tasks.tts_eval import write_audio_dir


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--asr", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--max-utts", type=int, default=32)
    ap.add_argument("--beam", type=int, default=0)
    ap.add_argument("--lm", default=None)
    ap.add_argument("--settings-from", default=None, help="the dev decode whose LM weight and word score to use")
    ap.add_argument("--iters", type=int, default=32, help="Griffin-Lim iterations")
    args = ap.parse_args()
    torch.set_num_threads(2)
    d = DataDir.read(args.data)
    utts = [u for u in d.utt_ids if u in d.text][: args.max_utts]
    cfg = Vec2MelConfig(griffin_lim_iters=args.iters)
    log_mel = LogMel(hop_length=cfg.mel_hop_length)
    decode = {"beam": args.beam, "lm": args.lm, **(settings_from(args.settings_from) if args.settings_from else {})}
    out, res = Path(args.out), {"utterances": len(utts), "asr": args.asr, "decode": decode}

    def griffin_lim_of(u):
        wav = torch.from_numpy(np.asarray(d.load_audio(u), np.float32))[None]
        return griffin_lim(log_mel(wav)[0].T.numpy(), cfg)

    for name, audio in (("original", d.load_audio), ("griffin_lim", griffin_lim_of)):
        wavs = {u: audio(u) for u in utts}
        data = write_audio_dir(out / name, wavs, {u: d.text[u] for u in utts}, {u: d.utt2spk[u] for u in utts})
        r = decode_asr(
            args.asr,
            data,
            out / f"decode_{name}",
            text_file="text",
            **{k: v for k, v in decode.items() if v is not None},
        )
        res[name] = {"wer": r["wer"]["rate"], "cer": r["cer"]["rate"]}
    (out / "ceiling.json").write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
