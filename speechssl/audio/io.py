"""Audio input: any file soundfile reads, Kaldi ``wav.scp`` pipes and ark offsets, segments.

Everything returns mono float32 numpy at the requested rate, or raises :class:`AudioError`
naming the source and the reason. Nothing here decodes audio it does not need to.
"""

from __future__ import annotations

import io
import math
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Optional, Union

import kaldiio
import numpy as np
import soundfile as sf
import soxr

from ..constants import SAMPLE_RATE
from ..errors import SpeechSSLError
from ..utils.atomic import atomic_path

Source = Union[str, os.PathLike, BinaryIO]

_ARK_OFFSET = re.compile(r"^(.+\.ark):(\d+)$")
MAX_OVERSHOOT = 0.5  # seconds a segment may end past its recording (Kaldi extract-segments --max-overshoot)
# a WAV written to a pipe cannot seek back to fill in its sizes: these mean "until the end of the stream"
STREAMING_WAV_SIZES = (0, 0xFFFFFFFF, 0x7FFFF000, 0x7FFFFFFF)


class AudioError(SpeechSSLError, ValueError):
    """Unreadable, empty or invalid audio. The message names the source and the reason."""

    def __init__(self, source: object, reason: str):
        self.source = str(source)
        self.reason = reason
        super().__init__(f"{self.source}: {reason}")


@dataclass(frozen=True)
class AudioInfo:
    """Header facts of an audio source, read without decoding the samples."""

    sample_rate: int
    num_frames: int
    num_channels: int
    format: str

    @property
    def duration(self) -> float:
        return self.num_frames / self.sample_rate


def is_pipe(source: object) -> bool:
    """True for a Kaldi ``wav.scp`` command entry such as ``sox a.wav -t wav - |``."""
    return isinstance(source, str) and source.rstrip().endswith("|")


# A wav.scp pipe runs a user's shell command: bounded in time and in output, with no stdin to wait on.
# Override with SPEECHSSL_PIPE_TIMEOUT (seconds) and SPEECHSSL_PIPE_MAX_BYTES for unusually long recordings.
PIPE_TIMEOUT_S = 600.0
PIPE_MAX_BYTES = 4 << 30  # 4 GiB: 37 hours of 16 kHz 16-bit mono, far beyond any one utterance


def _pipe_limits() -> tuple:
    try:
        return (
            float(os.environ.get("SPEECHSSL_PIPE_TIMEOUT", PIPE_TIMEOUT_S)),
            int(os.environ.get("SPEECHSSL_PIPE_MAX_BYTES", PIPE_MAX_BYTES)),
        )
    except ValueError as e:
        raise AudioError("SPEECHSSL_PIPE_TIMEOUT / SPEECHSSL_PIPE_MAX_BYTES", f"not a number: {e}") from None


def _run_pipe(command: str) -> bytes:
    """Run a ``wav.scp`` pipe command: stdin closed, stdout capped at ``PIPE_MAX_BYTES``, killed (with its
    children) after ``PIPE_TIMEOUT_S``. Raises :class:`AudioError` naming the command on any of these."""
    import selectors
    import signal
    import tempfile
    import time

    cmd = command.rstrip()[:-1].strip()
    timeout, cap = _pipe_limits()
    with tempfile.TemporaryFile() as err_file:
        try:
            proc = subprocess.Popen(
                cmd,
                shell=True,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err_file,
                start_new_session=True,
            )  # its own group: kill takes sox too
        except OSError as e:  # pragma: no cover - shell itself missing
            raise AudioError(command, f"pipe command could not start: {e}") from e
        chunks, size, problem = [], 0, None
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    problem = f"pipe command still running after {timeout:g} s (SPEECHSSL_PIPE_TIMEOUT); killed"
                    break
                if not sel.select(timeout=min(left, 1.0)):
                    continue
                chunk = os.read(proc.stdout.fileno(), 1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
                if size > cap:
                    problem = f"pipe command wrote more than {cap} bytes (SPEECHSSL_PIPE_MAX_BYTES); killed"
                    break
        if problem is not None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:  # pragma: no cover - it ended meanwhile
                pass
        proc.stdout.close()
        returncode = proc.wait()
        if problem is not None:
            raise AudioError(command, problem)
        if returncode != 0:
            err_file.seek(0)
            err = err_file.read().decode(errors="replace").strip().splitlines()
            tail = err[-1] if err else "no stderr"
            raise AudioError(command, f"pipe command failed with exit code {returncode}: {tail}")
    if not size:
        raise AudioError(command, "pipe command produced no output")
    return b"".join(chunks)


def _check_wav_truncation(path: str, info: sf._SoundFileInfo) -> None:
    """libsndfile clamps a truncated WAV to the bytes present; compare with the header."""
    if info.format != "WAV":
        return
    with open(path, "rb") as f:
        head = f.read(4096)
    _check_wav_bytes(head, os.path.getsize(path), path)


def _check_wav_bytes(head: bytes, total: int, name: str) -> None:
    """A WAV's ``data`` chunk declares more bytes than ``total`` holds: truncated (a streaming size passes)."""
    if head[:4] != b"RIFF":
        return
    pos = 12
    while pos + 8 <= len(head):
        chunk, size = head[pos : pos + 4], int.from_bytes(head[pos + 4 : pos + 8], "little")
        if chunk == b"data":
            available = total - (pos + 8)
            if size not in STREAMING_WAV_SIZES and available < size:
                raise AudioError(name, f"truncated WAV: header declares {size} data bytes, holds {available}")
            return
        pos += 8 + size + (size & 1)


def _open(source: Source):
    """Return (soundfile-openable object, name for messages, path or None)."""
    if hasattr(source, "read"):
        return source, getattr(source, "name", "<stream>"), None
    text = os.fspath(source)
    if is_pipe(text):
        data = _run_pipe(text)
        _check_wav_bytes(data[:4096], len(data), text)
        return io.BytesIO(data), text, None
    if not os.path.exists(text):
        raise AudioError(text, "file not found")
    if os.path.isdir(text):
        raise AudioError(text, "is a directory, not an audio file")
    if os.path.getsize(text) == 0:
        raise AudioError(text, "empty file (0 bytes)")
    return text, text, text


def info(source: Source) -> AudioInfo:
    """Header information (rate, frames, channels) without decoding the audio.

    Pipes must be run to be inspected; ark offsets are read through kaldiio.
    """
    if isinstance(source, str) and _ARK_OFFSET.match(source.strip()):
        rate, data = _read_ark(source.strip())
        return AudioInfo(rate, data.shape[0], 1 if data.ndim == 1 else data.shape[1], "ARK")
    handle, name, path = _open(source)
    try:
        i = sf.info(handle)
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        raise AudioError(name, f"unknown, truncated or corrupt audio ({e})") from e
    if path is not None:
        _check_wav_truncation(path, i)
    return AudioInfo(int(i.samplerate), int(i.frames), int(i.channels), str(i.format))


def _read_ark(spec: str):
    try:
        out = kaldiio.load_mat(spec)
    except Exception as e:  # kaldiio raises many types for bad arks
        raise AudioError(spec, f"cannot read ark entry ({e})") from e
    if not isinstance(out, tuple):
        raise AudioError(spec, "ark entry is a feature matrix, not audio")
    rate, data = out
    data = np.asarray(data)
    if np.issubdtype(data.dtype, np.integer):
        data = data.astype(np.float32) / float(np.iinfo(data.dtype).max + 1)
    return int(rate), data.astype(np.float32)


def _decode(source: Source, start: float, end: Optional[float]):
    if isinstance(source, str) and _ARK_OFFSET.match(source.strip()):
        rate, data = _read_ark(source.strip())
        data = data if data.ndim == 2 else data[:, None]
        if end is not None and end * rate > data.shape[0] + MAX_OVERSHOOT * rate:
            raise AudioError(
                source,
                f"segment end {end:.3f}s is more than {MAX_OVERSHOOT}s past the end of the "
                f"audio ({data.shape[0] / rate:.3f}s)",
            )
        s = int(round(start * rate))
        e = None if end is None else int(round(end * rate))
        return data[s:e], rate, source
    handle, name, path = _open(source)
    try:
        with sf.SoundFile(handle) as f:
            if path is not None:
                _check_wav_truncation(path, sf.info(path))
            rate = f.samplerate
            s = int(round(start * rate))
            if end is not None and end * rate > f.frames + MAX_OVERSHOOT * rate:
                raise AudioError(
                    name,
                    f"segment end {end:.3f}s is more than {MAX_OVERSHOOT}s past the end of the "
                    f"audio ({f.frames / rate:.3f}s), as Kaldi's extract-segments refuses",
                )
            e = f.frames if end is None else min(int(round(end * rate)), f.frames)
            if s > f.frames:
                raise AudioError(name, f"segment start {start:.3f}s is past the end ({f.frames / rate:.3f}s)")
            f.seek(s)
            data = f.read(max(e - s, 0), dtype="float32", always_2d=True)
            if data.shape[0] < e - s:
                raise AudioError(
                    name, f"truncated: header declares {f.frames} frames, only {s + data.shape[0]} could be decoded"
                )
    except AudioError:
        raise
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        raise AudioError(name, f"unknown, truncated or corrupt audio ({e})") from e
    return data, rate, name


def load(
    source: Source,
    sample_rate: Optional[int] = SAMPLE_RATE,
    *,
    channel: Optional[int] = None,
    start: float = 0.0,
    end: Optional[float] = None,
) -> np.ndarray:
    """Load audio as mono float32 ``[T]`` at ``sample_rate`` (``None`` keeps the file's rate).

    Args:
        source: a path (wav, flac, ogg, mp3: whatever soundfile reads), a Kaldi ``wav.scp``
            value (a pipe ``cmd |`` or an ``file.ark:offset`` entry), or a binary file object.
        sample_rate: output rate; other rates are resampled with soxr (high quality).
        channel: pick this channel of a multi-channel file; ``None`` averages the channels.
        start, end: a segment in seconds (Kaldi ``segments``); ``end=None`` reads to the end.

    Raises:
        AudioError: missing, empty, truncated or corrupt file; unknown format; a failing pipe;
            a channel that does not exist; no samples; NaN or Inf samples.
    """
    if (
        start < 0
        or (end is not None and end <= start)
        or not math.isfinite(start)
        or (end is not None and not math.isfinite(end))
    ):
        raise AudioError(source, f"bad segment [{start}, {end}]: need finite 0 <= start < end")
    data, rate, name = _decode(source, start, end)
    if data.shape[0] == 0:
        raise AudioError(name, "no audio samples (zero-length audio or empty segment)")
    if channel is not None:
        if not 0 <= channel < data.shape[1]:
            raise AudioError(name, f"channel {channel} requested, audio has {data.shape[1]}")
        wav = data[:, channel]
    else:
        wav = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if not np.isfinite(wav).all():
        bad = int((~np.isfinite(wav)).sum())
        raise AudioError(name, f"{bad} NaN/Inf samples")
    wav = np.ascontiguousarray(wav, dtype=np.float32)
    if sample_rate is not None and rate != sample_rate:
        wav = resample(wav, rate, sample_rate)
    return wav


def resample(wav: np.ndarray, orig_rate: int, new_rate: int) -> np.ndarray:
    """Resample ``[T]`` or ``[T, C]`` float audio with soxr's high-quality filter."""
    if orig_rate == new_rate:
        return wav
    return soxr.resample(wav, orig_rate, new_rate, quality="HQ").astype(np.float32, copy=False)


def save(path: Union[str, os.PathLike], wav: np.ndarray, sample_rate: int) -> None:
    """Write audio; the format follows the suffix (.wav, .flac, ...). Writes atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = path.suffix.lstrip(".").upper() or "WAV"
    with atomic_path(path) as tmp:
        sf.write(str(tmp), np.asarray(wav), sample_rate, format=fmt)
