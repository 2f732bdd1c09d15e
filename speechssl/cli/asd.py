"""``asd prepare | train | eval | predict``: active speaker detection in the AVA / UniTalk layout."""

from __future__ import annotations

from ..errors import InputError
from ..tasks.registry import tasks_in
from ._args import add_group, add_parser, add_task_command, print_json


def cmd_prepare(args) -> int:
    from ..corpus.asd_synth import synthesize_asd_splits
    from ..corpus.asd_video import crops_from_videos

    if args.videos:
        if not args.csv:
            raise InputError("asd prepare --videos needs --csv (the split's AVA / UniTalk CSV with the boxes)")
        return print_json(crops_from_videos(args.csv, args.videos, args.out, args.split, video_ext=args.video_ext))
    if not args.synthetic:
        raise InputError(
            "asd prepare: pass --synthetic (the set made from the corpus) or --videos DIR --csv FILE "
            "(raw videos to crops); a UniTalk / AVA copy already in the crop layout is read as it is"
        )
    return print_json(synthesize_asd_splits(args.data, args.out, args.clips, args.seed))


def cmd_eval(args) -> int:
    from ..tasks.asd import evaluate_asd

    return print_json(evaluate_asd(args.model, args.root, args.split, args.out, args.device))


def cmd_predict(args) -> int:
    from ..tasks.asd import score_split, write_predictions

    print(write_predictions(score_split(args.model, args.root, args.split, args.device), args.out))
    return 0


def register(sub) -> None:
    asd = add_group(sub, "asd", "active speaker detection (AVA / UniTalk layout)")
    s = add_parser(
        asd, "prepare", "the synthetic audio-visual set from the mini corpus's data dirs, or face crops from raw videos"
    )
    s.add_argument("--synthetic", action="store_true", help="make the synthetic set")
    s.add_argument("--videos", default=None, help="folder of raw videos <video_id><ext> to crop faces from")
    s.add_argument("--csv", default=None, help="with --videos: the split's CSV (boxes, labels)")
    s.add_argument("--split", default="train", help="with --videos: the split the crops go to")
    s.add_argument("--video-ext", default=".mp4", help="with --videos: the videos' file extension")
    s.add_argument("--data", default="data", help="folder with the train, dev and test data dirs")
    s.add_argument("--clips", type=int, default=200, help="training clips (val and test get a fifth each)")
    s.add_argument("--seed", type=int, default=0, help="random seed")
    s.add_argument("--out", default="asd", help="the set's root")
    s.set_defaults(func=cmd_prepare)
    for word, spec in tasks_in("asd").items():
        add_task_command(asd, word, spec, "asd/ssl_tiny", "upstream=exp/hubert_it2/final data.root=asd")
    for name, help_, func in (
        ("eval", "AP over all face-frames (official AVA computation), overall and per subset", cmd_eval),
        ("predict", "the official prediction CSV with scores", cmd_predict),
    ):
        s = add_parser(asd, name, help_)
        s.add_argument("--model", required=True, help="a trained ASD model folder")
        s.add_argument("--root", default="asd", help="the set's root")
        s.add_argument("--split", default="test", help="the split to score")
        s.add_argument("--out", required=True, help="eval: a folder; predict: the CSV")
        s.add_argument("--device", default="auto", help="torch device: auto (a GPU when there is one), cpu, cuda")
        s.set_defaults(func=func)
