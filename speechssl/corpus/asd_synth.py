"""A synthetic audio-visual active speaker set from the mini corpus, in the UniTalk / AVA-ActiveSpeaker layout.

Each clip (a few seconds, 25 fps) shows 1-3 rendered faces (112 x 112 grayscale). A *talker* face's mouth
opens with the amplitude envelope of its own utterance, which is in the soundtrack; a *silent talker*'s
mouth follows an utterance that is not in the soundtrack; sometimes an *off-screen* voice speaks with no
face. Faces move their heads, blink, and carry pixel noise; talkers take turns and overlap. A face-frame is
``SPEAKING_AUDIBLE`` when its own utterance has a non-silence phone there (the corpus's alignments), so
neither the audio alone (which face?) nor the video alone (silent talkers move their mouths) is enough.

Written like AVA::

    <out>/csv/<split>_orig.csv                      video_id, frame_timestamp, entity_box_x1..y2, label,
                                                    entity_id, label_id, instance_id
    <out>/csv/<split>_<subset>.csv                  UniTalk-style subsets: overlap, noise, visual, offscreen
    <out>/clips_videos/<split>/<video>/<entity>/<t>.jpg
    <out>/clips_audios/<split>/<video>/<entity>.wav
"""

from __future__ import annotations

import csv
import json
import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..audio.io import save
from ..constants import SAMPLE_RATE
from ..data.ava_csv import read_ava_csv
from ..data.kaldi_dir import DataDir
from ..errors import MissingInputError
from ..utils.atomic import atomic_path, write_text

log = logging.getLogger(__name__)
FPS = 25
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS  # 640
FACE = 112
HEADER = [
    "video_id",
    "frame_timestamp",
    "entity_box_x1",
    "entity_box_y1",
    "entity_box_x2",
    "entity_box_y2",
    "label",
    "entity_id",
    "label_id",
    "instance_id",
]


@dataclass
class AsdSynthConfig:
    clips: int = 200
    seconds: float = 4.0
    max_faces: int = 3
    silent_talker_prob: float = 0.25
    offscreen_prob: float = 0.3
    noisy_prob: float = 0.3  # clips at 5 dB SNR (the rest at 20 dB)
    seed: int = 0


def frame_envelope(wav: np.ndarray) -> np.ndarray:
    """``[T]`` 16 kHz -> ``[T / 640]`` RMS per video frame, scaled to 0..1 by the utterance's 95th percentile."""
    n = len(wav) // SAMPLES_PER_FRAME
    rms = np.sqrt(np.mean(wav[: n * SAMPLES_PER_FRAME].reshape(n, SAMPLES_PER_FRAME) ** 2, axis=1))
    top = np.percentile(rms, 95) if n else 1.0
    return np.clip(rms / max(top, 1e-6), 0, 1)


def speech_frames(phones: List[Tuple[float, float, str]], n: int) -> np.ndarray:
    """``[(start, end, phone)]`` seconds -> ``[n]`` bool: a non-silence phone covers the frame's centre."""
    centres = (np.arange(n) + 0.5) / FPS
    active = np.zeros(n, bool)
    for s, e, p in phones:
        if p != "SIL":
            active |= (centres >= s) & (centres < e)
    return active


def render_face(
    opening: np.ndarray, blink: np.ndarray, shift: np.ndarray, look: Dict[str, float], rng: np.random.Generator
) -> np.ndarray:
    """``[F]`` mouth opening 0..1, ``[F]`` bool blinks, ``[F, 2]`` head shift (px) -> ``[F, 112, 112]`` uint8."""
    F = len(opening)
    yy, xx = np.mgrid[0:FACE, 0:FACE].astype(np.float32)
    yy, xx = yy[None] - shift[:, 1, None, None], xx[None] - shift[:, 0, None, None]
    cx, cy = FACE / 2, FACE / 2
    face = ((xx - cx) / look["face_w"]) ** 2 + ((yy - cy) / look["face_h"]) ** 2 <= 1
    img = np.full((F, FACE, FACE), look["background"], np.float32)
    img[face] = look["skin"]
    eye_h = np.where(blink, 0.8, look["eye_h"])[:, None, None]
    for ex in (cx - look["eye_dx"], cx + look["eye_dx"]):
        eye = ((xx - ex) / 6.0) ** 2 + ((yy - (cy - 14)) / eye_h) ** 2 <= 1
        img[eye] = 30
    mouth_h = (1.0 + 11.0 * opening)[:, None, None]
    mouth = ((xx - cx) / look["mouth_w"]) ** 2 + ((yy - (cy + 22)) / mouth_h) ** 2 <= 1
    img[mouth] = 40
    img += rng.normal(0, look["noise"], img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _look(rng: random.Random) -> Dict[str, float]:
    return {
        "face_w": rng.uniform(34, 44),
        "face_h": rng.uniform(42, 50),
        "skin": rng.uniform(140, 220),
        "background": rng.uniform(20, 90),
        "eye_dx": rng.uniform(12, 17),
        "eye_h": rng.uniform(3, 5),
        "mouth_w": rng.uniform(10, 16),
        "noise": rng.uniform(4, 14),
    }


def _place(wav: np.ndarray, phones, total: int, rng: random.Random) -> Tuple[np.ndarray, list]:
    """Put an utterance at a random offset of a ``total``-sample track (cropped if longer)."""
    track = np.zeros(total, np.float32)
    if len(wav) >= total:
        start = rng.randrange(0, len(wav) - total + 1)
        track[:] = wav[start : start + total]
        off = -start / SAMPLE_RATE
    else:
        start = rng.randrange(0, total - len(wav) + 1)
        track[start : start + len(wav)] = wav
        off = start / SAMPLE_RATE
    return track, [(s + off, e + off, p) for s, e, p in phones]


def _smooth(x: np.ndarray) -> np.ndarray:
    k = np.array([0.25, 0.5, 0.25])
    return np.convolve(np.pad(x, 1, mode="edge"), k, mode="valid")


def make_clip(utts: List[Tuple[str, np.ndarray, list]], cfg: AsdSynthConfig, rng: random.Random) -> dict:
    """One clip from distinct-speaker utterances ``(utt, wav, phones)``: audio, faces, labels, conditions."""
    total = int(cfg.seconds * SAMPLE_RATE)
    F = total // SAMPLES_PER_FRAME
    nprng = np.random.default_rng(rng.randrange(2**31))
    n_faces = rng.randint(1, cfg.max_faces)
    pool = list(utts)
    rng.shuffle(pool)
    audio = np.zeros(total, np.float32)
    faces, conditions = [], set()
    speaking_tracks = []
    for _ in range(n_faces):
        utt, wav, phones = pool.pop()
        track, placed = _place(wav, phones, total, rng)
        silent = rng.random() < cfg.silent_talker_prob
        if silent:
            conditions.add("visual")
            labels = np.zeros(F, bool)
        else:
            audio += track
            labels = speech_frames(placed, F)
            speaking_tracks.append(labels)
        opening = _smooth(frame_envelope(track)[:F]) * speech_frames(placed, F)
        blink = np.zeros(F, bool)
        for _ in range(rng.randint(0, 3)):
            b = rng.randrange(F)
            blink[b : b + 3] = True
        phase, amp = rng.uniform(0, 6.28), rng.uniform(1, 6)
        t = np.arange(F) / FPS
        shift = np.stack(
            [amp * np.sin(2 * np.pi * 0.3 * t + phase), 0.5 * amp * np.cos(2 * np.pi * 0.2 * t + phase)], 1
        )
        shift += np.cumsum(nprng.normal(0, 0.3, (F, 2)), 0)
        frames = render_face(opening, blink, shift, _look(rng), nprng)
        faces.append({"source": utt, "silent": silent, "labels": labels, "frames": frames})
    if rng.random() < cfg.offscreen_prob and pool:
        utt, wav, phones = pool.pop()
        track, _ = _place(wav, phones, total, rng)
        audio += 0.7 * track
        conditions.add("offscreen")
    if len(speaking_tracks) > 1 and np.any(np.sum(speaking_tracks, 0) > 1):
        conditions.add("overlap")
    snr = 5.0 if rng.random() < cfg.noisy_prob else 20.0
    if snr < 10:
        conditions.add("noise")
    power = float(np.mean(audio**2)) or 1e-4
    audio += nprng.normal(0, np.sqrt(power / 10 ** (snr / 10)), total).astype(np.float32)
    audio *= 0.5 / max(float(np.abs(audio).max()), 1e-6)
    return {"audio": audio, "faces": faces, "conditions": sorted(conditions), "snr": snr}


def _instances(labels: np.ndarray) -> List[int]:
    """Run index of each frame's label (AVA's instance ids number the entity's label runs)."""
    runs = np.concatenate([[0], np.cumsum(labels[1:] != labels[:-1])])
    return runs.tolist()


def write_clip(out: Path, split: str, video_id: str, clip: dict, start_time: float = 900.0) -> List[list]:
    """JPG frames + WAV per entity; returns the CSV rows."""
    from PIL import Image

    rows = []
    n = len(clip["faces"])
    for i, face in enumerate(clip["faces"]):
        entity = f"{video_id}_{start_time:.0f}_{start_time + 60:.0f}:{i}"
        vdir = out / "clips_videos" / split / video_id / entity
        vdir.mkdir(parents=True, exist_ok=True)
        adir = out / "clips_audios" / split / video_id
        adir.mkdir(parents=True, exist_ok=True)
        save(adir / f"{entity}.wav", clip["audio"], SAMPLE_RATE)
        x1 = (i + 0.1) / n
        box = [round(x1, 3), 0.2, round(x1 + 0.8 / n, 3), 0.8]
        inst = _instances(face["labels"])
        for t, (frame, lab) in enumerate(zip(face["frames"], face["labels"])):
            ts = f"{start_time + t / FPS:.2f}"
            Image.fromarray(frame, mode="L").save(vdir / f"{ts}.jpg", quality=90)
            label = "SPEAKING_AUDIBLE" if lab else "NOT_SPEAKING"
            rows.append([video_id, ts, *box, label, entity, int(lab), f"{entity}:{inst[t]}"])
    return rows


def synthesize_asd_set(data_dirs: Dict[str, str], out, cfg_by_split: Dict[str, AsdSynthConfig]) -> dict:
    """``{split: mini-corpus data dir}`` -> the set under ``out``; a split already written (its CSV) is kept."""
    out = Path(out)
    (out / "csv").mkdir(parents=True, exist_ok=True)
    summary = {}
    for split, data_dir in data_dirs.items():
        final = out / "csv" / f"{split}_orig.csv"
        if final.is_file():
            summary[split] = json.loads((out / "csv" / f"{split}_summary.json").read_text())
            continue
        cfg = cfg_by_split[split]
        d = DataDir.read(data_dir)
        ctm = Path(data_dir) / "alignments.ctm"
        if not ctm.is_file():
            raise MissingInputError(f"{ctm}: the synthetic ASD set needs phone alignments (the mini corpus has them)")
        phones: Dict[str, list] = {}
        for line in ctm.read_text().splitlines():
            u, _, s, dur, p = line.split()
            phones.setdefault(u, []).append((float(s), float(s) + float(dur), p))
        by_spk = d.spk2utt
        rng = random.Random(cfg.seed)
        rows, subsets, frames = [], {}, 0
        for c in range(cfg.clips):
            spks = rng.sample(sorted(by_spk), min(len(by_spk), cfg.max_faces + 1))
            utts = []
            for s in spks:
                u = rng.choice(by_spk[s])
                utts.append((u, d.load_audio(u), phones.get(u, [])))
            clip = make_clip(utts, cfg, rng)
            vid = f"{split}{c:05d}"
            clip_rows = write_clip(out, split, vid, clip)
            rows += clip_rows
            frames += len(clip_rows)
            for cond in clip["conditions"]:
                subsets.setdefault(cond, []).extend(clip_rows)
        for name, rs in subsets.items():
            _write_csv(out / "csv" / f"{split}_{name}.csv", rs)
        pos = sum(r[8] for r in rows)
        summary[split] = {
            "clips": cfg.clips,
            "face_frames": frames,
            "speaking_share": round(pos / max(frames, 1), 3),
            "subsets": {k: len(v) for k, v in subsets.items()},
        }
        write_text(out / "csv" / f"{split}_summary.json", json.dumps(summary[split], indent=1))
        _write_csv(final, rows)  # last: the split is complete
    return summary


def _write_csv(path: Path, rows: List[list]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        w.writerows(rows)


def read_split(out, split: str, subset: Optional[str] = None) -> List[dict]:
    return read_ava_csv(Path(out) / "csv" / f"{split}_{subset or 'orig'}.csv")


# the synthetic set's splits and the mini-corpus data dir each is made from
ASD_SPLITS = {"train": "train", "val": "dev", "test": "test"}


def synthesize_asd_splits(data_root, out, clips: int = 200, seed: int = 0) -> dict:
    """``asd prepare --synthetic``: train from ``data_root/train`` with ``clips`` clips, val and test from
    ``dev`` and ``test`` with a fifth as many each; split ``i`` is seeded ``seed + i``."""
    sizes = (clips, max(1, clips // 5), max(1, clips // 5))
    cfgs = {split: AsdSynthConfig(clips=n, seed=seed + i) for i, (split, n) in enumerate(zip(ASD_SPLITS, sizes))}
    return synthesize_asd_set({s: str(Path(data_root) / d) for s, d in ASD_SPLITS.items()}, out, cfgs)
