"""``lighthubert dump-targets | search | export | import``: supernets after distillation."""

from __future__ import annotations

from ._args import add_group, add_parser, print_json, shard_flags


def cmd_dump(args) -> int:
    from ..tasks.lighthubert import dump_targets

    return print_json(
        dump_targets(
            args.teacher,
            args.target_layers,
            args.data,
            args.out,
            norm=args.target_norm,
            nshard=args.nshard,
            rank=args.rank,
            batch_seconds=args.batch_seconds,
            device=args.device,
        )
    )


def cmd_search(args) -> int:
    from ..tasks.subnet_search import SearchConfig, run_search

    cfg = SearchConfig(
        random=args.random,
        population=args.population,
        generations=args.generations,
        parents=args.parents,
        seed=args.seed,
        batch_seconds=args.batch_seconds,
        device=args.device,
    )
    summary = run_search(
        args.supernet,
        args.data,
        args.out,
        cfg,
        args.teacher,
        args.target_layers,
        args.targets,
        progress=not args.no_progress,
        budget=args.max_params,
    )
    print(
        f"{summary['scored']} subnets scored (of {summary['num_subnets']:,}); Pareto front: "
        f"{len(summary['pareto'])}; -> {args.out}/search.tsv, pareto.png"
    )
    best = summary["best"]
    if best:
        print(
            f"best within budget: {best['name']}  {best['params'] / 1e6:.2f}M parameters  "
            f"dev loss {best['dev_loss']:.4f}  -> {args.out}/best.json"
        )
    return 0


def cmd_export(args) -> int:
    from ..models import save_model
    from ..models.lighthubert import load_supernet, subnets_from_spec

    supernet = load_supernet(args.supernet)
    (subnet,) = subnets_from_spec(args.subnet, supernet)[:1]
    model = supernet.export(subnet)
    n = sum(p.numel() for p in model.parameters())
    meta = {
        **getattr(supernet, "metadata", {}),
        "lighthubert_supernet": False,
        "subnet": subnet.to_dict(),
        "subnet_name": subnet.name(),
        "supernet": str(args.supernet),
        "parameters": n,
    }
    save_model(model, args.out, metadata=meta)
    print(
        f"{args.out}: subnet {subnet.name()}, {subnet.depth} layers, width {subnet.embed_dim}, "
        f"{n / 1e6:.2f}M parameters"
    )
    return 0


def cmd_import(args) -> int:
    from ..interop.lighthubert import import_lighthubert

    supernet = import_lighthubert(args.checkpoint, trust=args.trust_pickle)
    supernet.save(args.out, metadata=supernet.metadata)
    print(
        f"{args.out}: LightHuBERT {supernet.metadata['space']} supernet ({supernet.space.num_subnets():,} "
        f"subnets); served subnet {supernet.subnet.name()} ({supernet.subnet_parameters() / 1e6:.2f}M parameters)"
    )
    return 0


def register(sub) -> None:
    lh = add_group(sub, "lighthubert", "LightHuBERT supernets: targets, search, export, import")
    s = add_parser(
        lh,
        "dump-targets",
        "teacher targets (mean of the last K layers) of a data dir, to ark/scp "
        "(resumable, sharded); distillation reads them with data.train_targets",
    )
    s.add_argument("--teacher", required=True, help="the teacher upstream")
    s.add_argument("--target-layers", type=int, default=8, help="K: the teacher's last layers averaged")
    s.add_argument("--target-norm", default="none", choices=["none", "layer_norm"], help="target normalisation")
    s.add_argument("--data", required=True, help="the data dir")
    s.add_argument("--out", required=True, help="output folder")
    s.add_argument("--batch-seconds", type=float, default=40.0, help="padded audio seconds per batch")
    s.add_argument("--device", default="auto", help="torch device: auto (a GPU when there is one), cpu, cuda, cuda:1")
    shard_flags(s)
    s.set_defaults(func=cmd_dump)
    s = add_parser(
        lh,
        "search",
        "score subnets by dev distillation loss under a parameter budget (random + "
        "evolutionary); writes search.tsv/json, best.json, pareto.png",
    )
    s.add_argument("--supernet", required=True, help="a supernet folder (distill's OUT/final)")
    s.add_argument("--data", required=True, help="dev data dir")
    s.add_argument("--out", required=True, help="output folder")
    s.add_argument("--max-params", help="parameter budget, e.g. 5e6, or 'default': the default subnet's size")
    s.add_argument("--random", type=int, default=50, help="random subnets scored first")
    s.add_argument("--population", type=int, default=16, help="evolutionary population (0: random search only)")
    s.add_argument("--generations", type=int, default=4, help="evolutionary generations")
    s.add_argument("--parents", type=int, default=4, help="parents kept per generation")
    s.add_argument("--seed", type=int, default=0, help="random seed")
    s.add_argument("--teacher", help="default: the teacher the supernet was distilled from")
    s.add_argument("--target-layers", type=int, help="default: as in distillation")
    s.add_argument("--targets", help="dumped dev targets instead of running the teacher")
    s.add_argument("--batch-seconds", type=float, default=60.0, help="padded audio seconds per batch")
    s.add_argument("--device", default="auto", help="torch device: auto (a GPU when there is one), cpu, cuda")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_search)
    s = add_parser(lh, "export", "a subnet as a standalone plain model folder (an upstream like any other)")
    s.add_argument("--supernet", required=True, help="a supernet folder")
    s.add_argument("--subnet", required=True, help="max | min | default | JSON | a file such as search's best.json")
    s.add_argument("--out", required=True, help="output folder")
    s.set_defaults(func=cmd_export)
    s = add_parser(lh, "import", "an official LightHuBERT checkpoint (.pt) as a supernet folder")
    s.add_argument("checkpoint", help="the official .pt")
    s.add_argument("out", help="output folder")
    s.add_argument("--trust-pickle", action="store_true", help="allow arbitrary pickled objects (trusted files)")
    s.set_defaults(func=cmd_import)
