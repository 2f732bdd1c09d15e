"""Feature extraction over a data dir into Kaldi ark/scp: batched, sharded, resumable.

``compute_features`` writes ``feats.<rank>.ark/.scp`` per shard (renamed into place only when
the shard is complete, so a killed job never leaves a half-written shard listed) and a merged
``feats.scp`` once every shard is there. CMVN is applied per utterance or per speaker, or
global stats are written to ``cmvn.ark`` for later use.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import numpy as np
import torch

from ..audio import features as F
from ..constants import KALDI_SCALE, SAMPLE_RATE
from ..data.batching import duration_batches
from ..data.kaldi_dir import DataDir
from ..errors import InputError, MissingInputError
from ..utils.atomic import write_json, write_text
from .batches import audio_batches
from .outputs import ArkWriter, claim_output, read_scp

log = logging.getLogger(__name__)


def feature_fn(kind: str, deltas: bool = False, **opts):
    """``wavs [B,T], lengths [B] -> (feats [B,F,D], counts [B])`` for ``fbank`` or ``mfcc``.
    ``opts`` are Kaldi option overrides (``num_mel_bins=40``, ``dither=0.0``...)."""
    if kind not in ("fbank", "mfcc"):
        raise InputError(f"unknown feature type {kind!r}: fbank or mfcc")
    base = F.fbank if kind == "fbank" else F.mfcc

    def fn(wavs, lengths):
        feats, counts = base(wavs, lengths, **opts)
        if deltas:
            feats = F.add_deltas(feats, lengths=counts)
        return feats, counts

    return fn


def check_options(kind: str, opts: Dict) -> None:
    """Kaldi options that would give empty or meaningless features fail here, naming the option."""
    for key in ("num_mel_bins", "num_ceps", "frame_length_ms", "frame_shift_ms", "sample_rate"):
        if key in opts and not (isinstance(opts[key], (int, float)) and opts[key] > 0):
            raise InputError(f"--opt {key}={opts[key]!r}: must be a positive number")
    if kind == "mfcc" and "num_ceps" in opts and opts["num_ceps"] > opts.get("num_mel_bins", 23):
        raise InputError(f"--opt num_ceps={opts['num_ceps']} is more than num_mel_bins={opts.get('num_mel_bins', 23)}")


def shard_utts(utts: List[str], nshard: int, rank: int) -> List[str]:
    """Contiguous shards of a sorted list of ids (rank is 0-based)."""
    if not 0 <= rank < nshard:
        raise InputError(f"rank {rank} out of range for nshard {nshard}")
    n = len(utts)
    return utts[n * rank // nshard : n * (rank + 1) // nshard]


def compute_features(
    data_dir,
    out_dir,
    kind: str = "mfcc",
    deltas: bool = False,
    cmvn: str = "none",
    nshard: int = 1,
    rank: int = 0,
    batch_seconds: float = 200.0,
    skip_bad: bool = False,
    progress: bool = True,
    scale: float = KALDI_SCALE,
    **opts,
) -> Path:
    """Compute features for a data dir shard; see module docstring. Returns the shard's scp.

    ``scale`` multiplies the [-1, 1] samples first: the default gives Kaldi's ``compute-fbank-feats`` /
    ``compute-mfcc-feats`` numbers (int16 scale); 1.0 gives the float-scale features of
    :func:`speechssl.audio.features.fbank` called on loaded audio (log energies lower by ln(32768^2))."""

    if cmvn not in ("none", "utt", "spk"):
        raise InputError(f"cmvn must be none, utt or spk, got {cmvn!r}")
    d = DataDir.read(data_dir)
    out = Path(out_dir)
    check_options(kind, opts)
    shift_ms = float(opts.get("frame_shift_ms", 10.0))
    claim_output(
        out,
        {
            "kind": kind,
            "deltas": deltas,
            "cmvn": cmvn,
            "scale": scale,
            "data": str(Path(data_dir).resolve()),
            "nshard": nshard,
            "frame_rate": 1000.0 / shift_ms,
            **{k: v for k, v in opts.items()},
        },
        "features",
    )
    scp = out / f"feats.{rank}.scp"
    if scp.exists():
        log.info("%s exists: shard %d already done", scp, rank)
        return scp
    if cmvn == "spk":  # a speaker's statistics need all its utterances in one shard
        spk2utt = d.spk2utt
        utts = [u for spk in shard_utts(sorted(spk2utt), nshard, rank) for u in spk2utt[spk]]
    else:
        utts = shard_utts(d.utt_ids, nshard, rank)
    bad: Dict[str, str] = {}
    durs = d.utt2dur or d.compute_utt2dur(bad=bad if skip_bad else None)
    batches = duration_batches(utts, {u: durs.get(u, 0.0) for u in utts}, batch_seconds)
    features = _features_of(
        d,
        batches,
        feature_fn(kind, deltas, **opts),
        int(opts.get("sample_rate", SAMPLE_RATE)),
        scale,
        cmvn == "utt",
        skip_bad,
        bad,
        f"{kind} shard {rank}",
        progress,
        data_dir,
    )
    # written an utterance at a time (a shard's features are never all in memory); the scp comes last and its
    # presence marks the shard done
    done = 0
    if cmvn == "spk":  # a speaker's statistics need all its frames: raw features go through a temporary ark
        raw_scp = out / f"feats.{rank}.raw.scp"
        with ArkWriter(out / f"feats.{rank}.raw.ark", raw_scp) as raw:
            for u, f in features:
                raw.add(u, f)
        stats = F.speaker_cmvn_stats(((u, torch.tensor(f)) for u, f in read_scp(raw_scp)), d.utt2spk)
        with ArkWriter(out / f"feats.{rank}.ark", scp) as ark:
            for u, f in read_scp(raw_scp):
                ark.add(u, stats[d.utt2spk[u]].apply(torch.tensor(f)).numpy().astype(np.float32))
                done += 1
        for p in (raw_scp, out / f"feats.{rank}.raw.ark"):
            p.unlink()
    else:
        with ArkWriter(out / f"feats.{rank}.ark", scp) as ark:
            for u, f in features:
                ark.add(u, f)
                done += 1
    if bad:
        write_json(out / f"bad_utts.{rank}.json", bad)
    log.info("shard %d: %d utterances, %d skipped", rank, done, len(bad))
    return scp


def _features_of(
    d: DataDir,
    batches,
    fn,
    sr: int,
    scale: float,
    utt_cmvn: bool,
    skip_bad: bool,
    bad: Dict[str, str],
    what: str,
    progress: bool,
    data_dir,
) -> Iterator[Tuple[str, np.ndarray]]:
    """``(utt, [frames, dim] float32)`` batch by batch; an utterance shorter than one frame fails naming it, or
    (``skip_bad``) goes into ``bad``."""
    for ids, padded, lengths in audio_batches(d, batches, sr, skip_bad, bad, what, progress):
        with torch.no_grad():
            feats, counts = fn(padded.mul_(scale), lengths)  # in place: the batch is ours, and may be hours long
            if utt_cmvn:
                feats = F.utterance_cmvn(feats, counts)
        for i, (u, f, c) in enumerate(zip(ids, feats, counts)):
            if int(c) <= 0:  # shorter than one analysis window: Kaldi refuses it too
                reason = f"{lengths[i].item()} samples, shorter than one frame"
                if not skip_bad:
                    raise InputError(f"{data_dir}: utterance {u}: {reason} (--skip-bad leaves it out)")
                bad[u] = reason
                log.warning("skipping %s: %s", u, reason)
                continue
            yield u, f[: int(c)].numpy().astype(np.float32)


def merge_shards(out_dir, nshard: int) -> Path:
    """Concatenate ``feats.N.scp`` into ``feats.scp``; fails naming any missing shard."""
    out = Path(out_dir)
    missing = [r for r in range(nshard) if not (out / f"feats.{r}.scp").exists()]
    if missing:
        raise MissingInputError(f"{out}: shards {missing} not finished")
    lines = []
    for r in range(nshard):
        lines += (out / f"feats.{r}.scp").read_text().splitlines()
    lines.sort(key=lambda l: l.split()[0].encode())
    write_text(out / "feats.scp", "\n".join(lines) + "\n")  # per-process temporary: ranks may merge at once
    return out / "feats.scp"
