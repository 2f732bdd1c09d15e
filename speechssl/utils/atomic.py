"""Write-then-rename: a reader never sees half a file, and a kill leaves only a ``*.tmp`` behind.

The temporary name carries the process id, so parallel ranks writing the same file (a shared spec,
a merged scp) never rename one another's temporary from under them. ``os.replace`` is atomic on
one file system, which the temporary shares with its target (same folder).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any, Iterator, Union

PathLike = Union[str, os.PathLike]


def temporary_name(path: PathLike) -> Path:
    """``dir/name`` -> ``dir/name.<pid>.tmp`` (same folder, so the rename stays atomic)."""
    path = Path(path)
    return path.with_name(f"{path.name}.{os.getpid()}.tmp")


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path to write ``path`` through; renamed onto ``path`` when the block succeeds,
    removed when it raises. For libraries that take a file name (safetensors, soundfile, torch.save)."""
    path = Path(path)
    tmp = temporary_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def write_bytes(path: PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: PathLike, obj: Any, indent: int = 1) -> Path:
    return write_text(path, json.dumps(obj, indent=indent))
