"""faiss k-means for HuBERT targets: learn centroids on sampled frames, assign every utterance.

Learning keeps a uniform random sample of frames whose size never exceeds ``max_frames``: each
frame is kept with probability ``p`` (``fraction`` at first); whenever the buffer overflows,
half of it is dropped at random and ``p`` halves, so the kept frames stay a uniform sample of
everything read and memory stays at ``max_frames x dim x 4`` bytes (plus faiss's assignment
buffers, about 12 bytes a frame). Initial centroids come from k-means++ seeding on up to
``init_frames`` of the sample, one seeding per restart; the restart with the lowest inertia wins.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

import numpy as np
from tqdm import tqdm

from ..errors import InputError, MissingInputError
from ..pipelines.features import shard_utts
from ..utils.atomic import atomic_path, write_json, write_text
from ..utils.readers import reading
from .features import FeatureSource
from .spec import SCHEMA as SPEC_SCHEMA
from .spec import KMeansSpec

log = logging.getLogger(__name__)


def sample_frames(
    feats: Iterable[Tuple[str, np.ndarray]], fraction: float, max_frames: int, seed: int = 0
) -> Tuple[np.ndarray, int]:
    """Uniform sample of the frames of ``feats`` (see module doc). Returns ``(sample [N, D], total frames)``."""
    if not 0 < fraction <= 1:
        raise InputError(f"fraction must be in (0, 1], got {fraction}")
    rng = np.random.default_rng(seed)
    p, parts, kept, total = fraction, [], 0, 0
    for utt, a in feats:
        if a.ndim != 2 or not np.isfinite(a).all():
            raise InputError(
                f"utterance {utt}: features must be a finite [frames, dim] matrix, "
                f"got shape {a.shape}{'' if a.ndim != 2 else ' with NaN/inf'}"
            )
        total += len(a)
        take = a[rng.random(len(a)) < p]
        if len(take):
            parts.append(take)
            kept += len(take)
        while kept > max_frames:  # thin everything kept so far by half: still uniform, at rate p/2
            buf = np.concatenate(parts)
            buf = buf[rng.random(len(buf)) < 0.5]
            parts, kept, p = [buf], len(buf), p / 2
    if not parts:
        raise InputError("no frames to learn k-means from (empty features?)")
    return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32), total


def kmeans_pp(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding (Arthur & Vassilvitskii, 2007) with float64 distance bookkeeping. ``[k, D]``."""
    n = len(x)
    x64 = x.astype(np.float64)
    sq = (x64**2).sum(1)
    centres = np.empty((k, x.shape[1]), dtype=np.float32)
    first = int(rng.integers(n))
    centres[0] = x[first]
    d2 = np.maximum(sq - 2 * x64 @ x64[first] + sq[first], 0)
    for i in range(1, k):
        total = d2.sum()
        j = int(rng.choice(n, p=d2 / total)) if total > 0 else int(rng.integers(n))
        centres[i] = x[j]
        d2 = np.minimum(d2, np.maximum(sq - 2 * x64 @ x64[j] + sq[j], 0))
    return centres


@dataclass
class KMeansModel:
    """Centroids ``[k, D]`` plus what they were learnt on (``spec``)."""

    centroids: np.ndarray
    spec: dict

    @property
    def k(self) -> int:
        return len(self.centroids)

    def save(self, out_dir) -> Path:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        with atomic_path(out / "centroids.npy") as tmp, open(tmp, "wb") as f:
            np.save(f, self.centroids)
        write_json(out / "kmeans.json", self.spec)  # last: the model is complete
        return out

    @classmethod
    def load(cls, model_dir) -> KMeansModel:
        d = Path(model_dir)
        if not (d / "kmeans.json").exists():
            raise MissingInputError(f"{d}: no kmeans.json (run `speechssl kmeans learn` first)")
        spec = KMeansSpec.read(d).raw  # validated: k, dim, source.frame_rate, schema
        with reading(d / "centroids.npy", "NumPy array"):
            centroids = np.load(d / "centroids.npy")
        return cls(centroids, spec)

    def index(self, threads: Optional[int] = None, device: str = "cpu"):
        import faiss

        if threads:
            faiss.omp_set_num_threads(threads)
        idx = faiss.IndexFlatL2(self.centroids.shape[1])
        idx.add(np.ascontiguousarray(self.centroids, dtype=np.float32))
        return faiss.index_cpu_to_all_gpus(idx) if faiss_on_gpu(device) else idx

    def predict(self, x: np.ndarray, index=None) -> np.ndarray:
        """Nearest centroid of each row of ``x [N, D]``: ``[N]`` int64."""
        if x.shape[1] != self.centroids.shape[1]:
            raise InputError(f"features have dim {x.shape[1]}, centroids {self.centroids.shape[1]}")
        _, labels = (index or self.index()).search(np.ascontiguousarray(x, dtype=np.float32), 1)
        return labels[:, 0]


def faiss_on_gpu(device: str) -> bool:
    """Whether faiss should run on GPUs for ``device`` (``auto``: when faiss was built with GPU support and
    sees one). Asking for ``cuda`` with a CPU-only faiss is said and runs on the CPU."""
    import faiss

    gpus = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
    if str(device).startswith("cuda") and not gpus:
        log.warning(
            "k-means: --device %s, but this faiss has no GPU support (faiss-cpu): running on the CPU; "
            "install faiss-gpu to use GPUs",
            device,
        )
    return str(device) != "cpu" and gpus > 0


def learn_kmeans(
    source: FeatureSource,
    k: int,
    out_dir=None,
    fraction: float = 1.0,
    max_frames: int = 1_000_000,
    niter: int = 100,
    restarts: int = 3,
    seed: int = 0,
    init: str = "kmeans++",
    init_frames: Optional[int] = None,
    threads: Optional[int] = None,
    device: str = "auto",
    utt_fraction: float = 1.0,
) -> KMeansModel:
    """faiss k-means with ``k`` clusters on a sample of ``source``; saved to ``out_dir`` when given.

    Memory: the sample holds at most ``2 x max_frames`` frames of ``D`` float32 while it is drawn (it is
    halved whenever it passes ``max_frames``), i.e. ``8 x max_frames x D`` bytes, whatever the corpus size.
    ``utt_fraction`` < 1 reads only that share of the utterances (a seeded random choice, as fairseq's
    ``learn_kmeans.py`` samples a percent of the files): at scale the reading, not the memory, is the cost."""
    import faiss

    if init not in ("kmeans++", "random"):
        raise InputError(f"init must be 'kmeans++' or 'random', got {init!r}")
    for name, value in (("k", k), ("niter", niter), ("restarts", restarts), ("max_frames", max_frames)):
        if value < 1:
            raise InputError(f"-{'-' if len(name) > 1 else ''}{name.replace('_', '-')} must be >= 1, got {value}")
    if not 0 < fraction <= 1:
        raise InputError(f"--fraction must be in (0, 1], got {fraction}")
    if not 0 < utt_fraction <= 1:
        raise InputError(f"--utt-fraction must be in (0, 1], got {utt_fraction}")
    if threads:
        faiss.omp_set_num_threads(threads)
    t0 = time.time()
    feats, utts_read = source, None
    if utt_fraction < 1:
        utts = source.utt_ids()
        chosen = sorted(
            np.random.default_rng(seed + 1)
            .choice(len(utts), max(1, round(utt_fraction * len(utts))), replace=False)
            .tolist()
        )
        feats, utts_read = source.subset([utts[i] for i in chosen]), len(chosen)
    x, total = sample_frames(feats, fraction, max_frames, seed)
    if len(x) < k:
        raise InputError(f"{source.path}: only {len(x)} frames sampled for k={k}; raise the fraction")
    if x.shape[1] == 0:
        raise InputError(f"{source.path}: the features have no dimensions (shape {x.shape})")
    if not np.isfinite(x).all():
        raise InputError(
            f"{source.path}: the sampled frames hold NaN or Inf (bad audio or features?); "
            "k-means would place centroids there"
        )
    t_read = time.time() - t0
    init_frames = init_frames or max(50_000, 40 * k)
    rng = np.random.default_rng(seed)
    gpu = faiss_on_gpu(device)
    best = None
    runs = []
    for r in range(restarts):
        km = faiss.Kmeans(
            x.shape[1], k, niter=niter, seed=seed + r, max_points_per_centroid=1 << 30, verbose=False, gpu=gpu
        )
        start = None
        if init == "kmeans++":
            sub = x[rng.choice(len(x), min(len(x), init_frames), replace=False)]
            start = kmeans_pp(sub, k, rng)
        km.train(x, init_centroids=start)
        inertia = float(km.obj[-1]) / len(x)  # mean squared distance per frame
        runs.append(round(inertia, 6))
        log.info("k-means restart %d/%d: inertia %.4f per frame", r + 1, restarts, inertia)
        if best is None or inertia < best[0]:
            best = (inertia, km.centroids.copy())
    spec = {
        "schema": SPEC_SCHEMA,
        "k": k,
        "dim": int(x.shape[1]),
        "source": source.describe(),
        "frames_total": total,
        "frames_used": len(x),
        "fraction_requested": fraction,
        "max_frames": max_frames,
        "utt_fraction": utt_fraction,
        **({"utterances_read": utts_read} if utts_read is not None else {}),
        "init": init,
        "niter": niter,
        "restarts": restarts,
        "seed": seed,
        "gpu": gpu,
        "inertia_per_frame": best[0],
        "inertia_per_restart": runs,
        "sample_mib": round(x.nbytes / 2**20, 1),
        "seconds": {"read": round(t_read, 1), "train": round(time.time() - t0 - t_read, 1)},
    }
    model = KMeansModel(best[1], spec)
    if out_dir is not None:
        model.save(out_dir)
    return model


def _shard(utts: List[str], nshard: int, rank: int) -> List[str]:
    return shard_utts(utts, nshard, rank)


def assign_labels(
    model: KMeansModel,
    source: FeatureSource,
    out_dir,
    nshard: int = 1,
    rank: int = 0,
    batch_frames: int = 100_000,
    threads: Optional[int] = None,
    progress: bool = True,
    device: str = "auto",
) -> Dict:
    """Label shard ``rank`` of ``source`` into ``out_dir/labels.RANK.txt`` (``utt l1 l2 ...``).

    Features stream from disk; frames are searched in batches of about ``batch_frames``. The
    shard file is written under a temporary name and renamed when complete, so a finished shard
    is skipped on rerun and a killed one is redone. When every shard is there, ``labels.txt``
    holds them all, sorted by utterance.
    """

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    earlier = out / "kmeans.json"
    if earlier.exists():  # labels of another model (or features) must never be mixed with these
        prev = KMeansSpec.read(earlier).raw  # a broken or foreign kmeans.json: one error naming it
        keys = ("k", "dim", "inertia_per_frame", "seed", "source")
        clash = [k for k in keys if prev.get(k) != model.spec.get(k)]
        if clash:
            raise InputError(
                f"{out} holds labels of another k-means model (differs in {', '.join(clash)}); "
                "remove it or use another --out"
            )
    else:  # written before any label: a shard is never left without the model that made it
        write_json(earlier, model.spec)
    final = out / f"labels.{rank}.txt"
    summary = {"rank": rank, "nshard": nshard}
    if final.exists():
        log.info("%s exists: shard %d already done", final, rank)
        summary["skipped"] = True
    else:
        utts = _shard(source.utt_ids(), nshard, rank)
        index = model.index(threads, device)
        pending: List[Tuple[str, np.ndarray]] = []
        frames = 0
        with atomic_path(final) as tmp, open(tmp, "w") as f:

            def flush():
                nonlocal pending
                if not pending:
                    return
                labels = model.predict(np.concatenate([a for _, a in pending]), index)
                offsets = np.cumsum([0] + [len(a) for _, a in pending])
                for (u, a), s, e in zip(pending, offsets[:-1], offsets[1:]):
                    if e - s != len(a):  # the label-count check: one label per feature frame
                        raise InputError(f"utterance {u}: {e - s} labels for {len(a)} feature frames")
                    f.write(format_label_line(u, labels[s:e]))
                pending = []

            for u, a in tqdm(
                source.subset(utts), total=len(utts), desc=f"assign shard {rank}", unit="utt", disable=not progress
            ):
                if a.ndim != 2 or len(a) == 0:
                    raise InputError(f"utterance {u}: no feature frames (shape {a.shape})")
                if not np.isfinite(a).all():
                    raise InputError(f"utterance {u}: its features hold NaN or Inf; no label can be given")
                pending.append((u, a))
                frames += len(a)
                if sum(len(b) for _, b in pending) >= batch_frames:
                    flush()
            flush()
        summary.update(utterances=len(utts), frames=frames)
    if all((out / f"labels.{r}.txt").exists() for r in range(nshard)):
        summary["merged"] = str(merge_label_shards(out, nshard, rank))
    return summary


def merge_label_shards(out_dir, nshard: int, rank: int = 0) -> Path:
    out = Path(out_dir)
    lines = []
    for r in range(nshard):
        lines.extend(l for l in (out / f"labels.{r}.txt").read_text().splitlines() if l)
    lines.sort(key=lambda l: l.split(maxsplit=1)[0])
    write_text(out / "labels.txt", "\n".join(lines) + "\n")  # per-process temporary: ranks may finish together
    return out / "labels.txt"


def format_label_line(utt: str, labels) -> str:
    """One line of ``labels.txt``: ``utt l1 l2 ...\\n`` (the one place the format is written; :func:`read_labels`
    reads it)."""
    return utt + " " + " ".join(map(str, np.asarray(labels).tolist())) + "\n"


def read_labels(path, keep: Optional[Iterable[str]] = None) -> Dict[str, np.ndarray]:
    """``labels.txt`` (or a folder holding one) -> ``{utt: [frames] int64}``; a negative label fails naming the
    line (the range against k is checked where k is known, :func:`check_label_range`).

    ``keep``: the utterance ids in use; other lines are skipped unparsed (read a line at a time, so a labels file
    of a corpus far larger than the data dir costs little memory) and counted in an INFO line."""
    p = Path(path)
    if p.is_dir():
        p = p / "labels.txt"
    if not p.exists():
        raise MissingInputError(f"{p}: no labels (all shards of `speechssl kmeans assign` done?)")
    wanted = None if keep is None else set(keep)
    out, skipped = {}, 0
    with open(p) as f:
        for n, line in enumerate(f, 1):
            split = line.split(None, 1)
            if not split:
                continue
            head, rest = split[0], (split[1] if len(split) > 1 else "")
            if wanted is not None and head not in wanted:
                skipped += 1
                continue
            parts = rest.split()
            if not parts:
                raise InputError(f"{p}:{n}: utterance {head} has no labels")
            try:
                out[head] = np.array(parts, dtype=np.int64)
            except ValueError:
                raise InputError(f"{p}:{n}: labels of {head} are not integers") from None
            if out[head].min() < 0:
                raise InputError(f"{p}:{n}: utterance {head} has a negative label ({out[head].min()})")
    if skipped:
        log.info("%s: %d utterances read, %d others skipped (not in the data dir)", p, len(out), skipped)
    return out


def check_label_range(labels: Dict[str, np.ndarray], k: int, where) -> None:
    """Every label of ``labels`` in ``[0, k)``; the first utterance that is not fails, naming ``where``."""
    for u, lab in labels.items():
        if len(lab) and (lab.min() < 0 or lab.max() >= k):
            raise InputError(
                f"{where}: utterance {u} has label {int(lab.max() if lab.max() >= k else lab.min())} "
                f"outside 0..{k - 1} (the k of its kmeans.json)"
            )
