"""Layer features of an upstream over a data dir, to Kaldi ark/scp or ``.npy`` shards.

Layout of ``out_dir`` (``R`` = rank, ``K`` = chunk)::

    spec.json                         model, layers, format, frame rate, dims
    layerL/chunk.R.K.ark + .scp       (format "ark")  or  layerL/chunk.R.K.npy  (format "npy": frames
                                      of the chunk's utterances concatenated, ``[N, D]``)
    index.R.K.json                    the chunk's utterances and frame counts: written last, after every
                                      layer's file, so it is the commit record of the chunk
    bad_utts.R.json                   utterances skipped with ``skip_bad`` and why
    layerL/feats.R.scp, done.R        when rank R has finished (ark format: its chunks' scps joined)
    layerL/feats.scp                  once every rank has finished

A rerun reads the committed chunks, removes files of an uncommitted (killed) chunk, and carries
on with the utterances not yet done. :func:`read_features` iterates ``(utt, array)`` for a layer.
"""

import json
import logging
import re
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from ..constants import SAMPLE_RATE
from ..data.batching import duration_batches, padding_ratio
from ..data.kaldi_dir import DataDir
from ..errors import InputError
from ..utils.artifacts import FeatureSpec
from ..utils.atomic import atomic_path, write_json, write_text
from ..utils.device import resolve_device
from ..utils.memory import release_large_allocations
from .batches import audio_batches
from .features import shard_utts
from .outputs import claim_output, model_hash, read_scp, write_ark_scp
from .windowed import Windowing, windowed_states

log = logging.getLogger(__name__)


def parse_layers(spec: Union[str, Sequence[int]], num_layers: int) -> List[int]:
    """``"6,9"`` / ``"all"`` / ``[6, 9]`` -> sorted layer indices in ``[0, num_layers]``."""
    if isinstance(spec, str):
        if spec.strip() == "all":
            return list(range(num_layers + 1))
        try:
            spec = [int(x) for x in spec.split(",") if x.strip()]
        except ValueError:
            raise InputError(f"--layers must be 'all' or comma-separated integers, got {spec!r}") from None
    bad = [l for l in spec if not 0 <= l <= num_layers]
    if bad or not spec:
        raise InputError(f"layers {bad or spec} out of range: this model has hidden states 0..{num_layers}")
    return sorted(set(spec))


def _committed_chunks(out: Path, rank: int) -> Dict[int, dict]:
    chunks = {}
    for p in out.glob(f"index.{rank}.*.json"):
        m = re.fullmatch(rf"index\.{rank}\.(\d+)\.json", p.name)
        if m:
            chunks[int(m.group(1))] = json.loads(p.read_text())
    return chunks


def _remove_uncommitted(out: Path, rank: int, committed: Dict[int, dict]) -> int:
    removed = 0
    for p in list(out.glob(f"layer*/chunk.{rank}.*")) + list(out.glob(f"index.{rank}.*.tmp")):
        m = re.match(rf"chunk\.{rank}\.(\d+)\.", p.name)
        if p.suffix == ".tmp" or (m and int(m.group(1)) not in committed):
            p.unlink()
            removed += 1
    return removed


def _with(stem: Path, suffix: str) -> Path:
    return stem.with_name(stem.name + suffix)  # not with_suffix: "chunk.0.00001" has dots


def _write_chunk(layer_dir: Path, rank: int, k: int, utts: List[str], arrays: List[np.ndarray], fmt: str):
    stem = layer_dir / f"chunk.{rank}.{k:05d}"
    if fmt == "npy":
        with atomic_path(_with(stem, ".npy")) as tmp, open(tmp, "wb") as f:
            np.save(f, np.concatenate(arrays) if arrays else np.zeros((0, 0), np.float32))
        return
    write_ark_scp(_with(stem, ".ark"), _with(stem, ".scp"), dict(zip(utts, arrays)))


class _ChunkWriter:
    """Collects extracted utterances and commits them as one chunk per ``chunk_seconds`` of audio: every
    layer's file, then the chunk's index (its presence is the commit)."""

    def __init__(self, out: Path, rank: int, layers: List[int], fmt: str, first_chunk: int, chunk_seconds: float):
        self.out, self.rank, self.layers, self.fmt = out, rank, layers, fmt
        self.next_chunk, self.chunk_seconds = first_chunk, chunk_seconds
        self._reset()

    def _reset(self) -> None:
        self.utts: List[str] = []
        self.frames: List[int] = []
        self.arrays: Dict[int, List[np.ndarray]] = {layer: [] for layer in self.layers}
        self.seconds = 0.0

    def add(self, utts: List[str], frames: List[int], arrays: Dict[int, List[np.ndarray]], seconds: float) -> None:
        self.utts += utts
        self.frames += frames
        for layer in self.layers:
            self.arrays[layer] += arrays[layer]
        self.seconds += seconds
        if self.seconds >= self.chunk_seconds:
            self.commit()

    def commit(self) -> None:
        if not self.utts:
            return
        for layer in self.layers:
            _write_chunk(
                self.out / f"layer{layer}", self.rank, self.next_chunk, self.utts, self.arrays[layer], self.fmt
            )
        write_json(
            self.out / f"index.{self.rank}.{self.next_chunk:05d}.json", {"utts": self.utts, "frames": self.frames}
        )
        self.next_chunk += 1
        self._reset()


def _check_options(fmt: str, dtype: str) -> None:
    if fmt not in ("ark", "npy"):
        raise InputError(f"format must be 'ark' or 'npy', got {fmt!r}")
    if dtype not in ("float32", "float16"):
        raise InputError(f"dtype must be float32 or float16, got {dtype!r}")
    if dtype == "float16" and fmt == "ark":
        raise InputError("Kaldi ark matrices are float32: use --format npy for float16 features")


def _drop_too_short(model, ids, padded, lengths, skip_bad, bad, skipped, before_raise):
    """Utterances shorter than one output frame of ``model``: an error naming them, or (``skip_bad``) left out."""
    short = [i for i, n in enumerate(model.output_lengths(lengths).tolist()) if n <= 0]
    if not short:
        return ids, padded, lengths
    names = [f"{ids[i]} ({int(lengths[i])} samples)" for i in short]
    if not skip_bad:
        before_raise()
        raise InputError(
            f"utterances shorter than one output frame of the model: {', '.join(names)} (--skip-bad leaves them out)"
        )
    for i in short:
        bad[ids[i]] = f"{int(lengths[i])} samples, shorter than one output frame"
        skipped(ids[i], bad[ids[i]])
    keep = [i for i in range(len(ids)) if i not in short]
    return [ids[i] for i in keep], padded[keep], lengths[keep]


def extract_features(
    model,
    data_dir,
    out_dir,
    layers="all",
    fmt: str = "ark",
    nshard: int = 1,
    rank: int = 0,
    batch_seconds: float = 40.0,
    chunk_seconds: float = 1800.0,
    device: str = "auto",
    dtype: str = "float32",
    skip_bad: bool = False,
    progress: bool = True,
    model_name: Optional[str] = None,
    max_utts: Optional[int] = None,
    windowing: Windowing = Windowing(),
) -> Dict:
    """Extract ``layers`` of ``model`` (an upstream) for shard ``rank`` of ``data_dir``; see module doc.

    ``max_utts=1`` runs one utterance per forward pass: no padding, so an utterance's states do not depend on what
    it would have been batched with (batched, they move by float rounding, which can steer a small head's training).
    An utterance longer than ``windowing.max_seconds`` is encoded alone, window by window
    (:mod:`speechssl.pipelines.windowed`): its memory grows with its length, never with its square.

    Returns a summary: utterances done this run / before / skipped, frames, padding ratio.
    """
    _check_options(fmt, dtype)
    release_large_allocations()  # batch after batch of states: memory must follow what is held (utils.memory)
    layers = parse_layers(layers, model.num_layers)
    out = Path(out_dir)
    d = DataDir.read(data_dir)
    utts = shard_utts(d.utt_ids, nshard, rank)
    claim_output(out, _spec(model, model_name, layers, fmt, dtype, nshard, data_dir, windowing), "an extraction")
    for layer in layers:
        (out / f"layer{layer}").mkdir(exist_ok=True)
    committed = _committed_chunks(out, rank)
    removed = _remove_uncommitted(out, rank, committed)
    if removed:
        log.warning("%s: removed %d files of an interrupted chunk; redoing its utterances", out, removed)
    bad_path = out / f"bad_utts.{rank}.json"
    bad: Dict[str, str] = json.loads(bad_path.read_text()) if bad_path.exists() else {}
    done = {u for c in committed.values() for u in c["utts"]} | set(bad)
    todo = [u for u in utts if u not in done]
    durs = dict(d.utt2dur) if d.utt2dur else {}
    if any(u not in durs for u in todo):
        durs.update(d.compute_utt2dur(bad={} if skip_bad else None))  # unreadable ones fail again below
    batches = duration_batches(todo, durs, batch_seconds, max_utts)
    summary = {
        "utterances": len(utts),
        "done_before": len(utts) - len(todo),
        "extracted": 0,
        "skipped": 0,
        "windowed": 0,
        "frames": 0,
        "padding_ratio": round(padding_ratio(batches, durs), 4),
    }
    device = resolve_device(device)
    model = model.to(device).eval()
    np_dtype = np.float16 if dtype == "float16" else np.float32
    writer = _ChunkWriter(out, rank, layers, fmt, max(committed, default=-1) + 1, chunk_seconds)

    def skipped(utt: str, reason: str) -> None:
        write_json(bad_path, bad)
        summary["skipped"] += 1

    # on a bad file without --skip-bad, what is done is committed first: the rerun starts after it
    for ids, padded, lengths in audio_batches(
        d,
        batches,
        SAMPLE_RATE,
        skip_bad,
        bad,
        f"extract shard {rank}",
        progress,
        before_raise=writer.commit,
        on_skip=skipped,
    ):
        ids, padded, lengths = _drop_too_short(model, ids, padded, lengths, skip_bad, bad, skipped, writer.commit)
        if not ids:
            continue
        for group, arrays, windowed in _encode(model, ids, padded, lengths, layers, windowing, device, np_dtype):
            _add(writer, summary, group, arrays, sum(durs[u] for u in group))
            summary["windowed"] += windowed
    writer.commit()
    _finish_rank(out, rank, nshard, layers, fmt)
    return summary


def _spec(model, model_name, layers, fmt, dtype, nshard, data_dir, windowing: Windowing) -> Dict:
    """What ``spec.json`` records of an extraction: a rerun with anything else is refused."""
    return {
        "model": model_name,
        "layers": layers,
        "format": fmt,
        "dtype": dtype,
        "nshard": nshard,
        "data": str(Path(data_dir).resolve()),
        "frame_rate": SAMPLE_RATE / model.downsample_rate,
        "dim": model.hidden_size,
        "model_hash": model_hash(model),
        # None when every utterance is encoded whole: folders made before windowing existed stay valid
        "windowing": {"max_seconds": windowing.max_seconds, "context_seconds": windowing.context_seconds}
        if windowing.max_seconds
        else None,
    }


def _encode(model, ids, padded, lengths, layers, windowing, device, np_dtype):
    """``(ids, {layer: [array per utterance]}, windowed)`` of one batch: each utterance longer than
    ``windowing.max_seconds`` alone and window by window, then the others in one forward pass."""
    long_rows = [i for i, n in enumerate(lengths.tolist()) if windowing.applies(n)]
    for i in long_rows:
        log.warning(
            "utterance %s is %.0f s, longer than --max-seconds %g: encoded in windows of %g s with %g s of context "
            "on each side",
            ids[i],
            int(lengths[i]) / SAMPLE_RATE,
            windowing.max_seconds,
            windowing.max_seconds,
            windowing.context_seconds,
        )
        states = windowed_states(model, padded[i, : int(lengths[i])], layers, windowing, device)
        yield [ids[i]], {layer: [s.astype(np_dtype)] for layer, s in states.items()}, 1
    keep = [i for i in range(len(ids)) if i not in long_rows]
    if not keep:
        return
    if long_rows:
        ids, padded, lengths = [ids[i] for i in keep], padded[keep], lengths[keep]
    with torch.inference_mode():
        upstream = model(padded.to(device), lengths.to(device), num_layers=max(layers))
    frames = upstream.lengths.cpu().tolist()
    arrays = {
        layer: [h[i, :n].astype(np_dtype) for i, n in enumerate(frames)]
        for layer in layers
        for h in [upstream.hidden_states[layer].float().cpu().numpy()]
    }
    yield ids, arrays, 0


def _add(
    writer: "_ChunkWriter", summary: Dict, ids: List[str], arrays: Dict[int, List[np.ndarray]], seconds: float
) -> None:
    frames = [len(a) for a in arrays[next(iter(arrays))]]
    writer.add(ids, frames, arrays, seconds)
    summary["extracted"] += len(ids)
    summary["frames"] += sum(frames)


def _finish_rank(out: Path, rank: int, nshard: int, layers: List[int], fmt: str) -> None:
    chunks = sorted(_committed_chunks(out, rank))
    if fmt == "ark":
        for layer in layers:
            lines = []
            for k in chunks:
                lines += (out / f"layer{layer}" / f"chunk.{rank}.{k:05d}.scp").read_text().splitlines()
            write_text(out / f"layer{layer}" / f"feats.{rank}.scp", "".join(l + "\n" for l in lines))
    write_text(out / f"done.{rank}", f"{len(chunks)} chunks\n")
    if fmt == "ark" and all((out / f"done.{r}").exists() for r in range(nshard)):
        for layer in layers:
            lines = []
            for r in range(nshard):
                lines += (out / f"layer{layer}" / f"feats.{r}.scp").read_text().splitlines()
            lines.sort(key=lambda l: l.split(maxsplit=1)[0].encode())
            write_text(out / f"layer{layer}" / "feats.scp", "".join(l + "\n" for l in lines))


def committed_chunk_index(out_dir) -> Dict[Tuple[int, int], dict]:
    """``{(rank, chunk): {"utts": [...], "frames": [...]}}`` of every committed chunk of an extraction folder."""
    out = Path(out_dir)
    spec = FeatureSpec.read(out)
    return {
        (rank, k): index for rank in range(spec.nshard) for k, index in sorted(_committed_chunks(out, rank).items())
    }


def extraction_hop(out_dir) -> int:
    """Samples per frame of an extraction folder's model, from its ``spec.json`` (no model is loaded)."""
    return round(SAMPLE_RATE / FeatureSpec.read(out_dir).frame_rate)


def read_features(out_dir, layer: int) -> Iterator[Tuple[str, np.ndarray]]:
    """``(utt, [frames, dim])`` for every committed utterance of ``layer``, in chunk order."""
    out = Path(out_dir)
    spec = FeatureSpec.read(out)
    if layer not in spec.layers:
        raise InputError(f"{out}: layer {layer} was not extracted (have {spec.layers})")
    for rank in range(spec.nshard):
        for k, index in sorted(_committed_chunks(out, rank).items()):
            stem = out / f"layer{layer}" / f"chunk.{rank}.{k:05d}"
            if spec["format"] == "npy":
                arr = np.load(_with(stem, ".npy"), mmap_mode="r")
                offsets = np.cumsum([0] + index["frames"])
                for u, a, b in zip(index["utts"], offsets[:-1], offsets[1:]):
                    yield u, np.asarray(arr[a:b])
            else:
                yield from read_scp(_with(stem, ".scp"))
