"""``config check`` and ``results``: the configs' dry run and the recipe's summary."""

from __future__ import annotations

from pathlib import Path

from ..config import CONF_DIR
from ..errors import MissingInputError
from ._args import add_group, add_parser


def cmd_config_check(args) -> int:
    from ..config_check import check_conf_tree, format_report

    conf = Path(args.conf_dir) if args.conf_dir else CONF_DIR
    results = check_conf_tree(conf)
    print(format_report(results, conf))
    return 0 if all(r.error is None for r in results) else 1


def cmd_results(args) -> int:
    from ..report import write_report

    exp = Path(args.exp)
    if not exp.is_dir():
        raise MissingInputError(f"{exp}: no such experiment directory (run the recipe's stages first)")
    res = write_report(exp, args.corpus)
    found = [k for k in ("pnmi", "superb", "asr", "lighthubert") if res[k]]
    print(f"results ({', '.join(found) or 'nothing yet'}) -> {exp / 'RESULTS.md'} and {exp / 'results.json'}")
    return 0


def register(sub) -> None:
    cf = add_group(sub, "config", "configs")
    s = add_parser(
        cf,
        "check",
        "dry run: every YAML under conf/ loads into its task's schema and validates "
        "(layered files on their '# base:' files)",
    )
    s.add_argument("--conf-dir", default=None, help="default: the package's conf/")
    s.set_defaults(func=cmd_config_check)

    s = add_parser(
        sub,
        "results",
        "the recipe's summary: exp/RESULTS.md + exp/results.json (WER, SUPERB, PNMI, "
        "LightHuBERT subnets, parameters, time per stage, plots)",
    )
    s.add_argument("--exp", default="exp", help="the recipe's experiment directory")
    s.add_argument("--corpus", default="mini", help="corpus name written into the results")
    s.set_defaults(func=cmd_results)
