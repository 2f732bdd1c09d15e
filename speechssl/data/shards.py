"""Sharded corpora for data beyond one machine's RAM: WebDataset tar shards written from a Kaldi data dir.

Why WebDataset's format: a shard is a plain POSIX tar (any tool lists or extracts it, any language reads
it), samples are files that share a key, and a shard streams sequentially from local disk, NFS or object
storage, which is all a training loop needs. lhotse's Shar would also do, but brings its manifest model
and a larger dependency set; the reader here needs only the standard library (``webdataset``, the
``shards`` extra, writes them).

Layout of ``OUT/``::

    shard-000000.tar   per utterance KEY (9 digits): KEY.flac (16 kHz, 16-bit), KEY.json (utterance id,
                       speaker, samples, text), KEY.lab<i>.npy (frames of label set i), KEY.ali.txt (CTM
                       lines, when the data dir has alignments.ctm)
    shard-000000.json  [[key, utterance id, seconds], ...]: what bucketing and resume read (no audio)
    index.json         the settings that made the shards, the label sets (rate, k, source) and the shards
                       (utterances, seconds), written last: the folder is complete

Utterances are shuffled once with ``seed`` and packed in that order into shards of about
``shard_seconds`` of audio, so shards mix speakers and chapters. Each shard is written atomically; a
rerun after a kill writes only the missing ones; other settings in an existing folder are refused.
"""

from __future__ import annotations

import io
import json
import logging
import random
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import soundfile as sf

from ..constants import SAMPLE_RATE
from ..errors import InputError, MissingInputError
from ..utils.atomic import atomic_path, write_json
from .kaldi_dir import DataDir

log = logging.getLogger(__name__)

INDEX = "index.json"


def shard_name(i: int) -> str:
    return f"shard-{i:06d}"


def plan_shards(durations: Dict[str, float], shard_seconds: float, seed: int) -> List[List[str]]:
    """Utterances in a seeded shuffled order, cut into consecutive groups of about ``shard_seconds``."""
    order = sorted(durations)
    random.Random(seed).shuffle(order)
    shards, current, total = [], [], 0.0
    for utt in order:
        if current and total + durations[utt] > shard_seconds:
            shards.append(current)
            current, total = [], 0.0
        current.append(utt)
        total += durations[utt]
    if current:
        shards.append(current)
    return shards


def _read_ctm(path: Path) -> Dict[str, List[str]]:
    out: Dict[str, List[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            out.setdefault(line.split()[0], []).append(line)
    return out


def _flac(wav: np.ndarray) -> bytes:
    buf = io.BytesIO()
    clipped = np.clip(wav, -1.0, 32767 / 32768)
    sf.write(buf, clipped, SAMPLE_RATE, format="FLAC", subtype="PCM_16")  # not atomic: an in-memory buffer
    return buf.getvalue()


def write_shards(
    data_dir, out, label_sets: Sequence = (), shard_seconds: float = 3600.0, seed: int = 0, progress: bool = True
) -> Dict:
    """Write ``data_dir`` (with optional :class:`~speechssl.data.dataset.LabelSet` s) as shards under ``out``.

    Returns the index. Labels are checked against each utterance's audio as in training.
    """
    try:
        import webdataset as wds
    except ImportError as e:
        raise ImportError("writing shards needs webdataset: pip install 'speechssl[shards]'") from e
    from .labels import check_label_counts

    data = DataDir.read(data_dir)
    durations = data.utt2dur or data.compute_utt2dur()
    durations = {u: durations[u] for u in data.utt_ids}
    samples = {u: int(round(d * SAMPLE_RATE)) for u, d in durations.items()}
    for ls in label_sets:
        check_label_counts(ls.labels, samples, ls.rate, source=ls.source or str(data_dir))
    settings = {
        "data": str(Path(data_dir).resolve()),
        "utterances": len(durations),
        "seconds": round(sum(durations.values()), 3),
        "shard_seconds": shard_seconds,
        "seed": seed,
        "label_sets": [{"source": ls.source, "rate": ls.rate, "k": ls.num_classes} for ls in label_sets],
    }
    out = Path(out)
    _claim(out, settings)
    ctm = _read_ctm(Path(data_dir) / "alignments.ctm") if (Path(data_dir) / "alignments.ctm").is_file() else {}
    groups = plan_shards(durations, shard_seconds, seed)
    shards = []
    for i, utts in enumerate(groups):
        name = shard_name(i)
        listing = out / f"{name}.json"
        if not (listing.is_file() and (out / f"{name}.tar").is_file()):  # a killed run left it unwritten
            with atomic_path(out / f"{name}.tar") as tmp, open(tmp, "wb") as f:
                writer = wds.TarWriter(f, mtime=0)  # fixed mtime: the same input gives the same bytes
                for j, utt in enumerate(utts):
                    sample = {
                        "__key__": f"{j:09d}",
                        "flac": _flac(data.load_audio(utt)),
                        "json": {
                            "utt": utt,
                            "spk": data.utt2spk[utt],
                            "samples": samples[utt],
                            **({"text": data.text[utt]} if data.text and utt in data.text else {}),
                        },
                    }
                    for k, ls in enumerate(label_sets):
                        lab = np.asarray(ls.labels[utt])
                        sample[f"lab{k}.npy"] = lab.astype(np.int16 if ls.num_classes <= 32767 else np.int32)
                    if utt in ctm:
                        sample["ali.txt"] = "\n".join(ctm[utt]) + "\n"
                    writer.write(sample)
                writer.close()
            write_json(listing, [[f"{j:09d}", u, round(durations[u], 4)] for j, u in enumerate(utts)])
            if progress:
                log.info("%s: %d utterances, %.0f s", name, len(utts), sum(durations[u] for u in utts))
        shards.append({"name": name, "utterances": len(utts), "seconds": round(sum(durations[u] for u in utts), 3)})
    index = {**settings, "shards": shards}
    write_json(out / INDEX, index)
    return index


def _claim(out: Path, settings: Dict) -> None:
    """Refuse a folder holding shards made with other settings; record ours before writing any."""
    out.mkdir(parents=True, exist_ok=True)
    spec = out / "settings.json"
    if spec.is_file():
        old = json.loads(spec.read_text())
        diff = [f"{k}: {old.get(k)!r} there, {v!r} now" for k, v in settings.items() if old.get(k) != v]
        if diff:
            raise InputError(
                f"{out}: shards made with other settings ({'; '.join(diff)}); use another --out or remove the folder"
            )
    else:
        write_json(spec, settings)


def read_index(folder) -> Dict:
    path = Path(folder) / INDEX
    if not path.is_file():
        raise MissingInputError(
            f"{folder}: no {INDEX} (not a shard folder written by `speechssl data shard`, "
            "or its writing did not finish)"
        )
    return json.loads(path.read_text())


def read_listing(folder, name: str) -> List[List]:
    """``[[key, utterance id, seconds], ...]`` of one shard."""
    return json.loads((Path(folder) / f"{name}.json").read_text())


def iter_shard(folder, name: str, keys: Optional[set] = None):
    """``(key, members)`` of a shard, in file order; ``members`` maps extension -> bytes. With ``keys``,
    members of other samples are skipped without being kept."""
    import tarfile

    path = Path(folder) / f"{name}.tar"
    current, members = None, {}
    with tarfile.open(path, mode="r|") as tar:
        for info in tar:
            if not info.isfile():
                continue
            key, _, ext = info.name.partition(".")
            if key != current:
                if current is not None and (keys is None or current in keys):
                    yield current, members
                current, members = key, {}
            if keys is None or key in keys:
                members[ext] = tar.extractfile(info).read()
        if current is not None and (keys is None or current in keys):
            yield current, members


def decode_sample(members: Dict[str, bytes], num_label_sets: int):
    """``(wav float32 [T], meta dict, [labels int64 ...], ctm lines)`` of one sample's members."""
    wav, sr = sf.read(io.BytesIO(members["flac"]), dtype="float32")
    if sr != SAMPLE_RATE:
        raise InputError(f"shard sample {json.loads(members['json'])['utt']}: {sr} Hz, expected {SAMPLE_RATE}")
    meta = json.loads(members["json"])
    labels = [np.load(io.BytesIO(members[f"lab{k}.npy"])).astype(np.int64) for k in range(num_label_sets)]
    ali = members.get("ali.txt", b"").decode().splitlines()
    return wav, meta, labels, ali


__all__ = ["decode_sample", "iter_shard", "plan_shards", "read_index", "read_listing", "shard_name", "write_shards"]
