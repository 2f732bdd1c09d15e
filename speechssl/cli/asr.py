"""``decode`` and ``lm ngram``: CTC decoding with Kaldi-style scoring, and the n-gram it can use."""

from __future__ import annotations

from ..errors import InputError
from ._args import add_group, add_parser


def cmd_decode(args) -> int:
    from ..downstream.asr_decode import decode_asr
    from ..tasks.lm_tuning import settings_from, tune_lm_decoding

    if len(args.lm_weight) > 1 or len(args.word_score) > 1:  # a grid: choose on this (dev) set
        if args.settings_from:
            raise InputError("--settings-from reuses one LM weight and word score; give no grid with it")
        result = tune_lm_decoding(
            args.model,
            args.data,
            args.out,
            args.lm,
            args.lm_weight,
            args.word_score,
            args.beam,
            args.batch_seconds,
            args.device,
        )
    else:
        lm_weight, word_score = args.lm_weight[0], args.word_score[0]
        if args.settings_from:
            chosen = settings_from(args.settings_from)
            lm_weight, word_score = chosen["lm_weight"], chosen["word_score"]
        result = decode_asr(
            args.model, args.data, args.out, args.beam, args.lm, lm_weight, word_score, args.batch_seconds, args.device
        )
    print("\n".join(result["lines"]))
    return 0


def cmd_lm_ngram(args) -> int:
    from ..downstream.ngram import read_transcripts, train_arpa

    texts = read_transcripts(args.text)
    counts = train_arpa(texts, args.out, args.order, args.discount)
    print(f"{args.out}: {len(texts)} sentences, " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    return 0


def register(sub) -> None:
    from ..constants import DEFAULT_LM_WEIGHT, DEFAULT_WORD_SCORE

    s = add_parser(
        sub,
        "decode",
        "CTC decoding (greedy or beam search with an optional n-gram LM) and Kaldi-style scoring (WER/CER or PER)",
    )
    s.add_argument("--model", required=True, help="folder written by `speechssl finetune asr` (OUT/final)")
    s.add_argument("--data", required=True, help="data dir with references (text, or text.phone)")
    s.add_argument("--out", required=True, help="decode dir: hyp.txt, ref.txt, per_utt, wer, results.json")
    s.add_argument("--beam", type=int, default=0, help="beam width (0 = greedy)")
    s.add_argument("--lm", help="word n-gram LM (ARPA or KenLM binary) for beam search")
    s.add_argument(
        "--lm-weight",
        type=float,
        nargs="+",
        default=[DEFAULT_LM_WEIGHT],
        help="LM weight in beam search; several values (or several --word-score values) sweep the grid "
        "on --data, which must then be a dev set, and keep the best (tuning.json)",
    )
    s.add_argument(
        "--word-score", type=float, nargs="+", default=[DEFAULT_WORD_SCORE], help="bonus per word with an LM"
    )
    s.add_argument(
        "--settings-from",
        metavar="DEV_DECODE_DIR",
        help="take the LM weight and word score from this decode (the one chosen on dev)",
    )
    s.add_argument("--batch-seconds", type=float, default=60.0, help="padded audio seconds per batch")
    s.add_argument("--device", default="auto", help="torch device: auto (a GPU when there is one), cpu, cuda, cuda:1")
    s.set_defaults(func=cmd_decode)

    lm = add_group(sub, "lm", "language models for decoding")
    s = add_parser(lm, "ngram", "word n-gram ARPA (interpolated absolute discounting) from transcripts")
    s.add_argument("--text", nargs="+", required=True, help="data dirs or Kaldi text files")
    s.add_argument("--order", type=int, default=3, help="n-gram order")
    s.add_argument("--discount", type=float, default=0.5, help="absolute discount")
    s.add_argument("--out", required=True, help="the ARPA file to write")
    s.set_defaults(func=cmd_lm_ngram)
