"""Speaker-disjoint held-out splits for corpora without dev or test audio (Mini LibriSpeech's train-clean-5
alone, Libri-light's limited-supervision sets): whole readers leave the training set."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List, Sequence

from ..errors import InputError
from .kaldi_dir import DataDir


def utt2reader(d: DataDir) -> Dict[str, str]:
    """The reader of each utterance: ``utt2reader`` when present, else the part of the speaker before '-'
    (LibriSpeech's speaker is reader-chapter)."""
    table = d.extra.get("utt2reader")
    return dict(table) if table else {u: s.split("-")[0] for u, s in d.utt2spk.items()}


def split_by_reader(d: DataDir, held_out: Dict[str, Sequence[str]], rest: str = "train") -> Dict[str, DataDir]:
    """``{name: readers}`` -> ``{name: data dir of those readers' utterances, rest: everyone else}``.

    A reader that has no utterance in ``d``, or is named in two splits, is an error naming it.
    """
    readers = utt2reader(d)
    present = set(readers.values())
    owner: Dict[str, str] = {}
    for name, group in held_out.items():
        for r in group:
            if r not in present:
                raise InputError(
                    f"held-out split {name}: reader {r} has no utterance in {d.path or 'the data'} "
                    f"(readers: {' '.join(sorted(present, key=_num))})"
                )
            if r in owner:
                raise InputError(f"reader {r} is in held-out splits {owner[r]} and {name}")
            owner[r] = name
    if rest in held_out:
        raise InputError(f"held-out split name {rest!r} is the name of the remaining set")
    groups: Dict[str, List[str]] = {name: [] for name in [*held_out, rest]}
    for utt in d.utt_ids:
        groups[owner.get(readers[utt], rest)].append(utt)
    return {name: d.subset(utts) for name, utts in groups.items()}


def write_reader_splits(
    data_dir: os.PathLike, out_parent: os.PathLike, held_out: Dict[str, Sequence[str]], rest: str = "train"
) -> Dict[str, DataDir]:
    """Read ``data_dir``, split it by reader and write each split to ``out_parent/<name>``."""
    d = DataDir.read(data_dir)
    splits = split_by_reader(d, held_out, rest)
    for name, part in splits.items():
        if not part.utt2spk:
            raise InputError(f"{data_dir}: split {name} would be empty")
        part.write(Path(out_parent) / name)
    return splits


def _num(reader: str):
    return (0, int(reader)) if reader.isdigit() else (1, reader)


__all__ = ["split_by_reader", "utt2reader", "write_reader_splits"]
