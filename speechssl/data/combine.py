"""Combine data dirs into one (Kaldi's ``utils/combine_data.sh``): LibriSpeech's 960 h from its three
training subsets, or any corpus assembled from parts.

An utterance, recording or speaker id found in two inputs with different content is an error naming both
inputs; relative audio paths are made absolute so they resolve from the combined dir. Tables present in
only some inputs (``text``, ``utt2dur``, extras) are kept only when every input has them, and the result
says which were dropped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Sequence, Tuple

from ..errors import InputError
from .kaldi_dir import DataDir


def _merge(name: str, tables: Sequence[Tuple[Path, Dict]], into: Dict) -> None:
    owner: Dict[str, Path] = {}
    for src, table in tables:
        for key, value in table.items():
            if key in into and into[key] != value:
                raise InputError(
                    f"{name}: id {key!r} is in {owner[key]} and {src} with different entries "
                    f"({into[key]!r} vs {value!r})"
                )
            into[key], owner[key] = value, owner.get(key, src)


def combine_data_dirs(out, dirs: Sequence) -> Tuple[DataDir, List[str]]:
    """Write the union of ``dirs`` to ``out``; returns it and the names of tables not every input had."""
    if len(dirs) < 2:
        raise InputError("combine needs at least two data dirs")
    parts = [(Path(d), DataDir.read(d)) for d in dirs]
    if Path(out).resolve() in {p.resolve() for p, _ in parts}:
        raise InputError(f"{out}: the output is one of the inputs")
    if len({d.segments is None for _, d in parts}) > 1:
        raise InputError("some inputs have segments and others do not: combine them separately first")
    merged = DataDir(segments=None if parts[0][1].segments is None else {})
    _merge("wav.scp", [(p, {r: d._resolve(e) for r, e in d.wav_scp.items()}) for p, d in parts], merged.wav_scp)
    _merge("utt2spk", [(p, d.utt2spk) for p, d in parts], merged.utt2spk)
    if merged.segments is not None:
        _merge("segments", [(p, d.segments) for p, d in parts], merged.segments)
    dropped = []
    for name in ("text", "utt2dur"):
        tables = [(p, getattr(d, name)) for p, d in parts]
        if all(t is not None for _, t in tables):
            setattr(merged, name, {})
            _merge(name, tables, getattr(merged, name))
        elif any(t is not None for _, t in tables):
            dropped.append(name)
    extra_names = set.union(*(set(d.extra) for _, d in parts))
    for name in sorted(extra_names):
        if all(name in d.extra for _, d in parts):
            merged.extra[name] = {}
            _merge(name, [(p, d.extra[name]) for p, d in parts], merged.extra[name])
        else:
            dropped.append(name)
    merged.write(out)
    return merged, dropped


__all__ = ["combine_data_dirs"]
