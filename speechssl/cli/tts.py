"""``tts``, ``synthesize`` and ``voice-convert``: WavThruVec training, evaluation and use."""

from __future__ import annotations

from ..constants import SAMPLE_RATE
from ..errors import InputError
from ..tasks.registry import tasks_in
from ._args import add_group, add_parser, add_task_command, print_json


def asr_decoding(args) -> dict:
    """The judging ASR's decoding options: greedy, or beam search with an n-gram LM."""
    from ..tasks.lm_tuning import settings_from

    if args.asr_lm and not args.asr_beam:
        raise InputError("--asr-lm needs --asr-beam N (the LM is used by beam search only)")
    if not args.asr_beam:
        return {}
    weights = {"lm_weight": args.asr_lm_weight, "word_score": args.asr_word_score}
    if args.asr_settings_from:  # the LM weight and word score the ASR's dev decode chose
        weights = settings_from(args.asr_settings_from)
    return {"beam": args.asr_beam, "lm": args.asr_lm, **weights}


def cmd_eval(args) -> int:
    from ..tasks.tts_eval import evaluate

    return print_json(
        evaluate(
            args.vocoder,
            args.data,
            args.out,
            args.acoustic,
            args.asr,
            args.ref_data,
            args.max_utts,
            asr_decode=asr_decoding(args),
            device=args.device,
            judges={"auto": None, "on": True, "off": False}[args.judges],
            judge_lm=args.judge_lm,
            clean_data=args.clean_data,
        )
    )


def cmd_curve(args) -> int:
    from ..tasks.tts_eval import resynthesis_curve

    return print_json(
        resynthesis_curve(args.snapshots, args.data, args.out, args.asr, args.max_utts, asr_decoding(args))
    )


def cmd_synthesize(args) -> int:
    from ..audio.io import load
    from ..downstream.wavthruvec import WavThruVec, save_wav

    wav, phones, _ = WavThruVec(args.vocoder, args.acoustic).synthesize(
        args.text, load(args.speaker_ref), args.length_scale
    )
    print(f"{' '.join(phones)}\n{save_wav(args.out, wav)}: {len(wav) / SAMPLE_RATE:.2f} s")
    return 0


def cmd_voice_convert(args) -> int:
    from ..audio.io import load
    from ..downstream.wavthruvec import WavThruVec, save_wav

    wav = WavThruVec(args.vocoder).voice_convert(load(args.source), load(args.target_ref))
    print(f"{save_wav(args.out, wav)}: {len(wav) / SAMPLE_RATE:.2f} s")
    return 0


def _judge_flags(s, max_utts: int) -> None:
    from ..constants import DEFAULT_LM_WEIGHT, DEFAULT_WORD_SCORE

    s.add_argument("--asr", default=None, help="fine-tuned CTC model folder (WER measured when given)")
    s.add_argument("--data", required=True, help="test data dir (audio + text)")
    s.add_argument("--asr-beam", type=int, default=0, help="the ASR's beam (0: greedy)")
    s.add_argument("--asr-lm", default=None, help="ARPA / KenLM n-gram for the ASR's beam search")
    s.add_argument("--asr-lm-weight", type=float, default=DEFAULT_LM_WEIGHT, help="LM weight in the ASR's beam search")
    s.add_argument(
        "--asr-word-score", type=float, default=DEFAULT_WORD_SCORE, help="word score in the ASR's beam search"
    )
    s.add_argument(
        "--asr-settings-from",
        metavar="DEV_DECODE_DIR",
        help="the LM weight and word score of this dev decode (`decode` swept them there)",
    )
    s.add_argument("--max-utts", type=int, default=max_utts, help="utterances judged")
    s.add_argument("--out", required=True, help="output folder")


def register(sub) -> None:
    tts = add_group(sub, "tts", "WavThruVec: text -> SSL features -> waveform")
    for word, spec in tasks_in("tts").items():
        add_task_command(
            tts, word, spec, f"tts/{spec.name}_tiny", "upstream=exp/hubert_it2/final data.train=data/train"
        )
    s = add_parser(
        tts,
        "eval",
        "resynthesis MCD / STOI / WER, TTS WER and speaker similarity, voice conversion "
        "similarity; spectrogram plots (OUT/tts_eval.json)",
    )
    s.add_argument("--vocoder", default="exp/vec2wav/final", help="exported vocoder folder (vec2wav or vec2mel)")
    s.add_argument("--acoustic", default=None, help="text2vec export (TTS measured when given)")
    s.add_argument("--ref-data", default=None, help="data dir of reference voices (default: --data)")
    s.add_argument(
        "--clean-data",
        default=None,
        help="the clean twin of --data (`corpus synth --preset "
        "mini-clean`): its ASR floor and resynthesis MCD / STOI against it too",
    )
    _judge_flags(s, 128)  # 32 utterances (~160 words) move the WER by about +-3 points between runs of one model
    s.add_argument("--device", default="auto", help="torch device: auto (a GPU when there is one), cpu, cuda")
    s.add_argument(
        "--judges",
        default="auto",
        choices=["auto", "on", "off"],
        help="the independent judges (resemblyzer, PocketSphinx, published MCD): auto = when installed",
    )
    s.add_argument(
        "--judge-lm",
        default=None,
        help="ARPA LM for PocketSphinx (default: --asr-lm when given, else its own US English LM)",
    )
    s.set_defaults(func=cmd_eval)
    s = add_parser(
        tts,
        "curve",
        "resynthesis WER / MCD / STOI of every vocoder snapshot against training steps, "
        "the ASR's WER on the original audio as the floor (OUT/curve.{json,png})",
    )
    s.add_argument("--snapshots", default="exp/tts/vec2wav/snapshots", help="the vocoder run's snapshots folder")
    _judge_flags(s, 16)
    s.set_defaults(func=cmd_curve)

    s = add_parser(sub, "synthesize", "text to speech in the voice of a reference recording")
    s.add_argument("--text", required=True, help="the sentence")
    s.add_argument("--speaker-ref", required=True, help="a recording of the voice to use (any speaker)")
    s.add_argument("--out", required=True, help="output .wav (16 kHz)")
    s.add_argument("--acoustic", default="exp/text2vec/final", help="exported text2vec folder")
    s.add_argument("--vocoder", default="exp/vec2wav/final", help="exported vocoder folder (vec2wav or vec2mel)")
    s.add_argument("--length-scale", type=float, default=1.0, help="> 1 speaks slower")
    s.set_defaults(func=cmd_synthesize)
    s = add_parser(
        sub,
        "voice-convert",
        "the source's words in the target's voice (the vocoder with the target reference's speaker embedding)",
    )
    s.add_argument("--source", required=True, help="the recording to convert")
    s.add_argument("--target-ref", required=True, help="a recording of the target voice")
    s.add_argument("--out", required=True, help="output .wav (16 kHz)")
    s.add_argument("--vocoder", default="exp/vec2wav/final", help="exported vocoder folder (vec2wav or vec2mel)")
    s.set_defaults(func=cmd_voice_convert)
