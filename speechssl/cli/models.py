"""``convert`` and ``extract``: checkpoints in, our folders and layer features out."""

from __future__ import annotations

import time

from ._args import add_parser, import_flags, print_json, shard_flags


def cmd_convert(args) -> int:
    from ..hub import load_upstream
    from ..models import save_model

    model = load_upstream(args.src, args.drop_heads, args.trust_pickle, random_init=args.random_init)
    meta = getattr(model, "metadata", {})
    if args.to == "onnx":
        from ..interop.onnx_export import export_onnx

        return print_json(export_onnx(model, args.out, quantize=args.int8))
    if args.to == "hf":
        from ..interop.hf_export import export_huggingface

        _, notes = export_huggingface(model, args.out)
        for line in notes:
            print(line)
    else:
        save_model(model, args.out, metadata=meta, heads=getattr(model, "pretraining_heads", None))
    n = sum(p.numel() for p in model.parameters())
    print(
        f"{args.out}: {model.config.family} {model.config.encoder}, {model.num_layers} layers, "
        f"width {model.hidden_size}, {n / 1e6:.1f}M parameters ({args.to} format)"
    )
    for key in ("dropped_heads", "ignored"):
        if meta.get(key):
            print(f"{key}: {', '.join(meta[key])}")
    return 0


def cmd_extract(args) -> int:
    from ..hub import load_upstream
    from ..pipelines.extract import extract_features
    from ..pipelines.windowed import Windowing

    model = load_upstream(args.model, args.drop_heads, args.trust_pickle, random_init=args.random_init)
    t0 = time.time()
    summary = extract_features(
        model,
        args.data,
        args.out,
        args.layers,
        args.format,
        args.nshard,
        args.rank,
        args.batch_seconds,
        args.chunk_seconds,
        args.device,
        args.dtype,
        args.skip_bad,
        model_name=args.model,
        windowing=Windowing(args.max_seconds, args.context_seconds),
    )
    summary["seconds"] = round(time.time() - t0, 1)
    return print_json(summary)


def register(sub) -> None:
    s = add_parser(
        sub,
        "convert",
        "convert a checkpoint: into our folder format (import), a transformers folder "
        "(--to hf) or an ONNX graph (--to onnx)",
    )
    s.add_argument(
        "src",
        help="our folder, a transformers folder or hub id, a fairseq / LightHuBERT .pt, or a "
        "well-known name (hubert_base, wavlm_base_plus, ...)",
    )
    s.add_argument("out", help="output folder (speechssl, hf) or .onnx file")
    s.add_argument("--to", default="speechssl", choices=["speechssl", "hf", "onnx"], help="output format")
    s.add_argument("--int8", action="store_true", help="onnx: also write OUT.int8.onnx (dynamic int8 weights)")
    import_flags(s)
    s.set_defaults(func=cmd_convert)

    s = add_parser(sub, "extract", "layer features of a model over a data dir, to ark/scp or .npy")
    s.add_argument(
        "--model",
        required=True,
        help="our exported folder, a transformers folder or hub id, a fairseq .pt, or a well-known name",
    )
    s.add_argument("--data", required=True, help="Kaldi data dir")
    s.add_argument("--layers", default="all", help="comma-separated hidden-state indices (0 = encoder input) or 'all'")
    s.add_argument("--out", required=True, help="output folder")
    s.add_argument("--format", default="ark", choices=["ark", "npy"], help="feature file format")
    s.add_argument("--dtype", default="float32", choices=["float32", "float16"], help="float16: npy only")
    shard_flags(s)
    s.add_argument("--batch-seconds", type=float, default=40.0, help="padded audio seconds per batch")
    s.add_argument("--chunk-seconds", type=float, default=1800.0, help="audio seconds per committed chunk")
    s.add_argument(
        "--max-seconds",
        type=float,
        default=60.0,
        help="longer utterances are encoded in windows of "
        "this many seconds, with --context-seconds of audio on each side (memory grows with the length, "
        "not its square); 0: every utterance whole",
    )
    s.add_argument("--context-seconds", type=float, default=5.0, help="audio on each side of a window")
    s.add_argument("--device", default="auto", help="torch device: auto (a GPU when there is one), cpu, cuda, cuda:1")
    s.add_argument("--skip-bad", action="store_true", help="log and skip unreadable audio")
    import_flags(s)
    s.set_defaults(func=cmd_extract)
