"""``kmeans learn | assign | eval | info``: HuBERT targets with faiss."""

from __future__ import annotations

from ._args import add_group, add_parser, print_json, shard_flags

FEATS_HELP = (
    "features: an scp, a `speechssl features` folder, or a `speechssl extract` folder with its layer as PATH:LAYER"
)


def cmd_learn(args) -> int:
    from ..clustering import FeatureSource, learn_kmeans

    model = learn_kmeans(
        FeatureSource.open(args.feats),
        args.k,
        args.out,
        args.fraction,
        args.max_frames,
        args.niter,
        args.restarts,
        args.seed,
        args.init,
        threads=args.threads,
        device=args.device,
        utt_fraction=args.utt_fraction,
    )
    s = model.spec
    print(
        f"{args.out}: k={s['k']} on {s['frames_used']} of {s['frames_total']} frames "
        f"(dim {s['dim']}, sample {s['sample_mib']} MiB), inertia/frame {s['inertia_per_frame']:.4f} "
        f"(restarts {s['inertia_per_restart']}), {s['seconds']}"
    )
    return 0


def cmd_assign(args) -> int:
    from ..clustering import FeatureSource, KMeansModel, assign_labels

    return print_json(
        assign_labels(
            KMeansModel.load(args.model),
            FeatureSource.open(args.feats),
            args.out,
            args.nshard,
            args.rank,
            threads=args.threads,
            device=args.device,
        )
    )


def cmd_eval(args) -> int:
    from ..clustering import label_set_quality

    r = label_set_quality(args.labels, args.data, args.model, args.frame_rate, args.out, args.at_rate)
    print(
        f"PNMI {r['pnmi']:.4f}  phone purity {r['phone_purity']:.4f}  cluster purity {r['cluster_purity']:.4f}  "
        f"({r['clusters_used']}/{r['k']} clusters used, {r['frames']} frames"
        + (
            f", {r['utterances_unaligned']} utterances without alignment left out"
            if r.get("utterances_unaligned")
            else ""
        )
        + f") -> {r['out']}"
    )
    return 0


def cmd_info(args) -> int:
    from ..clustering.spec import KMeansSpec

    spec = KMeansSpec.read(args.model)
    if args.field:  # one value for a shell script (the recipe reads the label rate this way)
        value = {"k": spec.k, "dim": spec.dim, "frame_rate": spec.frame_rate}[args.field]
        print(f"{value:g}" if isinstance(value, float) else value)
        return 0
    return print_json(spec.to_dict())


def register(sub) -> None:
    km = add_group(sub, "kmeans", "k-means targets for HuBERT (faiss)")
    s = add_parser(km, "learn", "learn centroids on a sample of frames")
    s.add_argument("--feats", required=True, help=FEATS_HELP)
    s.add_argument("-k", "--k", type=int, required=True, help="number of clusters")
    s.add_argument("--out", required=True, help="folder for centroids.npy + kmeans.json")
    s.add_argument("--fraction", type=float, default=1.0, help="share of frames to sample")
    s.add_argument(
        "--utt-fraction",
        type=float,
        default=1.0,
        help="share of utterances read at all (seeded; the "
        "rest is never read: what makes learning cheap on a large corpus)",
    )
    s.add_argument(
        "--max-frames",
        type=int,
        default=1_000_000,
        help="memory bound: at most this many frames are kept (peak about 8 x max-frames x dim bytes while sampling)",
    )
    s.add_argument("--niter", type=int, default=100, help="iterations per run")
    s.add_argument("--restarts", type=int, default=3, help="runs from different seeds; the lowest inertia wins")
    s.add_argument("--init", default="kmeans++", choices=["kmeans++", "random"], help="centroid initialisation")
    s.add_argument("--seed", type=int, default=0, help="random seed")
    s.add_argument("--threads", type=int, default=None, help="faiss threads (default: all cores)")
    s.add_argument(
        "--device",
        default="auto",
        help="auto: faiss on the GPUs when it has GPU support and sees them (faiss-gpu); cpu",
    )
    s.set_defaults(func=cmd_learn)
    s = add_parser(km, "assign", "label every utterance (sharded): OUT/labels.RANK.txt, merged into OUT/labels.txt")
    s.add_argument("--model", required=True, help="folder written by `kmeans learn`")
    s.add_argument("--feats", required=True, help=FEATS_HELP)
    s.add_argument("--out", required=True, help="output folder")
    shard_flags(s)
    s.add_argument("--threads", type=int, default=None, help="faiss threads (default: all cores)")
    s.add_argument(
        "--device",
        default="auto",
        help="auto: faiss on the GPUs when it has GPU support and sees them (faiss-gpu); cpu",
    )
    s.set_defaults(func=cmd_assign)
    s = add_parser(km, "eval", "PNMI, phone purity, cluster purity against a data dir's alignments.ctm")
    s.add_argument("--labels", required=True, help="labels.txt or the folder holding it")
    s.add_argument("--data", required=True, help="data dir with alignments.ctm")
    s.add_argument("--model", help="k-means folder (default: the kmeans.json next to the labels)")
    s.add_argument("--frame-rate", type=float, help="label rate in Hz (default: from kmeans.json)")
    s.add_argument(
        "--at-rate",
        type=float,
        help="read the labels at this lower rate (every n-th label), to compare "
        "label sets at one frame rate: PNMI rises as frames get fewer (writes quality_at_<R>hz.json)",
    )
    s.add_argument("--out", help="JSON result (default: quality.json next to the labels)")
    s.set_defaults(func=cmd_eval)
    s = add_parser(km, "info", "a k-means (or labels) folder's kmeans.json, validated; --field for one value")
    s.add_argument("model", help="k-means or labels folder, or its kmeans.json")
    s.add_argument("--field", choices=["k", "dim", "frame_rate"], help="print only this value")
    s.set_defaults(func=cmd_info)
