"""The I/O edge: read a file with a foreign parser and turn its failure into one line naming the file.

YAML, safetensors, torch checkpoints, ONNX and KenLM each raise their own exception types (a tab in a
YAML file is a ``ScannerError``, a truncated ``model.safetensors`` a ``SafetensorError``, a text file
given as an LM an ``OSError`` without a file name). Inside :func:`reading` the only code is the library
call that parses the file, so whatever it raises is about the file: it becomes a
:class:`UnreadableFileError` (exit 2, one line). Programming errors (``TypeError``, ``AttributeError``,
``NameError``, ``AssertionError``, ``ImportError``) and ``MemoryError`` pass through with their tracebacks.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator, Union

from ..errors import SpeechSSLError

PathLike = Union[str, os.PathLike]

# what a bug looks like, never a bad file: these keep their traceback
_BUGS = (TypeError, AttributeError, NameError, AssertionError, ImportError, MemoryError, NotImplementedError)


class UnreadableFileError(SpeechSSLError, ValueError):
    """A file that is there but cannot be parsed as what it should be; the message names it and the parser's reason."""


def _reason(e: BaseException) -> str:
    text = " ".join(str(e).split())  # parsers' messages span lines (YAML marks, C++ stacks): one line
    if len(text) > 300:
        text = text[:297] + "..."
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


@contextmanager
def reading(path: PathLike, what: str) -> Iterator[None]:
    """Run the parser call of ``path`` (a ``what``: "YAML file", "safetensors file", ...) inside this block."""
    try:
        yield
    except (SpeechSSLError, KeyboardInterrupt) + _BUGS:
        raise
    except Exception as e:  # noqa: BLE001 - the edge: anything the parser raises is about the file
        if isinstance(e, OSError) and getattr(e, "filename", None):
            raise  # missing, unreadable: the OS names the file, and the CLI prints that as one line
        raise UnreadableFileError(f"{path}: not a readable {what} ({_reason(e)})") from e


def load_yaml(path: PathLike):
    """A YAML file as an OmegaConf node."""
    from omegaconf import OmegaConf

    with reading(path, "YAML file"):
        return OmegaConf.load(path)


def load_yaml_dict(path: PathLike) -> Dict:
    """A YAML mapping as plain Python containers."""
    from omegaconf import OmegaConf

    node = load_yaml(path)
    with reading(path, "YAML file"):
        data = OmegaConf.to_container(node)
    if not isinstance(data, dict):
        raise UnreadableFileError(f"{path}: expected a YAML mapping, found {type(data).__name__}")
    return data


def load_safetensors(path: PathLike, device: str = "cpu") -> Dict:
    """Every tensor of a ``.safetensors`` file."""
    from safetensors.torch import load_file

    with reading(path, "safetensors file"):
        return load_file(str(path), device=device)


def load_checkpoint(path: PathLike, *, weights_only: bool = True, mmap: bool = False):
    """A ``torch.save`` file (a Lightning checkpoint, a fairseq ``.pt``) on the CPU."""
    import torch

    with reading(path, "PyTorch checkpoint"):
        return torch.load(Path(path), map_location="cpu", weights_only=weights_only, mmap=mmap)


__all__ = ["UnreadableFileError", "load_checkpoint", "load_safetensors", "load_yaml", "load_yaml_dict", "reading"]
