"""Every hidden state of an upstream, extracted once per utterance and kept on disk for all tasks.

Frozen-upstream tasks train only small heads, so the upstream's forward pass is the expensive
part: it runs once per audio source, whatever task or split asks for it. Layout of the cache
folder of one upstream (``root``)::

    upstream.json              what the upstream is (its path, and its weights' size and mtime)
    part-NNNN/data/            a data dir of the utterances this part extracted (ids are source keys)
    part-NNNN/feats/           a `speechssl extract` folder: all layers, float16 .npy, resumable
    part-NNNN/done             written after the extraction finished

A source key is a hash of the audio entry (relative to the working directory when the file lies under it,
with its size) and segment times, so the same recording reached through different data dirs or utterance
ids is extracted once, and two clones of a recipe extract in the same order. A killed extraction
resumes inside its part; utterances new to the cache go into a new part.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Callable, Dict, List, Sequence

from ..data.kaldi_dir import DataDir
from ..errors import InputError
from ..pipelines.extract import committed_chunk_index, extract_features
from ..pipelines.windowed import Windowing
from ..utils.artifacts import FeatureSpec
from ..utils.atomic import write_text
from .states import DiskStates

log = logging.getLogger(__name__)


def source_key(data_dir, utt: str) -> str:
    """Stable key of an utterance's audio: its wav.scp entry (a file under the working directory by its path
    relative to it, so two clones of a recipe give the same keys), the file's size, and the segment bounds.

    The keys order the extraction's batches where durations tie, and a batch's padding moves float16 states
    by an ulp: keys that depended on where the clone lives made the same recipe's SUPERB PR heads differ
    between two clones (71.62 against 71.39 % PER)."""
    src, start, end = _abs_source(data_dir, utt)
    if os.path.isfile(src):
        rel = os.path.relpath(src)
        src = f"{rel if not rel.startswith('..') else src}|{os.path.getsize(src)}"
    return hashlib.sha1(f"{src}|{start}|{end}".encode()).hexdigest()[:20]


def upstream_fingerprint(spec: str, utts_per_batch: int = 1) -> Dict:
    """Identity of an upstream's cache: the spec, size and mtime of its weights when it is a path, and how many
    utterances shared a forward pass (batched states differ from single ones by float rounding)."""
    p = Path(spec)
    info = {"upstream": spec, "utts_per_batch": utts_per_batch}  # caches filled in batches before: a new key
    if p.exists():
        files = (
            sorted(p.glob("*.safetensors")) + sorted(p.glob("*.bin")) + sorted(p.glob("*.pt")) if p.is_dir() else [p]
        )
        info["path"] = str(p.resolve())
        info["weights"] = [[f.name, f.stat().st_size, int(f.stat().st_mtime)] for f in files]
    return info


def cache_dir_for(cache_root, spec: str, utts_per_batch: int = 1) -> Path:
    fp = upstream_fingerprint(spec, utts_per_batch)
    key = hashlib.sha1(json.dumps(fp, sort_keys=True).encode()).hexdigest()[:12]
    name = Path(spec).name if Path(spec).exists() else spec
    if name in ("final", "init") and Path(spec).exists():  # exp/hubert_it1/init -> hubert_it1_init
        name = Path(spec).resolve().parent.name + ("_init" if name == "init" else "")
    return Path(cache_root) / f"{name}-{key}"


def _abs_source(d, utt: str):
    src, start, end = d.audio_source(utt)
    return (os.path.abspath(src) if os.path.exists(src) else src), start, end


def _audio_seconds(src: str) -> float:
    import soundfile

    return soundfile.info(src).duration


def _parts(root: Path) -> List[Path]:
    return sorted(p for p in root.glob("part-*") if p.is_dir())


def _part_keys(part: Path) -> List[str]:
    return (part / "data" / "utt2spk").read_text().split()[0::2] if (part / "data" / "utt2spk").exists() else []


def load_cached_states(
    cache_root,
    spec: str,
    data_dirs: Sequence,
    load_upstream: Callable,
    batch_seconds: float = 40.0,
    progress: bool = True,
    device: str = "auto",
    utts_per_batch: int = 1,
):
    """``(DiskStates, frame_rate)`` over every utterance of ``data_dirs`` (DataDir objects), keyed by
    :func:`source_key`, extracting with ``load_upstream()`` what the cache of ``spec`` lacks. The states stay
    on disk (float16) and are read batch by batch.

    ``utts_per_batch=1`` (default): one utterance per forward pass, so its states are the same whichever tasks
    filled the cache before (a task run alone reproduces the recipe's). On 2 CPU cores the cost is small
    (``tools/bench_superb_cache.py``: the demo's HuBERT about 1x, its w2v-BERT about 1.6x). 0: batches of
    ``batch_seconds`` (GPUs)."""
    if utts_per_batch < 0:
        raise InputError(f"utts_per_batch must be >= 0 (0: batches of {batch_seconds:g} s), got {utts_per_batch}")
    root = cache_dir_for(cache_root, spec, utts_per_batch)
    root.mkdir(parents=True, exist_ok=True)
    write_text(root / "upstream.json", json.dumps(upstream_fingerprint(spec, utts_per_batch), indent=1))
    wanted: Dict[str, tuple] = {}
    for d in data_dirs:
        for u in d.utt_ids:
            wanted.setdefault(source_key(d, u), (d, u))
    model = None
    for _ in range(3):  # first finish a part a killed run left, then add one for what is new
        parts = _parts(root)
        unfinished = [p for p in parts if not (p / "done").exists()]
        have = {k for p in parts if (p / "done").exists() for k in _part_keys(p)}
        todo = sorted(set(wanted) - have)
        if unfinished:
            part = unfinished[0]
        elif todo:
            part = root / f"part-{len(parts):04d}"
            sources = {k: _abs_source(*wanted[k]) for k in todo}
            segmented = any(start or end is not None for _, start, end in sources.values())
            sub = DataDir(segments={} if segmented else None)
            for k, (src, start, end) in sources.items():
                sub.wav_scp[k], sub.utt2spk[k] = src, k  # recording id = utterance id = source key
                if segmented:
                    d, u = wanted[k]
                    if end is None:
                        end = start + (d.utt2dur[u] if d.utt2dur and u in d.utt2dur else _audio_seconds(src))
                    sub.segments[k] = (k, start, end)
            durs = {}
            for k in todo:
                d, u = wanted[k]
                if d.utt2dur and u in d.utt2dur:
                    durs[k] = d.utt2dur[u]
            sub.utt2dur = durs if len(durs) == len(todo) else None
            sub.write(part / "data")
        else:
            break
        if model is None:
            model = load_upstream()
        log.info("%s: extracting %d utterances into %s", spec, len(_part_keys(part)), part)
        extract_features(
            model,
            part / "data",
            part / "feats",
            "all",
            "npy",
            dtype="float16",
            batch_seconds=batch_seconds,
            chunk_seconds=600,
            progress=progress,
            model_name=spec,
            device=device,
            max_utts=utts_per_batch or None,
            windowing=Windowing(0),
        )  # whole utterances, as s3prl encodes them (VoxCeleb's run to 2 min)
        write_text(part / "done", "ok\n")
    index: Dict[str, tuple] = {}
    frame_rate = None
    for part in _parts(root):
        keys = set(_part_keys(part)) & set(wanted)
        if not keys:
            continue
        feats = part / "feats"
        spec = FeatureSpec.read(feats)
        frame_rate = spec.frame_rate
        for (rank, chunk), entry in committed_chunk_index(feats).items():
            files = [feats / f"layer{layer}" / f"chunk.{rank}.{chunk:05d}.npy" for layer in spec.layers]
            row = 0
            for utt, frames in zip(entry["utts"], entry["frames"]):
                if utt in keys:
                    index[utt] = (files, row, int(frames))
                row += int(frames)
    missing = set(wanted) - set(index)
    if missing:
        d, u = wanted[sorted(missing)[0]]
        raise RuntimeError(f"{root}: {len(missing)} utterances missing from the cache (first: {u} of {d.path})")
    return DiskStates(index, frame_rate), frame_rate
