"""``corpus``, ``data``, ``features`` and ``demo``: corpora, Kaldi data dirs and Kaldi features."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ..errors import InputError
from ._args import add_group, add_parser, key_values, print_json, shard_flags


def cmd_corpus_synth(args) -> int:
    from ..corpus.synth import synthesize_corpus

    return print_json(synthesize_corpus(args.out, args.preset, args.seed, args.nj))


def _summary(out: Path, d) -> str:
    """One line on a written data dir (a :class:`~speechssl.data.kaldi_dir.DataDir`)."""
    speakers = f"{len(d.spk2utt)} speakers"
    readers = {s.split("-")[0] for s in d.spk2utt}
    if len(readers) != len(d.spk2utt) and all("-" in s for s in d.spk2utt):  # LibriSpeech: reader-chapter
        speakers = f"{len(d.spk2utt)} speakers (reader-chapter, as Kaldi's recipe), {len(readers)} readers"
    return f"{out}: {len(d)} utterances, {speakers}, {sum(d.utt2dur.values()) / 3600:.3f} h"


def cmd_data_prep(args) -> int:
    from ..data.librispeech import find_librispeech_root, prepare_librispeech

    subsets = args.subsets.split(",")
    root = find_librispeech_root(args.corpus_dir, subsets)  # /data or /data/LibriSpeech
    for subset in subsets:
        out = Path(args.out) / subset.replace("-", "_")
        print(_summary(out, prepare_librispeech(root, subset, out)))
    return 0


def cmd_data_prep_librilight(args) -> int:
    from ..data.librilight import prepare_librilight

    for name in args.sets.split(","):
        out = Path(args.out) / ("librilight_" + name.replace("/", "_"))
        print(_summary(out, prepare_librilight(args.corpus_dir, name, out)))
    return 0


def cmd_data_align(args) -> int:
    from ..pipelines.align import align_data_dir  # pocketsphinx only here

    counts = align_data_dir(args.data, args.out)
    print(
        f"{args.out or args.data}: {counts['aligned']} utterances aligned, {counts['unaligned']} not "
        f"(alignments.unaligned says why)"
    )
    return 0


def cmd_data_split_readers(args) -> int:
    from ..data.heldout import write_reader_splits

    held = {}
    for spec in args.split:
        name, _, readers = spec.partition("=")
        if not name or not readers:
            raise InputError(f"--split {spec!r}: expected NAME=READER,READER,...")
        held[name] = [r for r in readers.replace(" ", ",").split(",") if r]
    for name, d in write_reader_splits(args.data, args.out, held, args.rest).items():
        readers = sorted({s.split("-")[0] for s in d.utt2spk.values()})
        print(f"{_summary(Path(args.out) / name, d)}, readers {' '.join(readers)}")
    return 0


def cmd_data_validate(args) -> int:
    from ..audio.io import is_pipe
    from ..data.kaldi_dir import DataDir

    d = DataDir.read(args.dir)
    pipes = sum(is_pipe(v) for v in d.wav_scp.values())
    if args.check_audio and pipes:  # they are the user's shell commands: say so before running them
        print(
            f"{args.dir}: --check-audio runs the {pipes} pipe command(s) in wav.scp (stdin closed, each bounded "
            "by SPEECHSSL_PIPE_TIMEOUT / SPEECHSSL_PIPE_MAX_BYTES)",
            file=sys.stderr,
        )
    problems = d.validate(check_audio=args.check_audio)
    for p in problems:
        print(p)
    errors = sum(p.severity == "error" for p in problems)
    print(f"{args.dir}: {errors} errors, {len(problems) - errors} warnings")
    return 1 if errors else 0


def cmd_data_fix(args) -> int:
    from ..data.fix import fix_data_dir

    print("\n".join(fix_data_dir(args.dir, args.out).lines()))
    return 0


def cmd_data_utt2dur(args) -> int:
    from ..data.kaldi_dir import DataDir

    d = DataDir.read(args.dir)
    d.compute_utt2dur(progress=True)
    d.write(args.dir)
    print(f"{args.dir}/utt2dur: {len(d)} utterances, {sum(d.utt2dur.values()) / 3600:.3f} h")
    return 0


def cmd_prep_superb(args) -> int:
    from ..corpus.superb_prep import prepare_task_dirs

    return print_json(
        prepare_task_dirs(
            args.layout, args.task, args.src, args.out, args.test_src, args.lexicon, args.skip_oov, args.fold
        )
    )


def cmd_features(args) -> int:
    from ..pipelines.features import KALDI_SCALE, compute_features, merge_shards

    scp = compute_features(
        args.data,
        args.out,
        kind=args.type,
        deltas=args.deltas,
        cmvn=args.cmvn,
        nshard=args.nshard,
        rank=args.rank,
        skip_bad=args.skip_bad,
        scale=KALDI_SCALE if args.scale == "kaldi" else 1.0,
        **key_values(args.opt),
    )
    print(f"wrote {scp}")
    if all((Path(args.out) / f"feats.{r}.scp").exists() for r in range(args.nshard)):
        print(f"all shards done: {merge_shards(args.out, args.nshard)}")
    return 0


def cmd_demo(args) -> int:
    from ..corpus.demo import prepare_demo_data

    t0 = time.time()
    print(f"== synthesizing the {args.preset} corpus into {Path(args.workdir) / 'corpus'} and preparing its data dirs")
    res = prepare_demo_data(args.workdir, args.preset, args.seed)
    print(f"\n{'split':<22}{'utts':>6}{'spk':>5}{'minutes':>9}{'cmds':>6}{'kws':>5}")
    for r in res["splits"]:
        print(
            f"{r['split']:<22}{r['utts']:>6}{r['speakers']:>5}{r['minutes']:>9.1f}{r['commands']:>6}{r['keywords']:>5}"
        )
    c = res["corpus"]
    print(
        f"\ncorpus: {c['utterances']} utterances, {c['speakers']} speakers, {c['seconds'] / 60:.1f} min, "
        f"vocabulary {c['vocabulary']} words; made at {c['audio_seconds_per_second']}x real time"
    )
    print(f"data dirs: {res['data']}  (done in {time.time() - t0:.0f} s)")
    return 0


def cmd_data_combine(args) -> int:
    from ..data.combine import combine_data_dirs

    merged, dropped = combine_data_dirs(args.out, args.dirs)
    print(
        f"{args.out}: {len(merged)} utterances from {len(args.dirs)} data dirs"
        + (f"; dropped {', '.join(dropped)} (not in every input)" if dropped else "")
    )
    return 0


def cmd_data_shard(args) -> int:
    from ..clustering.label_set import read_label_set
    from ..data.shards import write_shards

    index = write_shards(
        args.data, args.out, [read_label_set(p) for p in args.labels], args.shard_hours * 3600, args.seed
    )
    print(
        f"{args.out}: {len(index['shards'])} shards, {index['utterances']} utterances, "
        f"{index['seconds'] / 3600:.2f} h, {len(index['label_sets'])} label sets"
    )
    return 0


PRESET_HELP = "corpus size; a -clean preset is its twin without reverberation and noise"


def register(sub) -> None:
    from ..corpus.presets import PRESETS

    corpus = add_group(sub, "corpus", "synthetic corpora")
    s = add_parser(
        corpus,
        "synth",
        "synthesize the espeak-ng mini corpus (LibriSpeech layout with phone alignments, speakers and task labels)",
    )
    s.add_argument("--out", required=True, help="corpus root to create")
    s.add_argument("--preset", default="mini", choices=sorted(PRESETS), help=PRESET_HELP)
    s.add_argument("--seed", type=int, default=0, help="random seed")
    s.add_argument("--nj", type=int, default=None, help="worker processes (default: all cores)")
    s.set_defaults(func=cmd_corpus_synth)

    data = add_group(sub, "data", "Kaldi data directories")
    s = add_parser(data, "prep-librispeech", "LibriSpeech-layout corpus -> data dirs (speaker = reader-chapter)")
    s.add_argument(
        "--corpus-dir",
        required=True,
        help="the corpus root: the folder holding the subsets, or the one holding LibriSpeech/",
    )
    s.add_argument(
        "--subsets",
        required=True,
        help="comma-separated, e.g. train-clean-100,dev-clean (or train,dev,test for the mini corpus)",
    )
    s.add_argument("--out", required=True, help="parent of the data dirs (one per subset)")
    s.set_defaults(func=cmd_data_prep)
    _register_real_corpora(data)
    _register_data_tools(data)
    _register_features(sub)


def _register_real_corpora(data) -> None:
    """Real layouts beyond LibriSpeech's: Libri-light's sets, held-out readers, phone alignments."""
    s = add_parser(
        data,
        "prep-librilight",
        "Libri-light limited-supervision sets (librispeech_finetuning/) -> "
        "data dirs data/librilight_<set> with text and text.phone",
    )
    s.add_argument("--corpus-dir", required=True, help="librispeech_finetuning/ or the folder holding it")
    s.add_argument("--sets", default="1h", help="comma-separated of 10min, 1h, 1h/0..1h/5, 9h, 10h")
    s.add_argument("--out", required=True, help="parent of the data dirs")
    s.set_defaults(func=cmd_data_prep_librilight)
    s = add_parser(
        data,
        "align",
        "phone alignments (alignments.ctm, ARPAbet + SIL at 10 ms) from PocketSphinx's "
        "forced alignment with its US English model; failures listed in alignments.unaligned",
    )
    s.add_argument("--data", required=True, help="the data dir (its text is aligned)")
    s.add_argument("--out", help="write the two files here instead of into the data dir")
    s.set_defaults(func=cmd_data_align)
    s = add_parser(data, "split-readers", "speaker-disjoint held-out splits: whole readers leave a data dir")
    s.add_argument("--data", required=True, help="the data dir to split")
    s.add_argument(
        "--split",
        action="append",
        required=True,
        metavar="NAME=R1,R2",
        help="a held-out split and its readers (repeatable)",
    )
    s.add_argument("--rest", default="train", help="name of the split with everyone else")
    s.add_argument("--out", required=True, help="parent of the split data dirs")
    s.set_defaults(func=cmd_data_split_readers)


def _register_data_tools(data) -> None:
    from ..constants import SUPERB_LAYOUT_TASKS as LAYOUT_TASKS
    from ..constants import SUPERB_MINI_TASKS as MINI_TASKS

    s = add_parser(data, "shard", "a data dir (+ label sets, alignments) -> WebDataset tar shards for streaming")
    s.add_argument("--data", required=True, help="the data dir")
    s.add_argument("--labels", action="append", default=[], help="a `speechssl kmeans assign` folder (repeatable)")
    s.add_argument("--out", required=True, help="the shard folder")
    s.add_argument("--shard-hours", type=float, default=1.0, help="audio per shard")
    s.add_argument("--seed", type=int, default=0, help="seed of the utterance shuffle before packing")
    s.set_defaults(func=cmd_data_shard)
    s = add_parser(data, "combine", "the union of data dirs (Kaldi's combine_data.sh), e.g. LibriSpeech's 960 h")
    s.add_argument("out", help="the combined data dir")
    s.add_argument("dirs", nargs="+", help="two or more data dirs")
    s.set_defaults(func=cmd_data_combine)
    s = add_parser(data, "validate", "report every problem with file and line; exit 1 on errors")
    s.add_argument("dir", help="the data dir")
    s.add_argument(
        "--check-audio",
        action="store_true",
        help="also open every audio header (this runs wav.scp's "
        "pipe commands, each with stdin closed and bounded in time and output)",
    )
    s.set_defaults(func=cmd_data_validate)
    s = add_parser(
        data,
        "fix",
        "keep only consistent utterances, sorted; lists what it dropped (in place: originals kept in DIR/.backup)",
    )
    s.add_argument("dir", help="the data dir")
    s.add_argument("--out", help="write here instead of in place")
    s.set_defaults(func=cmd_data_fix)
    s = add_parser(
        data, "prep-superb", "SUPERB task dirs (train/dev/test) from a dataset's own layout or the mini corpus"
    )
    s.add_argument("--task", default="all", choices=[*MINI_TASKS, "er", "all"], help="the task to prepare")
    s.add_argument(
        "--layout",
        required=True,
        choices=["mini", "mini_librispeech", *LAYOUT_TASKS],
        help="the source's layout (mini, mini_librispeech: the recipe's data dirs of the synthetic / the "
        "real-speech corpus)",
    )
    s.add_argument(
        "--src",
        required=True,
        help="mini: the data dirs' parent; librispeech: "
        "train=DIR,dev=DIR,test=DIR data dirs (or their parent); others: the dataset root",
    )
    s.add_argument("--test-src", help="speech_commands: the separate v0.01 test set")
    s.add_argument("--lexicon", help="librispeech PR: pronunciation lexicon (WORD PH1 PH2 ...)")
    s.add_argument("--skip-oov", action="store_true", help="PR: leave out utterances with words not in the lexicon")
    s.add_argument("--fold", type=int, default=1, help="iemocap: the session held out for test (1-5)")
    s.add_argument("--out", required=True, help="task dir (mini: parent of one dir per task)")
    s.set_defaults(func=cmd_prep_superb)
    s = add_parser(data, "utt2dur", "write utt2dur from audio headers")
    s.add_argument("dir", help="the data dir")
    s.set_defaults(func=cmd_data_utt2dur)


def _register_features(sub) -> None:
    from ..corpus.presets import PRESETS

    s = add_parser(sub, "features", "Kaldi-compatible fbank/MFCC of a data dir to ark/scp")
    s.add_argument("--data", required=True, help="the data dir")
    s.add_argument("--out", required=True, help="output folder")
    s.add_argument("--type", default="mfcc", choices=["fbank", "mfcc"], help="feature kind")
    s.add_argument(
        "--deltas", action="store_true", help="append delta and delta-delta (MFCC 39-dim as HuBERT iteration 1)"
    )
    s.add_argument("--cmvn", default="none", choices=["none", "utt", "spk"], help="mean/variance normalisation")
    s.add_argument(
        "--scale",
        default="kaldi",
        choices=["kaldi", "float"],
        help="sample scale: kaldi (int16 values, "
        "the numbers of compute-fbank-feats / compute-mfcc-feats) or float ([-1, 1], log energies "
        "lower by ln(32768^2))",
    )
    shard_flags(s)
    s.add_argument(
        "--skip-bad",
        action="store_true",
        help="log and skip unreadable audio (listed in bad_utts.RANK.json) instead of failing",
    )
    s.add_argument(
        "--opt", nargs="*", default=[], metavar="KEY=VALUE", help="Kaldi options, e.g. num_mel_bins=40 dither=1.0"
    )
    s.set_defaults(func=cmd_features)

    s = add_parser(sub, "demo", "the synthetic corpus and its data dirs (the recipe's stages 0-1)")
    s.add_argument("--workdir", default="exp/demo", help="where corpus/ and data/ go")
    s.add_argument("--preset", default="mini", choices=sorted(PRESETS), help=PRESET_HELP)
    s.add_argument("--seed", type=int, default=0, help="random seed")
    s.set_defaults(func=cmd_demo)
