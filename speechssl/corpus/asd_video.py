"""Raw videos + AVA / UniTalk CSV boxes -> the face-crop and audio layout the ASD tasks read (PyAV).

For each entity track of a CSV, every row's frame is the decoded video frame nearest to its
``frame_timestamp`` (AVA timestamps are seconds into the movie); the relative box, widened by
``margin`` of its size on each side (as the TalkNet / Light-ASD preprocessing does), is cut, turned to
grayscale, resized to 112 x 112 and written as ``clips_videos/<split>/<video>/<entity>/<t>.jpg``. The
track's audio span (first to last timestamp plus a frame) is resampled to 16 kHz mono and written as
``clips_audios/<split>/<video>/<entity>.wav``. The CSV itself becomes ``csv/<split>_orig.csv`` (UniTalk's
subset CSVs can be put beside it as ``csv/<split>_<subset>.csv``). Tracks already written are skipped; a video
that is missing or has no audio stream fails naming it.
"""

from __future__ import annotations

import shutil
from bisect import bisect_left
from collections import defaultdict
from pathlib import Path
from typing import Dict, List

import numpy as np

from ..audio.io import save
from ..constants import SAMPLE_RATE
from ..data.ava_csv import read_ava_csv
from ..errors import InputError, MissingInputError
from ..utils.atomic import atomic_path

FACE = 112


def _import_av():
    try:
        import av
    except ImportError as e:
        raise ImportError("reading raw videos needs PyAV: pip install 'speechssl[video]' (or pip install av)") from e
    return av


def decode_video(path: Path):
    """-> (timestamps [N] seconds, grayscale frames [N, H, W] uint8, audio [T] float32 16 kHz mono)."""
    av = _import_av()
    if not Path(path).is_file():
        raise MissingInputError(f"{path}: video not found")
    times, frames = [], []
    with av.open(str(path)) as c:
        if not c.streams.video:
            raise InputError(f"{path}: no video stream")
        for f in c.decode(video=0):
            times.append(float(f.time))
            frames.append(f.to_ndarray(format="gray"))
    with av.open(str(path)) as c:
        if not c.streams.audio:
            raise InputError(f"{path}: no audio stream (ASD needs the soundtrack)")
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        chunks = []
        for f in c.decode(audio=0):
            for r in resampler.resample(f):
                chunks.append(r.to_ndarray().reshape(-1))
        for r in resampler.resample(None):
            chunks.append(r.to_ndarray().reshape(-1))
    return np.array(times), np.stack(frames), np.concatenate(chunks).astype(np.float32)


def crop_face(frame: np.ndarray, box, margin: float = 0.4) -> np.ndarray:
    """Relative box ``(x1, y1, x2, y2)`` widened by ``margin`` of its size per side -> ``[112, 112]`` uint8."""
    from PIL import Image

    H, W = frame.shape
    x1, y1, x2, y2 = (float(b) for b in box)
    bw, bh = (x2 - x1) * W, (y2 - y1) * H
    cx, cy = (x1 + x2) / 2 * W, (y1 + y2) / 2 * H
    half = max(bw, bh) * (0.5 + margin)
    l, t, r, b = (int(round(v)) for v in (cx - half, cy - half, cx + half, cy + half))
    pad = int(np.ceil(half)) + 1  # a box near the edge repeats the border rather than shrinking
    crop = np.pad(frame, pad, mode="edge")[t + pad : b + pad, l + pad : r + pad]
    return np.asarray(Image.fromarray(crop).resize((FACE, FACE), Image.BILINEAR))


def crops_from_videos(csv_path, videos_dir, out, split: str, margin: float = 0.4, video_ext: str = ".mp4") -> dict:
    """Every track of ``csv_path`` from ``videos_dir/<video_id><ext>`` into ``out``'s layout; returns counts."""
    from PIL import Image

    out = Path(out)
    rows = read_ava_csv(csv_path)
    by_video: Dict[str, Dict[str, List[dict]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        by_video[r["video_id"]][r["entity_id"]].append(r)
    done = written = 0
    for video, tracks in sorted(by_video.items()):
        todo = {e: rs for e, rs in tracks.items() if not (out / "clips_audios" / split / video / f"{e}.wav").is_file()}
        done += len(tracks) - len(todo)
        if not todo:
            continue
        times, frames, audio = decode_video(Path(videos_dir) / f"{video}{video_ext}")
        for entity, rs in todo.items():
            rs.sort(key=lambda r: float(r["frame_timestamp"]))
            vdir = out / "clips_videos" / split / video / entity
            vdir.mkdir(parents=True, exist_ok=True)
            for r in rs:
                t = float(r["frame_timestamp"])
                i = min(bisect_left(times, t), len(times) - 1)
                if i > 0 and abs(times[i - 1] - t) <= abs(times[i] - t):
                    i -= 1
                box = (r["entity_box_x1"], r["entity_box_y1"], r["entity_box_x2"], r["entity_box_y2"])
                Image.fromarray(crop_face(frames[i], box, margin)).save(
                    vdir / f"{r['frame_timestamp']}.jpg", quality=90
                )
            start = float(rs[0]["frame_timestamp"])
            end = float(rs[-1]["frame_timestamp"]) + 0.04
            adir = out / "clips_audios" / split / video
            adir.mkdir(parents=True, exist_ok=True)
            # the wav is written last: its presence marks the track complete
            save(adir / f"{entity}.wav", audio[int(start * SAMPLE_RATE) : int(end * SAMPLE_RATE)], SAMPLE_RATE)
            written += 1
    # the split's CSV goes in last, where training and scoring read it (csv/<split>_orig.csv)
    dst = out / "csv" / f"{split}_orig.csv"
    if not dst.is_file():
        dst.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(dst) as tmp:
            shutil.copyfile(csv_path, tmp)
    return {"tracks_written": written, "tracks_already_there": done, "rows": len(rows), "csv": str(dst)}
