"""Reading text files so that a bad byte is reported as ``file:line``, never as a bare UnicodeDecodeError."""

from __future__ import annotations

import os
from pathlib import Path
from typing import List, Union

from ..errors import InputError


def read_text_lines(path: Union[str, os.PathLike], encoding: str = "utf-8") -> List[str]:
    """The lines of ``path`` without their line ends; a byte that is not ``encoding`` fails naming the
    file, the line and the byte's column."""
    data = Path(path).read_bytes()
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise InputError(
            f"{path}:{line}: byte {data[e.start : e.start + 1]!r} at column {column} is not "
            f"{encoding} text ({e.reason})"
        ) from None
    lines = text.split("\n")  # not splitlines(): form feeds or U+2028 inside a transcript are no line ends
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]
