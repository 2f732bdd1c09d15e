"""Shared argument helpers: parsers that show defaults and take ``-v`` anywhere, common flag sets,
``key=value`` parsing, and the one "load a config, print or dry-run it, or run it" command."""

from __future__ import annotations

import argparse
import json
from typing import Any, Dict, List

from ..config import load_config, to_yaml, value_origins
from ..errors import InputError
from ..tasks.registry import TaskSpec

# -v after any sub-command too; SUPPRESS keeps a sub-parser from resetting the top-level flag
VERBOSE = argparse.ArgumentParser(add_help=False)
VERBOSE.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="debug logging")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, and no "(default: None)" noise for options without one."""

    def _get_help_string(self, action):
        # identity, not ==: a default of 0 (== False) is shown
        hidden = (
            action.default is None
            or action.default is False
            or action.default is argparse.SUPPRESS
            or (isinstance(action.default, list) and not action.default)
        )
        if hidden or "%(default)" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def add_parser(sub, name: str, help: str, **kwargs) -> argparse.ArgumentParser:
    return sub.add_parser(name, help=help, description=help, parents=[VERBOSE], formatter_class=HelpFormatter, **kwargs)


def add_group(sub, name: str, help: str):
    """A command with sub-commands of its own (``speechssl data ...``)."""
    return add_parser(sub, name, help).add_subparsers(dest="sub", required=True, metavar="SUBCOMMAND")


def parse_value(v: str) -> Any:
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(v.lower(), v)


def key_values(pairs: List[str]) -> Dict[str, Any]:
    out = {}
    for p in pairs:
        if "=" not in p:
            raise InputError(f"expected key=value, got {p!r}")
        k, v = p.split("=", 1)
        out[k] = parse_value(v)
    return out


def print_json(obj) -> int:
    print(json.dumps(obj, indent=1))
    return 0


def shard_flags(p) -> None:
    p.add_argument("--nshard", type=int, default=1, help="number of jobs the work is split into")
    p.add_argument("--rank", type=int, default=0, help="this job's shard, 0-based")
    p.add_argument(
        "--job", type=int, default=None, help="this job's shard, 1-based as Kaldi's JOB=1:N (instead of --rank)"
    )


def import_flags(p) -> None:
    p.add_argument(
        "--drop-heads",
        action="store_true",
        help="import the encoder without task heads (CTC projection, quantizer...); they are listed in the metadata",
    )
    p.add_argument(
        "--trust-pickle",
        action="store_true",
        help="allow arbitrary pickled objects in a .pt checkpoint (only for files you trust)",
    )
    p.add_argument(
        "--random-init",
        action="store_true",
        help="the source is a registered architecture name: "
        "build it with random weights (smoke tests, untrained baselines)",
    )


def config_flags(p, example_conf: str, example_overrides: str) -> None:
    p.add_argument(
        "--config",
        action="append",
        default=[],
        help=f"YAML (repeatable; later ones win), a path or a name under conf/ such as {example_conf}",
    )
    p.add_argument(
        "--print-config",
        action="store_true",
        help="print the merged config (each value set by a "
        "file or the command line commented with its origin) and exit",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="check the config and print what it builds and will "
        "do (parameters with and without heads, steps, audio per update and in all, a memory estimate; "
        "no data, no training)",
    )
    p.add_argument(
        "--time-steps",
        type=int,
        default=0,
        metavar="N",
        help="with --dry-run: also time N updates "
        "on a synthetic micro-batch of the configured size on this device (and its peak memory)",
    )
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help=f"e.g. {example_overrides}")


def add_task_command(sub, word: str, spec: TaskSpec, example_conf: str, example_overrides: str):
    """``speechssl <group> <word> --config ... [KEY=VALUE ...]`` for a registered task."""
    p = add_parser(sub, word, spec.help + " (Lightning; resumes from OUT/checkpoints/last.ckpt)")
    config_flags(p, example_conf, example_overrides)
    p.set_defaults(func=run_task_command, task_spec=spec)
    return p


def run_task_command(args) -> int:
    spec: TaskSpec = args.task_spec
    cfg = load_config(spec.schema_class(), args.config, args.overrides)
    if args.print_config:  # each value set by a file or the command line says where from
        print(to_yaml(cfg, value_origins(args.config, args.overrides, spec.schema_class())))
    if args.dry_run:
        print_json(spec.description(cfg, args.time_steps))
    if args.print_config or args.dry_run:
        return 0
    return print_json(spec.run_function()(cfg))
