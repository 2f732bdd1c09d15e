"""The ``speechssl`` command. Each subcommand has ``--help``."""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import List, Optional

log = logging.getLogger("speechssl")


def _parse_value(v: str):
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(v.lower(), v)


def _kv(pairs: List[str]) -> dict:
    out = {}
    for p in pairs:
        if "=" not in p:
            raise SystemExit(f"error: expected key=value, got {p!r}")
        k, v = p.split("=", 1)
        out[k] = _parse_value(v)
    return out


# ------------------------------------------------------------------------------ models
def _import_flags(p) -> None:
    p.add_argument("--drop-heads", action="store_true", help="import the encoder without task heads "
                   "(CTC projection, quantizer...); they are listed in the metadata")
    p.add_argument("--trust-pickle", action="store_true", help="allow arbitrary pickled objects in a "
                   ".pt checkpoint (only for files you trust)")


def _shard_flags(p) -> None:
    p.add_argument("--nshard", type=int, default=1, help="number of jobs the work is split into")
    p.add_argument("--rank", type=int, default=0, help="this job's shard, 0-based")
    p.add_argument("--job", type=int, default=None, help="this job's shard, 1-based as Kaldi's JOB=1:N "
                   "(instead of --rank)")


def _config_flags(p, example_conf: str, example_overrides: str) -> None:
    p.add_argument("--config", action="append", default=[], help="YAML (repeatable; later ones win), a path or a "
                   f"name under conf/ such as {example_conf}")
    p.add_argument("--print-config", action="store_true", help="print the merged config and exit")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help=f"e.g. {example_overrides}")


def _resolve_model(spec: str, drop_heads: bool, trust: bool):
    from .interop import import_checkpoint
    from .models import available_models, build_model

    if not Path(spec).exists() and spec in available_models():
        log.warning("%s: a registered config with random weights", spec)
        return build_model(spec).eval()
    return import_checkpoint(spec, drop_heads=drop_heads, trust=trust)


def cmd_convert(args) -> int:
    from .models import save_model

    model = _resolve_model(args.src, args.drop_heads, args.trust_pickle)
    meta = getattr(model, "metadata", {})
    save_model(model, args.out, metadata=meta)
    n = sum(p.numel() for p in model.parameters())
    print(f"{args.out}: {model.config.family} {model.config.encoder}, {model.num_layers} layers, "
          f"width {model.hidden_size}, {n / 1e6:.1f}M parameters")
    for key in ("dropped_heads", "ignored"):
        if meta.get(key):
            print(f"{key}: {', '.join(meta[key])}")
    return 0


def cmd_extract(args) -> int:
    from .extract import extract_features

    model = _resolve_model(args.model, args.drop_heads, args.trust_pickle)
    t0 = time.time()
    summary = extract_features(model, args.data, args.out, args.layers, args.format, args.nshard, args.rank,
                               args.batch_seconds, args.chunk_seconds, args.device, args.dtype, args.skip_bad,
                               model_name=args.model)
    summary["seconds"] = round(time.time() - t0, 1)
    print(json.dumps(summary, indent=1))
    return 0


# ------------------------------------------------------------------------------ corpus
def cmd_corpus_synth(args) -> int:
    from .audio.synth import synthesize_corpus

    summary = synthesize_corpus(args.out, args.preset, args.seed, args.nj)
    print(json.dumps(summary, indent=2))
    return 0


# ------------------------------------------------------------------------------ data
def cmd_data_prep(args) -> int:
    from .data.kaldi_dir import prepare_librispeech

    for subset in args.subsets.split(","):
        out = Path(args.out) / subset.replace("-", "_")
        d = prepare_librispeech(args.corpus_dir, subset, out)
        hours = sum(d.utt2dur.values()) / 3600
        print(f"{out}: {len(d)} utterances, {len(d.spk2utt)} speakers, {hours:.3f} h")
    return 0


def cmd_data_validate(args) -> int:
    from .data.kaldi_dir import DataDir

    problems = DataDir.read(args.dir).validate(check_audio=args.check_audio)
    for p in problems:
        print(p)
    errors = sum(p.severity == "error" for p in problems)
    print(f"{args.dir}: {errors} errors, {len(problems) - errors} warnings")
    return 1 if errors else 0


def cmd_data_fix(args) -> int:
    from .data.kaldi_dir import DataDir

    d = DataDir.read(args.dir)
    before = len(d)
    fixed, dropped = d.fix()
    out = args.out or args.dir
    if out == args.dir:  # keep the original, as fix_data_dir.sh does
        backup = Path(args.dir) / ".backup"
        backup.mkdir(exist_ok=True)
        for f in Path(args.dir).iterdir():
            if f.is_file():
                (backup / f.name).write_bytes(f.read_bytes())
    fixed.write(out)
    print(f"{out}: kept {len(fixed)} of {before} utterances")
    for reason, n in sorted(dropped.items()):
        print(f"  dropped {n}: {reason}")
    return 0


def cmd_data_utt2dur(args) -> int:
    from .data.kaldi_dir import DataDir

    d = DataDir.read(args.dir)
    d.compute_utt2dur(progress=True)
    d.write(args.dir)
    print(f"{args.dir}/utt2dur: {len(d)} utterances, {sum(d.utt2dur.values()) / 3600:.3f} h")
    return 0


# ------------------------------------------------------------------------------ features
def cmd_features(args) -> int:
    from .audio.compute import compute_features, merge_shards

    opts = _kv(args.opt)
    scp = compute_features(args.data, args.out, kind=args.type, deltas=args.deltas,
                           cmvn=args.cmvn, nshard=args.nshard, rank=args.rank,
                           skip_bad=args.skip_bad, **opts)
    print(f"wrote {scp}")
    if all((Path(args.out) / f"feats.{r}.scp").exists() for r in range(args.nshard)):
        print(f"all shards done: {merge_shards(args.out, args.nshard)}")
    return 0


# ------------------------------------------------------------------------------ k-means
def cmd_kmeans_learn(args) -> int:
    from .clustering import FeatureSource, learn_kmeans

    src = FeatureSource.open(args.feats)
    model = learn_kmeans(src, args.k, args.out, args.fraction, args.max_frames, args.niter,
                         args.restarts, args.seed, args.init, threads=args.threads)
    s = model.spec
    print(f"{args.out}: k={s['k']} on {s['frames_used']} of {s['frames_total']} frames "
          f"(dim {s['dim']}, sample {s['sample_mib']} MiB), inertia/frame {s['inertia_per_frame']:.4f} "
          f"(restarts {s['inertia_per_restart']}), {s['seconds']}")
    return 0


def cmd_kmeans_assign(args) -> int:
    from .clustering import FeatureSource, KMeansModel, assign_labels

    model = KMeansModel.load(args.model)
    summary = assign_labels(model, FeatureSource.open(args.feats), args.out, args.nshard, args.rank,
                            threads=args.threads)
    print(json.dumps(summary))
    return 0


def cmd_kmeans_eval(args) -> int:
    from .clustering import KMeansModel, evaluate_labels, read_labels

    labels_path = Path(args.labels)
    spec_dir = labels_path if labels_path.is_dir() else labels_path.parent
    spec = KMeansModel.load(args.model).spec if args.model else json.loads((spec_dir / "kmeans.json").read_text())
    rate = args.frame_rate or spec["source"]["frame_rate"]
    result = evaluate_labels(read_labels(labels_path), args.data, rate, spec["k"])
    result = {"labels": str(labels_path), "k": spec["k"], "frame_rate": rate, **result}
    out = Path(args.out) if args.out else spec_dir / "quality.json"
    out.write_text(json.dumps(result, indent=1))
    print(f"PNMI {result['pnmi']:.4f}  phone purity {result['phone_purity']:.4f}  cluster purity "
          f"{result['cluster_purity']:.4f}  ({result['clusters_used']}/{spec['k']} clusters used, "
          f"{result['frames']} frames) -> {out}")
    return 0


# ------------------------------------------------------------------------------ pretraining
def cmd_pretrain(args) -> int:
    from .config import load_config

    if args.objective == "hubert":
        from .tasks.hubert import HubertPretrainConfig as schema, pretrain_hubert as run
    elif args.objective == "w2v-bert":
        from .tasks.w2v_bert import W2vBertPretrainConfig as schema, pretrain_w2v_bert as run
    else:
        raise ValueError(f"unknown objective {args.objective}")
    cfg = load_config(schema, args.config, args.overrides)
    if args.print_config:
        from .config import to_yaml
        print(to_yaml(cfg))
    if args.dry_run:
        print(json.dumps(_describe_pretraining(args.objective, cfg), indent=1))
    if args.print_config or args.dry_run:
        return 0
    summary = run(cfg)
    print(json.dumps(summary, indent=1))
    return 0


def _describe_pretraining(objective: str, cfg) -> dict:
    """What a config builds, without data or weights: parameter counts (meta device)."""
    import torch

    if objective == "w2v-bert":
        from .tasks.w2v_bert import describe
        sizes = describe(cfg)
    else:
        from .models import build_model
        with torch.device("meta"):
            encoder = build_model(cfg.model, **cfg.model_overrides)
        sizes = {"encoder": sum(p.numel() for p in encoder.parameters())}
    sizes["encoder_human"] = f"{sizes['encoder'] / 1e9:.3f}B" if sizes["encoder"] >= 1e8 else f"{sizes['encoder'] / 1e6:.2f}M"
    return {"objective": objective, "model": cfg.model, "parameters": sizes}


# ------------------------------------------------------------------------------ LightHuBERT
def cmd_distill(args) -> int:
    from .config import load_config, to_yaml
    from .tasks.lighthubert import LightHubertDistillConfig, describe, distill_lighthubert

    cfg = load_config(LightHubertDistillConfig, args.config, args.overrides)
    cfg.validate()
    if args.print_config:
        print(to_yaml(cfg))
    if args.dry_run:
        print(json.dumps({"objective": "lighthubert", "stage": cfg.objective.stage, "model": cfg.model,
                          "space": cfg.space, "parameters": describe(cfg)}, indent=1))
    if args.print_config or args.dry_run:
        return 0
    print(json.dumps(distill_lighthubert(cfg), indent=1))
    return 0


def cmd_lighthubert_dump(args) -> int:
    from .tasks.lighthubert import dump_targets

    summary = dump_targets(args.teacher, args.target_layers, args.data, args.out, norm=args.target_norm,
                           nshard=args.nshard,
                           rank=args.rank, batch_seconds=args.batch_seconds, device=args.device)
    print(json.dumps(summary, indent=1))
    return 0


def cmd_lighthubert_search(args) -> int:
    from .tasks.subnet_search import SearchConfig, run_search

    cfg = SearchConfig(random=args.random, population=args.population, generations=args.generations,
                       parents=args.parents, seed=args.seed,
                       batch_seconds=args.batch_seconds)
    summary = run_search(args.supernet, args.data, args.out, cfg, args.teacher, args.target_layers, args.targets,
                         progress=not args.no_progress, budget=args.max_params)
    best = summary["best"]
    print(f"{summary['scored']} subnets scored (of {summary['num_subnets']:,}); Pareto front: "
          f"{len(summary['pareto'])}; -> {args.out}/search.tsv, pareto.png")
    if best:
        print(f"best within budget: {best['name']}  {best['params'] / 1e6:.2f}M parameters  "
              f"dev loss {best['dev_loss']:.4f}  -> {args.out}/best.json")
    return 0


def cmd_lighthubert_export(args) -> int:
    from .models import save_model
    from .models.lighthubert import load_supernet, subnets_from_spec

    supernet = load_supernet(args.supernet)
    (subnet,) = subnets_from_spec(args.subnet, supernet)[:1]
    model = supernet.export(subnet)
    n = sum(p.numel() for p in model.parameters())
    meta = {**getattr(supernet, "metadata", {}), "lighthubert_supernet": False, "subnet": subnet.to_dict(),
            "subnet_name": subnet.name(), "supernet": str(args.supernet), "parameters": n}
    save_model(model, args.out, metadata=meta)
    print(f"{args.out}: subnet {subnet.name()}, {subnet.depth} layers, width {subnet.embed_dim}, "
          f"{n / 1e6:.2f}M parameters")
    return 0


def cmd_lighthubert_import(args) -> int:
    from .interop.lighthubert import import_lighthubert

    supernet = import_lighthubert(args.checkpoint, trust=args.trust_pickle)
    supernet.save(args.out, metadata=supernet.metadata)
    print(f"{args.out}: LightHuBERT {supernet.metadata['space']} supernet "
          f"({supernet.space.num_subnets():,} subnets); served subnet {supernet.subnet.name()} "
          f"({supernet.subnet_parameters() / 1e6:.2f}M parameters)")
    return 0


# ------------------------------------------------------------------------------ fine-tuning and decoding
def cmd_finetune(args) -> int:
    from .config import load_config, to_yaml
    from .tasks.asr import AsrFinetuneConfig, finetune_asr

    cfg = load_config(AsrFinetuneConfig, args.config, args.overrides)
    cfg.validate()
    if args.print_config:
        print(to_yaml(cfg))
        return 0
    print(json.dumps(finetune_asr(cfg), indent=1))
    return 0


def cmd_decode(args) -> int:
    from .tasks.asr import decode_asr

    result = decode_asr(args.model, args.data, args.out, args.beam, args.lm, args.lm_weight, args.word_score,
                        args.batch_seconds, args.device)
    print("\n".join(result["lines"]))
    return 0


def cmd_lm_ngram(args) -> int:
    from .data.kaldi_dir import DataDir
    from .downstream.ngram import train_arpa

    texts = []
    for t in args.text:
        p = Path(t)
        table = DataDir.read(p).text if p.is_dir() else dict(l.split(maxsplit=1) for l in p.read_text().splitlines()
                                                               if len(l.split(maxsplit=1)) == 2)
        if not table:
            raise ValueError(f"{t}: no transcripts")
        texts += list(table.values())
    counts = train_arpa(texts, args.out, args.order, args.discount)
    print(f"{args.out}: {len(texts)} sentences, " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    return 0


# ------------------------------------------------------------------------------ SUPERB
def cmd_prep_superb(args) -> int:
    from .data import superb_prep as prep

    out = Path(args.out)
    if args.layout == "mini":
        tasks = ["pr", "asr", "ks", "ic", "sid", "asv"] if args.task == "all" else [args.task]
        summary = prep.prepare_mini(args.src, out, tasks)
    elif args.task == "all":
        raise ValueError(f"--task all works with --layout mini; layout {args.layout} prepares one task")
    else:
        expected = {"librispeech": ("pr", "asr"), "speech_commands": ("ks",), "fluent": ("ic",),
                    "voxceleb1": ("sid", "asv")}[args.layout]
        if args.task not in expected:
            raise ValueError(f"layout {args.layout} prepares {' or '.join(expected)}, not {args.task}")
        if args.layout == "librispeech":
            splits = dict(kv.split("=", 1) for kv in args.src.split(",")) if "=" in args.src else \
                {s: str(Path(args.src) / s) for s in ("train", "dev", "test")}
            summary = prep.prepare_librispeech_task(args.task, splits, out, args.lexicon, args.skip_oov)
        elif args.layout == "speech_commands":
            summary = prep.prepare_speech_commands(args.src, out, args.test_src)
        elif args.layout == "fluent":
            summary = prep.prepare_fluent_speech_commands(args.src, out)
        elif args.task == "sid":
            summary = prep.prepare_voxceleb1_sid(args.src, out)
        else:
            summary = prep.prepare_voxceleb1_asv(args.src, out)
    print(json.dumps(summary, indent=1))
    return 0


def _named_upstreams(specs: List[str]) -> List[tuple]:
    out = []
    for s in specs:
        name, _, path = s.partition("=") if "=" in s and not Path(s).exists() else ("", "", s)
        out.append((name or None, path))
    return out


def cmd_superb(args) -> int:
    from .config import load_config
    from .tasks.superb import TASKS, SuperbConfig, SuperbRunner, summarize

    if args.summarize_only:
        print(summarize(args.out)["markdown"])
        return 0
    tasks = list(TASKS) if args.task == "all" else [args.task]
    if not args.upstream:
        raise ValueError("--upstream is required (fbank, an exported folder, ...; NAME=PATH names it)")
    for name, spec in _named_upstreams(args.upstream):
        for t in tasks:
            data = args.data if args.data and len(tasks) == 1 else str(Path(args.tasks_dir) / t)
            fixed = [f"task={t}", f"data={data}", f"upstream={spec}", f"out_dir={args.out}",
                     f"cache_dir={args.cache or str(Path(args.out) / 'cache')}"] + ([f"name={name}"] if name else [])
            cfg = load_config(SuperbConfig, [f"superb/{t}"] + list(args.config), fixed + list(args.overrides))
            r = SuperbRunner(cfg).run()
            print(f"{r['upstream']:<20} {t:<4} {r['metric']:<9} test {r['value']:7.2f}"
                  + (f"  dev {r['dev']:7.2f}" if r.get("dev") is not None else "")
                  + f"  ({r['seconds']['total']:.0f} s)")
    if args.task == "all" or len(args.upstream) > 1:
        print(summarize(args.out)["markdown"])
    return 0


# ------------------------------------------------------------------------------ WavThruVec
def cmd_tts_train(args) -> int:
    from .config import load_config, to_yaml

    if args.sub == "train-vocoder":
        from .tasks.vec2wav import Vec2WavTrainConfig as schema, train_vocoder as run
    else:
        from .tasks.text2vec import Text2VecTrainConfig as schema, train_acoustic as run
    cfg = load_config(schema, args.config, args.overrides)
    if args.print_config:
        print(to_yaml(cfg))
        return 0
    print(json.dumps(run(cfg), indent=1))
    return 0


def cmd_synthesize(args) -> int:
    from .tasks.wavthruvec import WavThruVec, save_wav
    from .audio.io import load

    tts = WavThruVec(args.vocoder, args.acoustic)
    wav, phones, _ = tts.synthesize(args.text, load(args.speaker_ref), args.length_scale)
    out = save_wav(args.out, wav)
    print(f"{' '.join(phones)}\n{out}: {len(wav) / 16000:.2f} s")
    return 0


def cmd_voice_convert(args) -> int:
    from .tasks.wavthruvec import WavThruVec, save_wav
    from .audio.io import load

    wav = WavThruVec(args.vocoder).voice_convert(load(args.source), load(args.target_ref))
    print(f"{save_wav(args.out, wav)}: {len(wav) / 16000:.2f} s")
    return 0


def _asr_decode(args) -> dict:
    """The ASR's decoding options of ``tts eval`` / ``tts curve``: greedy, or beam search with an n-gram LM."""
    if args.asr_lm and not args.asr_beam:
        raise ValueError("--asr-lm needs --asr-beam N (the LM is used by beam search only)")
    return {"beam": args.asr_beam, "lm": args.asr_lm, "lm_weight": args.asr_lm_weight} if args.asr_beam else {}


def cmd_tts_eval(args) -> int:
    from .tasks.tts_eval import evaluate

    res = evaluate(args.vocoder, args.data, args.out, args.acoustic, args.asr, args.ref_data, args.max_utts,
                   asr_decode=_asr_decode(args))
    print(json.dumps(res, indent=1))
    return 0


def cmd_tts_curve(args) -> int:
    from .tasks.tts_eval import resynthesis_curve

    res = resynthesis_curve(args.snapshots, args.data, args.out, args.asr, args.max_utts, _asr_decode(args))
    print(json.dumps(res, indent=1))
    return 0


# ------------------------------------------------------------------------------ active speaker detection
def cmd_asd_prepare(args) -> int:
    from .data.asd_synth import AsdSynthConfig, synthesize_asd_set

    if args.videos:
        from .data.asd_video import crops_from_videos
        if not args.csv:
            raise ValueError("asd prepare --videos needs --csv (the split's AVA / UniTalk CSV with the boxes)")
        print(json.dumps(crops_from_videos(args.csv, args.videos, args.out, args.split, video_ext=args.video_ext),
                         indent=1))
        return 0
    if not args.synthetic:
        raise ValueError("asd prepare: pass --synthetic (the set made from the corpus) or --videos DIR --csv FILE "
                         "(raw videos to crops); a UniTalk / AVA copy already in the crop layout is read as it is")
    splits = {"train": "train", "val": "dev", "test": "test"}
    cfgs = {s: AsdSynthConfig(clips=n, seed=args.seed + i) for i, (s, n) in
            enumerate(zip(splits, (args.clips, max(1, args.clips // 5), max(1, args.clips // 5))))}
    summary = synthesize_asd_set({s: str(Path(args.data) / d) for s, d in splits.items()}, args.out, cfgs)
    print(json.dumps(summary, indent=1))
    return 0


def cmd_asd_train(args) -> int:
    from .config import load_config, to_yaml
    from .tasks.asd import AsdTrainConfig, train_asd

    cfg = load_config(AsdTrainConfig, args.config, args.overrides)
    if args.print_config:
        print(to_yaml(cfg))
        return 0
    print(json.dumps(train_asd(cfg), indent=1))
    return 0


def cmd_asd_eval(args) -> int:
    from .tasks.asd import evaluate_asd, score_split, write_predictions

    if args.sub == "predict":
        print(write_predictions(score_split(args.model, args.root, args.split), args.out))
        return 0
    print(json.dumps(evaluate_asd(args.model, args.root, args.split, args.out), indent=1))
    return 0


# ------------------------------------------------------------------------------ config check
def cmd_config_check(args) -> int:
    from .config import CONF_DIR
    from .config_check import check_conf_tree, format_report

    conf = Path(args.conf_dir) if args.conf_dir else CONF_DIR
    results = check_conf_tree(conf)
    print(format_report(results, conf))
    return 0 if all(r.error is None for r in results) else 1


# ------------------------------------------------------------------------------ recipe results
def cmd_results(args) -> int:
    from .report import write_report

    exp = Path(args.exp)
    if not exp.is_dir():
        raise FileNotFoundError(f"{exp}: no such experiment directory (run the recipe's stages first)")
    res = write_report(exp, args.corpus)
    found = [k for k in ("pnmi", "superb", "asr", "lighthubert") if res[k]]
    print(f"results ({', '.join(found) or 'nothing yet'}) -> {exp / 'RESULTS.md'} and {exp / 'results.json'}")
    return 0


# ------------------------------------------------------------------------------ demo
def cmd_demo(args) -> int:
    from .audio.synth import synthesize_corpus
    from .data.kaldi_dir import prepare_librispeech

    work = Path(args.workdir)
    t0 = time.time()
    print(f"== 1/2 synthesizing the {args.preset} corpus into {work / 'corpus'}")
    summary = synthesize_corpus(work / "corpus", args.preset, args.seed)
    print(f"== 2/2 preparing Kaldi data dirs in {work / 'data'}")
    rows = []
    for split in ("train", "dev", "test", "test-unseen-speakers"):
        d = prepare_librispeech(work / "corpus", split, work / "data" / split.replace("-", "_"))
        problems = [p for p in d.validate() if p.severity == "error"]
        if problems:
            raise SystemExit(f"data dir {split} failed validation: {problems[0]}")
        kinds = d.extra.get("utt2kind", {})
        rows.append((split, len(d), len({d.extra['utt2reader'][u] for u in d.utt_ids}),
                     sum(d.utt2dur.values()) / 60, sum(k == "command" for k in kinds.values()),
                     sum(k == "keyword" for k in kinds.values())))
    print()
    print(f"{'split':<22}{'utts':>6}{'spk':>5}{'minutes':>9}{'cmds':>6}{'kws':>5}")
    for r in rows:
        print(f"{r[0]:<22}{r[1]:>6}{r[2]:>5}{r[3]:>9.1f}{r[4]:>6}{r[5]:>5}")
    print(f"\ncorpus: {summary['utterances']} utterances, {summary['speakers']} speakers, "
          f"{summary['seconds'] / 60:.1f} min, vocabulary {summary['vocabulary']} words; "
          f"made at {summary['audio_seconds_per_second']}x real time")
    print(f"data dirs: {work / 'data'}  (done in {time.time() - t0:.0f} s)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="speechssl", description="Self-supervised speech "
                                "representation learning toolkit.")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    corpus = sub.add_parser("corpus", help="synthetic corpora").add_subparsers(
        dest="sub", required=True, metavar="SUBCOMMAND")
    s = corpus.add_parser("synth", help="synthesize the espeak-ng mini corpus (LibriSpeech "
                          "layout with phone alignments, speakers and task labels)")
    s.add_argument("--out", required=True, help="corpus root to create")
    s.add_argument("--preset", default="mini", choices=["tiny", "mini"])
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--nj", type=int, default=None, help="worker processes (default: all cores)")
    s.set_defaults(func=cmd_corpus_synth)

    data = sub.add_parser("data", help="Kaldi data directories").add_subparsers(
        dest="sub", required=True, metavar="SUBCOMMAND")
    s = data.add_parser("prep-librispeech", help="LibriSpeech-layout corpus -> data dirs "
                        "(speaker = reader-chapter)")
    s.add_argument("--corpus-dir", required=True)
    s.add_argument("--subsets", required=True, help="comma-separated, e.g. train-clean-100,"
                   "dev-clean (or train,dev,test for the mini corpus)")
    s.add_argument("--out", required=True, help="parent of the data dirs (one per subset)")
    s.set_defaults(func=cmd_data_prep)
    s = data.add_parser("validate", help="report every problem with file and line; exit 1 on "
                        "errors")
    s.add_argument("dir")
    s.add_argument("--check-audio", action="store_true", help="also open every audio header")
    s.set_defaults(func=cmd_data_validate)
    s = data.add_parser("fix", help="keep only consistent utterances, sorted; says what it "
                        "dropped (originals kept in DIR/.backup)")
    s.add_argument("dir")
    s.add_argument("--out", help="write here instead of in place")
    s.set_defaults(func=cmd_data_fix)
    s = data.add_parser("prep-superb", help="SUPERB task dirs (train/dev/test) from a dataset's own layout "
                        "or the mini corpus")
    s.add_argument("--task", default="all", choices=["pr", "asr", "ks", "ic", "sid", "asv", "all"])
    s.add_argument("--layout", required=True, choices=["mini", "librispeech", "speech_commands", "fluent",
                                                       "voxceleb1"])
    s.add_argument("--src", required=True, help="mini: the data dirs' parent; librispeech: "
                   "train=DIR,dev=DIR,test=DIR data dirs (or their parent); others: the dataset root")
    s.add_argument("--test-src", help="speech_commands: the separate v0.01 test set")
    s.add_argument("--lexicon", help="librispeech PR: pronunciation lexicon (WORD PH1 PH2 ...)")
    s.add_argument("--skip-oov", action="store_true", help="PR: leave out utterances with words not in the lexicon")
    s.add_argument("--out", required=True, help="task dir (mini: parent of one dir per task)")
    s.set_defaults(func=cmd_prep_superb)
    s = data.add_parser("utt2dur", help="write utt2dur from audio headers")
    s.add_argument("dir")
    s.set_defaults(func=cmd_data_utt2dur)

    s = sub.add_parser("features", help="Kaldi-compatible fbank/MFCC of a data dir to ark/scp")
    s.add_argument("--data", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--type", default="mfcc", choices=["fbank", "mfcc"])
    s.add_argument("--deltas", action="store_true", help="append delta and delta-delta "
                   "(MFCC 39-dim as HuBERT iteration 1)")
    s.add_argument("--cmvn", default="none", choices=["none", "utt", "spk"])
    _shard_flags(s)
    s.add_argument("--skip-bad", action="store_true", help="log and skip unreadable audio "
                   "(listed in bad_utts.RANK.json) instead of failing")
    s.add_argument("--opt", nargs="*", default=[], metavar="KEY=VALUE",
                   help="Kaldi options, e.g. num_mel_bins=40 dither=1.0")
    s.set_defaults(func=cmd_features)

    s = sub.add_parser("convert", help="import a Hugging Face folder / fairseq .pt into our folder format")
    s.add_argument("src", help="transformers folder (config.json + weights), fairseq .pt, or our folder")
    s.add_argument("out", help="folder to write config.yaml + model.safetensors into")
    _import_flags(s)
    s.set_defaults(func=cmd_convert)

    s = sub.add_parser("extract", help="layer features of a model over a data dir, to ark/scp or .npy")
    s.add_argument("--model", required=True, help="our exported folder, a transformers folder, a fairseq "
                   ".pt, or a registered name (random weights, for testing)")
    s.add_argument("--data", required=True, help="Kaldi data dir")
    s.add_argument("--layers", default="all", help="comma-separated hidden-state indices (0 = encoder "
                   "input) or 'all'")
    s.add_argument("--out", required=True)
    s.add_argument("--format", default="ark", choices=["ark", "npy"])
    s.add_argument("--dtype", default="float32", choices=["float32", "float16"], help="float16: npy only")
    _shard_flags(s)
    s.add_argument("--batch-seconds", type=float, default=40.0, help="padded audio seconds per batch")
    s.add_argument("--chunk-seconds", type=float, default=1800.0, help="audio seconds per committed chunk")
    s.add_argument("--device", default="cpu")
    s.add_argument("--skip-bad", action="store_true", help="log and skip unreadable audio")
    _import_flags(s)
    s.set_defaults(func=cmd_extract)

    km = sub.add_parser("kmeans", help="k-means targets for HuBERT (faiss)").add_subparsers(
        dest="sub", required=True, metavar="SUBCOMMAND")
    feats_help = ("features: an scp, a `speechssl features` folder, or a `speechssl extract` folder "
                  "with its layer as PATH:LAYER")
    s = km.add_parser("learn", help="learn centroids on a sample of frames")
    s.add_argument("--feats", required=True, help=feats_help)
    s.add_argument("-k", "--k", type=int, required=True, help="number of clusters")
    s.add_argument("--out", required=True, help="folder for centroids.npy + kmeans.json")
    s.add_argument("--fraction", type=float, default=1.0, help="share of frames to sample")
    s.add_argument("--max-frames", type=int, default=1_000_000, help="memory bound: at most this many "
                   "frames are kept (dim x 4 bytes each)")
    s.add_argument("--niter", type=int, default=100)
    s.add_argument("--restarts", type=int, default=3, help="k-means runs from different seeds; the "
                   "lowest inertia wins")
    s.add_argument("--init", default="kmeans++", choices=["kmeans++", "random"])
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--threads", type=int, default=None)
    s.set_defaults(func=cmd_kmeans_learn)
    s = km.add_parser("assign", help="label every utterance (sharded): OUT/labels.RANK.txt, "
                      "merged into OUT/labels.txt")
    s.add_argument("--model", required=True, help="folder written by `kmeans learn`")
    s.add_argument("--feats", required=True, help=feats_help)
    s.add_argument("--out", required=True)
    _shard_flags(s)
    s.add_argument("--threads", type=int, default=None)
    s.set_defaults(func=cmd_kmeans_assign)
    s = km.add_parser("eval", help="PNMI, phone purity, cluster purity against a data dir's "
                      "alignments.ctm")
    s.add_argument("--labels", required=True, help="labels.txt or the folder holding it")
    s.add_argument("--data", required=True, help="data dir with alignments.ctm")
    s.add_argument("--model", help="k-means folder (default: the kmeans.json next to the labels)")
    s.add_argument("--frame-rate", type=float, help="label rate in Hz (default: from kmeans.json)")
    s.add_argument("--out", help="JSON result (default: quality.json next to the labels)")
    s.set_defaults(func=cmd_kmeans_eval)

    s = sub.add_parser("pretrain", help="self-supervised pretraining (Lightning; resumes from "
                       "OUT/checkpoints/last.ckpt; exports OUT/final)")
    s.add_argument("objective", choices=["hubert", "w2v-bert"])
    _config_flags(s, "pretrain/hubert_mini or pretrain/w2v_bert_mini",
                  "optim.lr=1e-3 trainer.devices=2")
    s.add_argument("--dry-run", action="store_true", help="check the config and print the parameter counts it "
                   "builds (no data, no training)")
    s.set_defaults(func=cmd_pretrain)

    s = sub.add_parser("distill", help="distillation from a teacher (Lightning; resumes from "
                       "OUT/checkpoints/last.ckpt; exports OUT/final)")
    s.add_argument("method", choices=["lighthubert"])
    _config_flags(s, "distill/lighthubert_mini_stage1", "objective.stage=2 init_from=exp/lighthubert/stage1/final")
    s.add_argument("--dry-run", action="store_true", help="check the config and print the subnet sizes it builds")
    s.set_defaults(func=cmd_distill)

    lh = sub.add_parser("lighthubert", help="LightHuBERT supernets: targets, search, export, import").add_subparsers(
        dest="sub", required=True, metavar="SUBCOMMAND")
    s = lh.add_parser("dump-targets", help="teacher targets (mean of the last K layers) of a data dir, to ark/scp "
                      "(resumable, sharded); distillation reads them with data.train_targets")
    s.add_argument("--teacher", required=True)
    s.add_argument("--target-layers", type=int, default=8)
    s.add_argument("--target-norm", default="none", choices=["none", "layer_norm"])
    s.add_argument("--data", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--batch-seconds", type=float, default=40.0)
    s.add_argument("--device", default="cpu")
    _shard_flags(s)
    s.set_defaults(func=cmd_lighthubert_dump)
    s = lh.add_parser("search", help="score subnets by dev distillation loss under a parameter budget "
                      "(random + evolutionary); writes search.tsv/json, best.json, pareto.png")
    s.add_argument("--supernet", required=True, help="a supernet folder (distill's OUT/final)")
    s.add_argument("--data", required=True, help="dev data dir")
    s.add_argument("--out", required=True)
    s.add_argument("--max-params", help="parameter budget, e.g. 5e6, or 'default': the default subnet's size")
    s.add_argument("--random", type=int, default=50)
    s.add_argument("--population", type=int, default=16, help="evolutionary population (0: random search only)")
    s.add_argument("--generations", type=int, default=4)
    s.add_argument("--parents", type=int, default=4)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--teacher", help="default: the teacher the supernet was distilled from")
    s.add_argument("--target-layers", type=int, help="default: as in distillation")
    s.add_argument("--targets", help="dumped dev targets instead of running the teacher")
    s.add_argument("--batch-seconds", type=float, default=60.0)
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(func=cmd_lighthubert_search)
    s = lh.add_parser("export", help="a subnet as a standalone plain model folder (an upstream like any other)")
    s.add_argument("--supernet", required=True)
    s.add_argument("--subnet", required=True, help="max | min | default | JSON | a file such as search's best.json")
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_lighthubert_export)
    s = lh.add_parser("import", help="an official LightHuBERT checkpoint (.pt) as a supernet folder")
    s.add_argument("checkpoint")
    s.add_argument("out")
    s.add_argument("--trust-pickle", action="store_true", help="allow arbitrary pickled objects (trusted files)")
    s.set_defaults(func=cmd_lighthubert_import)

    s = sub.add_parser("finetune", help="supervised fine-tuning of a pretrained encoder (Lightning; resumes)")
    s.add_argument("task", choices=["asr"])
    _config_flags(s, "finetune/asr_mini", "model.upstream=exp/hubert_it2/final")
    s.set_defaults(func=cmd_finetune)

    s = sub.add_parser("decode", help="CTC decoding (greedy or beam search with an optional n-gram LM) and "
                       "Kaldi-style scoring (WER/CER or PER)")
    s.add_argument("--model", required=True, help="folder written by `speechssl finetune asr` (OUT/final)")
    s.add_argument("--data", required=True, help="data dir with references (text, or text.phone)")
    s.add_argument("--out", required=True, help="decode dir: hyp.txt, ref.txt, per_utt, wer, results.json")
    s.add_argument("--beam", type=int, default=0, help="beam width (0 = greedy)")
    s.add_argument("--lm", help="word n-gram LM (ARPA or KenLM binary) for beam search")
    s.add_argument("--lm-weight", type=float, default=0.5)
    s.add_argument("--word-score", type=float, default=1.0, help="bonus per word with an LM")
    s.add_argument("--batch-seconds", type=float, default=60.0)
    s.add_argument("--device", default="cpu")
    s.set_defaults(func=cmd_decode)

    lm = sub.add_parser("lm", help="language models for decoding").add_subparsers(dest="sub", required=True,
                                                                                  metavar="SUBCOMMAND")
    s = lm.add_parser("ngram", help="word n-gram ARPA (interpolated absolute discounting) from transcripts")
    s.add_argument("--text", nargs="+", required=True, help="data dirs or Kaldi text files")
    s.add_argument("--order", type=int, default=3)
    s.add_argument("--discount", type=float, default=0.5)
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_lm_ngram)

    s = sub.add_parser("superb", help="SUPERB tasks on a frozen upstream (weighted sum of layers + task head)")
    s.add_argument("--task", default="all", choices=["pr", "asr", "ks", "ic", "sid", "asv", "all"])
    s.add_argument("--upstream", action="append", default=[], help="[NAME=]SPEC: fbank, an exported folder, HF "
                   "folder or fairseq .pt (repeatable)")
    s.add_argument("--tasks-dir", default="superb", help="parent of the prepared task dirs (<dir>/<task>)")
    s.add_argument("--data", help="the prepared task dir of a single --task (default: TASKS_DIR/TASK)")
    s.add_argument("--out", default="exp/superb", help="results: OUT/<upstream>/<task>/, OUT/results.{md,json}")
    s.add_argument("--cache", help="feature cache (default: OUT/cache)")
    s.add_argument("--config", action="append", default=[], help="YAML overriding conf/superb/<task>.yaml")
    s.add_argument("--summarize-only", action="store_true", help="only rebuild OUT/results.{md,json}")
    s.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="e.g. max_steps=500 head.hidden=256")
    s.set_defaults(func=cmd_superb)

    tts = sub.add_parser("tts", help="WavThruVec: text -> SSL features -> waveform").add_subparsers(
        dest="sub", required=True, metavar="SUBCOMMAND")
    s = tts.add_parser("train-vocoder", help="vec2wav: HiFi-GAN from an upstream layer to 16 kHz audio, "
                       "speaker-conditioned (untranscribed audio; Lightning, resumes)")
    _config_flags(s, "tts/vec2wav_tiny", "upstream=exp/hubert_it2/final data.train=data/train")
    s.set_defaults(func=cmd_tts_train)
    s = tts.add_parser("train-acoustic", help="text2vec: phones -> the vocoder's features, durations from "
                       "alignments or monotonic alignment search (Lightning, resumes)")
    _config_flags(s, "tts/text2vec_tiny", "upstream=exp/hubert_it2/final data.train=data/train")
    s.set_defaults(func=cmd_tts_train)
    s = tts.add_parser("eval", help="resynthesis MCD / STOI / WER, TTS WER and speaker similarity, voice "
                       "conversion similarity; spectrogram plots (OUT/tts_eval.json)")
    s.add_argument("--vocoder", default="exp/vec2wav/final")
    s.add_argument("--acoustic", default=None, help="text2vec export (TTS measured when given)")
    s.add_argument("--asr", default=None, help="fine-tuned CTC model folder (WER measured when given)")
    s.add_argument("--data", required=True, help="test data dir (audio + text)")
    s.add_argument("--ref-data", default=None, help="data dir of reference voices (default: --data)")
    s.add_argument("--asr-beam", type=int, default=0, help="the ASR's beam (0: greedy)")
    s.add_argument("--asr-lm", default=None, help="ARPA / KenLM n-gram for the ASR's beam search")
    s.add_argument("--asr-lm-weight", type=float, default=0.5)
    s.add_argument("--max-utts", type=int, default=32)
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_tts_eval)
    s = tts.add_parser("curve", help="resynthesis WER / MCD / STOI of every vocoder snapshot against training "
                       "steps, the ASR's WER on the original audio as the floor (OUT/curve.{json,png})")
    s.add_argument("--snapshots", default="exp/tts/vec2wav/snapshots")
    s.add_argument("--asr", default=None)
    s.add_argument("--data", required=True)
    s.add_argument("--asr-beam", type=int, default=0, help="the ASR's beam (0: greedy)")
    s.add_argument("--asr-lm", default=None, help="ARPA / KenLM n-gram for the ASR's beam search")
    s.add_argument("--asr-lm-weight", type=float, default=0.5)
    s.add_argument("--max-utts", type=int, default=16)
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_tts_curve)
    s = sub.add_parser("synthesize", help="text to speech in the voice of a reference recording")
    s.add_argument("--text", required=True)
    s.add_argument("--speaker-ref", required=True, help="a recording of the voice to use (any speaker)")
    s.add_argument("--out", required=True, help="output .wav (16 kHz)")
    s.add_argument("--acoustic", default="exp/text2vec/final", help="exported text2vec folder")
    s.add_argument("--vocoder", default="exp/vec2wav/final", help="exported vec2wav folder")
    s.add_argument("--length-scale", type=float, default=1.0, help="> 1 speaks slower")
    s.set_defaults(func=cmd_synthesize)
    s = sub.add_parser("voice-convert", help="the source's words in the target's voice (vec2wav with the "
                       "target reference's speaker embedding)")
    s.add_argument("--source", required=True)
    s.add_argument("--target-ref", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--vocoder", default="exp/vec2wav/final")
    s.set_defaults(func=cmd_voice_convert)

    asd = sub.add_parser("asd", help="active speaker detection (AVA / UniTalk layout)").add_subparsers(
        dest="sub", required=True, metavar="SUBCOMMAND")
    s = asd.add_parser("prepare", help="the synthetic audio-visual set from the mini corpus's data dirs")
    s.add_argument("--synthetic", action="store_true")
    s.add_argument("--videos", default=None, help="folder of raw videos <video_id><ext> to crop faces from")
    s.add_argument("--csv", default=None, help="with --videos: the split's CSV (boxes, labels)")
    s.add_argument("--split", default="train", help="with --videos: the split the crops go to")
    s.add_argument("--video-ext", default=".mp4")
    s.add_argument("--data", default="data", help="folder with the train, dev and test data dirs")
    s.add_argument("--clips", type=int, default=200, help="training clips (val and test get a fifth each)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", default="asd")
    s.set_defaults(func=cmd_asd_prepare)
    s = asd.add_parser("train", help="visual front end + MFCC or SSL audio, fusion, BiGRU (Lightning, resumes)")
    _config_flags(s, "asd/ssl_tiny", "upstream=exp/hubert_it2/final data.root=asd")
    s.set_defaults(func=cmd_asd_train)
    for name, help_ in (("eval", "AP over all face-frames (official AVA computation), overall and per subset"),
                        ("predict", "the official prediction CSV with scores")):
        s = asd.add_parser(name, help=help_)
        s.add_argument("--model", required=True)
        s.add_argument("--root", default="asd")
        s.add_argument("--split", default="test")
        s.add_argument("--out", required=True, help="eval: a folder; predict: the CSV")
        s.set_defaults(func=cmd_asd_eval)

    cf = sub.add_parser("config", help="configs").add_subparsers(dest="sub", required=True, metavar="SUBCOMMAND")
    s = cf.add_parser("check", help="dry run: every YAML under conf/ loads into its schema and validates "
                      "(layered files on their '# base:' files)")
    s.add_argument("--conf-dir", default=None, help="default: the repository's conf/")
    s.set_defaults(func=cmd_config_check)

    s = sub.add_parser("results", help="the recipe's summary: exp/RESULTS.md + exp/results.json (WER, SUPERB, "
                       "PNMI, LightHuBERT subnets, parameters, time per stage, plots)")
    s.add_argument("--exp", default="exp", help="the recipe's experiment directory")
    s.add_argument("--corpus", default="mini", help="corpus name written into the results")
    s.set_defaults(func=cmd_results)

    s = sub.add_parser("demo", help="the end-to-end demo on the synthetic corpus")
    s.add_argument("--workdir", default="exp/demo")
    s.add_argument("--preset", default="mini", choices=["tiny", "mini"])
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=cmd_demo)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # key=value overrides may come after options; anything else is an error
        if hasattr(args, "overrides") and all("=" in e and not e.startswith("-") for e in extra):
            args.overrides = list(args.overrides) + extra
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if getattr(args, "job", None) is not None:
        if not 1 <= args.job <= args.nshard:
            parser.error(f"--job {args.job} is outside 1..{args.nshard} (--nshard)")
        args.rank = args.job - 1
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)
    from .audio.io import AudioError
    from .data.kaldi_dir import DataDirError

    try:
        return args.func(args)
    except (AudioError, DataDirError, FileExistsError, FileNotFoundError, KeyError, ValueError) as e:
        message = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"speechssl {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
