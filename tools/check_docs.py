"""Every command the README and docs/ show, checked against the code as written: each ``speechssl ...`` line parses
with the real parser (its sub-command and options exist, its values are valid choices), a training command's
``--config`` files and ``key=value`` overrides load into the task's schema (a renamed key fails), and each
``./run.sh ...`` line names only options the recipe has. Placeholders in angle brackets and optional parts in
square brackets are read as the docs mean them (``<dir>`` is a value; ``[--nshard 4]`` is left out).

    python tools/check_docs.py [FILES...]     # default: README.md docs/*.md; exit 1 naming file:line on a failure
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from pathlib import Path
from typing import Iterator, List, Tuple

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "librispeech" / "run.sh"


def shell_blocks(path: Path) -> Iterator[Tuple[int, str]]:
    """``(line number, command)`` of each command in the file's fenced code blocks, continuation lines joined."""
    lines = path.read_text().splitlines()
    inside, pending, start = False, "", 0
    for i, line in enumerate(lines, start=1):
        if line.lstrip().startswith("```"):
            inside, pending = not inside, ""
            continue
        if not inside:
            continue
        if not pending:
            start = i
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        yield start, pending + line
        pending = ""


OPTIONAL = re.compile(r"(?<=\s)\[(?:--?|key=)[^\]]*\]")  # [--nshard 4 --rank 0], [key=value ...]: optional


def words(command: str) -> List[str]:
    """Shell words without comments; ``...`` and ``key=...`` (elided) dropped; ``<placeholder>`` kept as a value."""
    try:
        argv = shlex.split(command, comments=True)
    except ValueError:
        return []
    return [w for w in argv if w != "..." and not w.endswith("=...")]


def check_speechssl(argv: List[str], parser) -> str:
    """'' when ``speechssl argv`` parses and its config loads, else why not."""
    from speechssl.cli.main import _parse

    err = []

    def fail(message):
        err.append(message)
        raise SystemExit(2)

    for p in [parser, *_subparsers(parser)]:
        p.error = fail
        p.exit = lambda status=0, message=None: (_ for _ in ()).throw(SystemExit(status))
    try:
        args = _parse(parser, argv)
    except SystemExit as e:
        return err[0] if err else ("" if e.code == 0 else f"exit {e.code}")
    spec = getattr(args, "task_spec", None)
    if spec is not None and args.config:
        from speechssl.config import load_config

        try:
            load_config(spec.schema_class(), args.config, [o for o in args.overrides if "<" not in o])
        except Exception as e:  # a missing file is fine (docs name the user's files); a wrong key is not
            message = str(e)
            if "no such file" in message.lower() or "not found" in message.lower():
                return ""
            return message.splitlines()[0]
    return ""


def _subparsers(parser) -> Iterator[argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield sub
                yield from _subparsers(sub)


def recipe_options() -> set:
    """The recipe's options: the variables its defaults block sets (parse_options.sh maps --a-b to a_b)."""
    names = set()
    for line in RECIPE.read_text().splitlines():
        m = re.match(r"^([a-z][a-z0-9_]*)=", line)
        if m:
            names.add(m.group(1))
        if line.startswith(". ./path.sh"):
            break
    return names | {"config", "help"}


def check_recipe(argv: List[str], options: set) -> str:
    bad = [a for a in argv if a.startswith("--") and a[2:].split("=")[0].replace("-", "_") not in options]
    return f"unknown recipe option(s) {', '.join(bad)}" if bad else ""


def main(files: List[str]) -> int:
    from speechssl.cli.main import build_parser

    paths = [Path(f) for f in files] or [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    options, checked, failures = recipe_options(), 0, []
    for path in paths:
        for line_no, command in shell_blocks(path):
            for part in re.split(r"&&|;|\|", OPTIONAL.sub(" ", command)):  # each command of a chain
                argv = words(part)
                while argv and re.match(r"^[A-Z_]+=", argv[0]):  # VAR=value prefixes
                    argv = argv[1:]
                if not argv:
                    continue
                if argv[0] == "speechssl":
                    why = check_speechssl(argv[1:], build_parser())
                elif argv[0] in ("./run.sh", "run.sh") or argv[0].endswith("/run.sh"):
                    why = check_recipe(argv[1:], options)
                else:
                    continue
                checked += 1
                if why:
                    shown = path.relative_to(ROOT) if path.resolve().is_relative_to(ROOT) else path
                    failures.append(f"{shown}:{line_no}: {' '.join(argv)[:100]}\n    {why}")
    for f in failures:
        print(f)
    print(f"check_docs: {checked} commands checked, {len(failures)} failing")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
