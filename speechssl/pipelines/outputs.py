"""Output folders of the batch jobs: the settings that made them, and Kaldi ark/scp written without ever
splicing a user's path into a kaldiio specifier string."""
from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Dict, Mapping

import kaldiio
import numpy as np
import torch

from ..errors import InputError
from ..utils.atomic import atomic_path, write_json, write_text

SPEC_FILE = "spec.json"


def claim_output(out: Path, spec: Dict, what: str) -> None:
    """``out/spec.json`` records the settings and inputs; a folder made with other settings is refused (the
    rerun would mix or reuse stale results), never silently reused."""
    out.mkdir(parents=True, exist_ok=True)
    old = out / SPEC_FILE
    if old.exists():
        prev = json.loads(old.read_text())
        clash = {k: (prev.get(k), v) for k, v in spec.items() if prev.get(k) != v}
        if clash:
            raise InputError(f"{out} holds {what} made with other settings ("
                             + "; ".join(f"{k}: {a!r} there, {b!r} now" for k, (a, b) in clash.items())
                             + "); remove it or use another --out")
    else:
        write_json(old, spec)


def write_ark_scp(ark: Path, scp: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """``arrays`` as a Kaldi binary ark at ``ark`` and its scp at ``scp`` (absolute ark paths, so the scp works
    from any directory), each written atomically, the scp last. Paths are used as paths: a comma or a colon
    in them is only a character."""
    ark = Path(ark).resolve()
    listing = io.StringIO()
    with atomic_path(ark) as tmp, open(tmp, "wb") as f:
        kaldiio.save_ark(f, dict(arrays), scp=listing)
    lines = []
    for line in listing.getvalue().splitlines():
        key, location = line.split(" ", 1)
        lines.append(f"{key} {ark}:{location.rsplit(':', 1)[1]}")
    write_text(scp, "".join(line + "\n" for line in lines))


def model_hash(model: torch.nn.Module) -> str:
    """A fingerprint of a model's weights (shapes and values in the order of their names; a wrapper module that
    prefixes every name changes nothing): an output folder made by other weights at the same path is stale."""
    h = hashlib.blake2b(digest_size=12)
    for _, t in sorted(model.state_dict().items()):
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()
