"""Top-level parser and the error boundary: a :class:`~speechssl.errors.SpeechSSLError` or a failed file
operation becomes one line on stderr and exit status 2; anything else is a bug and keeps its traceback."""

from __future__ import annotations

import argparse
import errno
import logging
import sys
from typing import List, Optional

from .. import __version__
from ..errors import SpeechSSLError
from . import asd, asr, data, kmeans, lighthubert, models, project, superb, train, tts
from ._args import HelpFormatter

COMMAND_GROUPS = (data, models, kmeans, train, lighthubert, asr, superb, tts, asd, project)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="speechssl",
        description="Self-supervised speech representation learning toolkit.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument("--version", action="version", version=f"speechssl {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.register(sub)
    return p


def _parse(parser: argparse.ArgumentParser, argv: Optional[List[str]]) -> argparse.Namespace:
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
    return args


# Write failures that the OS reports without a file name (a full disk, a read-only or over-quota
# mount): the command's output folder is where they happened.
_WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EFBIG})


def _one_line(e: BaseException, args: argparse.Namespace) -> Optional[str]:
    """The message of a user-caused failure, None for a programming error."""
    if isinstance(e, SpeechSSLError):
        return str(e)
    if isinstance(e, OSError) and e.filename is not None:  # missing file, no permission, disk full, read-only
        where = f"{e.filename}" + (f" -> {e.filename2}" if e.filename2 else "")
        return f"{where}: {e.strerror or e}"
    if isinstance(e, OSError) and e.errno in _WRITE_ERRNOS:
        out = getattr(args, "out", None) or getattr(args, "exp", None)
        where = f"writing {out}" if out else "writing output"
        return f"{where}: {e.strerror or e} (finished files were written atomically and are intact)"
    return None


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = _parse(parser, argv)
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "verbose", False) else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)
    try:
        return args.func(args)
    except (SpeechSSLError, OSError) as e:
        message = _one_line(e, args)
        if message is None:
            raise
        name = " ".join(x for x in (args.command, getattr(args, "sub", None)) if x)
        print(f"speechssl {name}: error: {message}", file=sys.stderr)
        return getattr(e, "exit_code", 2)


if __name__ == "__main__":
    sys.exit(main())
