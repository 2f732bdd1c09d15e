"""Output folders of the batch jobs: the settings that made them, and Kaldi ark/scp written without ever
splicing a user's path into a kaldiio specifier string."""

from __future__ import annotations

import contextlib
import hashlib
import io
from pathlib import Path
from typing import Dict, Iterable, Iterator, Mapping, Optional, Tuple

import kaldiio
import numpy as np
import torch

from ..errors import InputError
from ..utils.artifacts import FeatureSpec
from ..utils.atomic import atomic_path, write_text
from ..utils.text import read_text_lines

SPEC_FILE = "spec.json"


def claim_output(out: Path, spec: Dict, what: str) -> None:
    """``out/spec.json`` records the settings and inputs; a folder made with other settings is refused (the
    rerun would mix or reuse stale results), never silently reused."""
    out.mkdir(parents=True, exist_ok=True)
    old = out / SPEC_FILE
    if old.exists():
        prev = FeatureSpec.read(old)
        clash = {k: (prev.get(k), v) for k, v in spec.items() if prev.get(k) != v}
        if clash:
            raise InputError(
                f"{out} holds {what} made with other settings ("
                + "; ".join(f"{k}: {a!r} there, {b!r} now" for k, (a, b) in clash.items())
                + "); remove it or use another --out"
            )
    else:
        FeatureSpec.write(old, spec)


def write_ark_scp(ark: Path, scp: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """``arrays`` as a Kaldi binary ark at ``ark`` and its scp at ``scp`` (absolute ark paths, so the scp works
    from any directory), each written atomically, the scp last. Paths are used as paths: a comma or a colon
    in them is only a character."""
    with ArkWriter(ark, scp, sort_scp=False) as writer:
        for key, array in arrays.items():
            writer.add(key, array)


class ArkWriter:
    """A Kaldi binary ark written one matrix at a time (nothing but the offsets is held), then its scp: the ark
    is renamed into place when the block succeeds, the scp (sorted by key unless ``sort_scp=False``) last, so
    a listed scp always points into a complete ark. A raising block leaves neither."""

    def __init__(self, ark: Path, scp: Path, sort_scp: bool = True):
        self.ark, self.scp, self.sort_scp = Path(ark).resolve(), Path(scp), sort_scp
        self.entries: list = []
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> ArkWriter:
        tmp = self._stack.enter_context(atomic_path(self.ark))
        self._file = self._stack.enter_context(open(tmp, "wb"))  # not atomic: atomic_path's temporary, on the stack
        return self

    def add(self, key: str, array: np.ndarray) -> None:
        listing = io.StringIO()
        kaldiio.save_ark(self._file, {key: array}, scp=listing)
        self.entries.append((key, listing.getvalue().rsplit(":", 1)[1].strip()))

    def __exit__(self, *exc) -> None:
        self._stack.__exit__(*exc)  # closes the file and renames it (or removes it on an error)
        if exc[0] is None:
            entries = sorted(self.entries, key=lambda e: e[0].encode()) if self.sort_scp else self.entries
            write_text(self.scp, "".join(f"{key} {self.ark}:{offset}\n" for key, offset in entries))


def model_hash(model: torch.nn.Module) -> str:
    """A fingerprint of a model's weights (shapes and values in the order of their names; a wrapper module that
    prefixes every name changes nothing): an output folder made by other weights at the same path is stale."""
    h = hashlib.blake2b(digest_size=12)
    for _, t in sorted(model.state_dict().items()):
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def read_scp(scp, utts: Optional[Iterable[str]] = None) -> Iterator[Tuple[str, np.ndarray]]:
    """``(utt, matrix)`` of a Kaldi scp, in its order (or for ``utts`` only, in their order). An entry that
    cannot be read (a truncated or corrupt ark, a missing file) fails naming the scp line, the utterance
    and the ark location, never with a bare reader error."""
    scp = Path(scp)
    entries = [line.split(maxsplit=1) for line in read_text_lines(scp)]
    where = {e[0]: (n, e[1] if len(e) > 1 else "") for n, e in enumerate(entries, 1) if e}
    if utts is None:
        order = [e[0] for e in entries if e]
    else:
        order = list(utts)
        missing = [u for u in order if u not in where]
        if missing:
            raise InputError(
                f"{scp}: no entry for utterance {missing[0]}"
                + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
            )
    for u in order:
        n, location = where[u]
        try:
            yield u, kaldiio.load_mat(location)
        except Exception as e:  # kaldiio raises many types (ValueError, OSError, struct errors) for bad arks
            raise InputError(f"{scp}:{n}: utterance {u}: cannot read {location} ({type(e).__name__}: {e})") from None
