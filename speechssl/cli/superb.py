"""``superb``: SUPERB tasks on frozen upstreams, and the cross-upstream table."""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from ._args import add_parser


def cmd_superb(args) -> int:
    if args.list_tasks:  # for scripts (the recipe checks --superb-tasks with it before stage 0)
        from ..constants import SUPERB_TASKS

        print(" ".join(SUPERB_TASKS))
        return 0
    from ..tasks.superb import run_benchmark, summarize, task_names

    if args.summarize_only:
        print(summarize(args.out)["markdown"])
        return 0
    tasks = [args.task]
    if args.task == "all":  # every task prepared under --tasks-dir (the mini corpus has no ER)
        tasks = [t for t in task_names() if (Path(args.tasks_dir) / t / "task.json").is_file()]
        if not tasks:
            raise InputError(f"{args.tasks_dir}: no prepared task dirs (speechssl data prep-superb)")
        skipped = [t for t in task_names() if t not in tasks]
        if skipped:
            print(f"not prepared under {args.tasks_dir}, skipped: {', '.join(skipped)}")
    for r in run_benchmark(
        args.upstream, tasks, args.tasks_dir, args.out, args.cache, args.data, args.config, args.overrides
    ):
        print(
            f"{r['upstream']:<20} {r['task']:<4} {r['metric']:<9} test {r['value']:7.2f}"
            + (f"  dev {r['dev']:7.2f}" if r.get("dev") is not None else "")
            + f"  ({r['seconds']['total']:.0f} s)"
        )
    print(summarize(args.out)["markdown"])  # OUT/results.{md,json}, for one upstream and one task too
    return 0


def register(sub) -> None:
    from ..constants import SUPERB_TASKS

    s = add_parser(sub, "superb", "SUPERB tasks on a frozen upstream (weighted sum of layers + task head)")
    s.add_argument("--task", default="all", choices=[*SUPERB_TASKS, "all"], help="the task to run")
    s.add_argument(
        "--upstream",
        action="append",
        default=[],
        help="[NAME=]SPEC: fbank, an exported folder, HF folder or fairseq .pt (repeatable)",
    )
    s.add_argument("--tasks-dir", default="superb", help="parent of the prepared task dirs (<dir>/<task>)")
    s.add_argument("--data", help="the prepared task dir of a single --task (default: TASKS_DIR/TASK)")
    s.add_argument("--out", default="exp/superb", help="results: OUT/<upstream>/<task>/, OUT/results.{md,json}")
    s.add_argument("--cache", help="feature cache (default: OUT/cache)")
    s.add_argument("--config", action="append", default=[], help="YAML overriding conf/superb/<task>.yaml")
    s.add_argument("--summarize-only", action="store_true", help="only rebuild OUT/results.{md,json}")
    s.add_argument("--list-tasks", action="store_true", help="print the task names, space-separated, and exit")
    s.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="e.g. max_steps=500 head.hidden=256")
    s.set_defaults(func=cmd_superb)
