"""Kaldi data directories: read, write, validate, fix, and per-utterance audio access.

A data dir holds ``wav.scp`` (recording -> path, pipe ``cmd |`` or ``ark:offset``),
``utt2spk``, optional ``segments`` (utt -> recording start end), ``text``, ``utt2dur`` and any
extra per-utterance tables (``utt2kind``, ``text.phone``, ...). ``spk2utt`` is always derived
from ``utt2spk``. Ids sort as Kaldi sorts them (bytewise, ``LC_ALL=C``).

Relative audio paths in ``wav.scp`` are resolved against the data dir itself.
"""

from __future__ import annotations

import math
import os
import shutil
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple, Union

import numpy as np
from tqdm import tqdm

from ..audio import io as audio_io
from ..constants import SAMPLE_RATE
from ..errors import InputError, NotFoundError
from ..utils.atomic import atomic_path, write_text
from ..utils.text import read_text_lines

# Files with one ``key value`` line per utterance (besides extras) or per recording/speaker.
_CORE = ("wav.scp", "utt2spk", "spk2utt", "segments", "text", "utt2dur")
VERBATIM_IN_MEMORY_BYTES = 50_000_000  # larger carried files stay on disk and are copied

# Files that are not per-utterance tables and are carried verbatim.
_VERBATIM = (
    "alignments.ctm",
    "spk2gender",
    "trials",
    "frame_shift",
    "reco2dur",
    "feats.scp",
    "cmvn.scp",
    "conf",
    "reco2file_and_channel",
)
# Carried files whose lines are keyed (first field) by an utterance, a speaker or a recording: a subset keeps
# the lines of what it keeps (Kaldi's fix_data_dir.sh filters them the same way).
_KEYED_BY = {
    "feats.scp": "utt",
    "alignments.ctm": "utt",
    "cmvn.scp": "spk",
    "spk2gender": "spk",
    "reco2dur": "reco",
    "reco2file_and_channel": "reco",
}


class DataDirError(InputError):
    """A data directory that cannot be read; the message names the file and line."""


@dataclass
class Problem:
    file: str
    line: Optional[int]
    message: str
    severity: str = "error"  # "error" | "warning"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{self.severity}: {where}: {self.message}"


def _sort_key(s: str) -> bytes:
    return s.encode("utf-8")


def _line_problems(name: str, rows: List[Tuple[int, str, str]]) -> List[Problem]:
    """Empty lines, keys without a value (``text`` may be empty), duplicate ids, unsorted ids."""
    problems: List[Problem] = []
    seen: Dict[str, int] = {}
    prev = None
    for n, key, value in rows:
        if not key:
            problems.append(Problem(name, n, "empty line"))
            continue
        if value == "" and name != "text":
            problems.append(Problem(name, n, f"{key!r} has no value"))
        if key in seen:
            problems.append(Problem(name, n, f"duplicate id {key!r} (first on line {seen[key]})"))
        else:
            seen[key] = n
        if prev is not None and _sort_key(key) < _sort_key(prev):
            problems.append(Problem(name, n, f"not sorted: {key!r} after {prev!r} (sort with LC_ALL=C)"))
        prev = key
    return problems


def _verbatim_content(f: Path):
    """A carried file's text, or its path when it is large or not UTF-8 (then it is copied as bytes)."""
    if f.stat().st_size >= VERBATIM_IN_MEMORY_BYTES:
        return f
    try:
        return f.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return f


def read_table(path: Path) -> List[Tuple[int, str, str]]:
    """``key value`` lines as ``(line_no, key, value)``; value may be empty, blank lines kept
    as ``(n, '', '')`` so validation can report them."""
    rows = []
    for n, line in enumerate(read_text_lines(path), 1):
        parts = line.strip().split(maxsplit=1)
        rows.append((n, parts[0] if parts else "", parts[1].strip() if len(parts) > 1 else ""))
    return rows


def write_table(path: Path, table: Dict[str, str]) -> None:
    """Write a sorted ``key value`` table atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for k in sorted(table, key=_sort_key):
            f.write(f"{k} {table[k]}\n" if table[k] != "" else f"{k}\n")


@dataclass
class DataDir:
    """An in-memory Kaldi data dir. ``extra`` maps file name -> ``{utt: value}``."""

    wav_scp: Dict[str, str] = field(default_factory=dict)
    utt2spk: Dict[str, str] = field(default_factory=dict)
    segments: Optional[Dict[str, Tuple[str, float, float]]] = None
    text: Optional[Dict[str, str]] = None
    utt2dur: Optional[Dict[str, float]] = None
    extra: Dict[str, Dict[str, str]] = field(default_factory=dict)
    verbatim: Dict[str, Union[str, Path]] = field(default_factory=dict)  # text, or a file to copy
    path: Optional[Path] = None
    _raw: Dict[str, List[Tuple[int, str, str]]] = field(default_factory=dict, repr=False)

    # ---------------------------------------------------------------- reading and writing
    @classmethod
    def read(cls, path: os.PathLike) -> DataDir:
        path = Path(path)
        if not path.is_dir():
            raise DataDirError(f"{path}: not a directory")
        for required in ("wav.scp", "utt2spk"):
            if not (path / required).is_file():
                raise DataDirError(f"{path / required}: missing (a data dir needs wav.scp and utt2spk)")
        d = cls(path=path)
        for f in sorted(p for p in path.iterdir() if p.is_file()):
            name = f.name
            if name.endswith(".tmp") or name.startswith("."):
                continue
            if name in _VERBATIM or name.endswith((".ark", ".json", ".md", ".png", ".txt", ".tsv", ".csv")):
                d.verbatim[name] = _verbatim_content(f)
                continue
            d._raw[name] = read_table(f)

        def first(rows):  # the first occurrence of a key wins
            return {k: v for _, k, v in reversed(rows) if k}

        d.wav_scp = first(d._raw["wav.scp"])
        d.utt2spk = first(d._raw["utt2spk"])
        if "segments" in d._raw:
            d.segments = {}
            for _n, k, v in reversed(d._raw["segments"]):
                parts = v.split()
                if k and len(parts) == 3:
                    try:
                        d.segments[k] = (parts[0], float(parts[1]), float(parts[2]))
                    except ValueError:
                        pass
        if "text" in d._raw:
            d.text = first(d._raw["text"])
        if "utt2dur" in d._raw:
            d.utt2dur = {}
            for _, k, v in reversed(d._raw["utt2dur"]):
                try:
                    d.utt2dur[k] = float(v)
                except ValueError:
                    pass
        for name, rows in d._raw.items():
            if name not in _CORE:
                d.extra[name] = first(rows)
        return d

    def write(self, path: os.PathLike) -> Path:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        wav_scp = self.wav_scp
        if self.path is not None and path.resolve() != Path(self.path).resolve():
            # relative audio paths are relative to the old dir: make them absolute so they still resolve
            wav_scp = {r: self._resolve(e) for r, e in self.wav_scp.items()}
            self.wav_scp = wav_scp
        write_table(path / "wav.scp", wav_scp)
        write_table(path / "utt2spk", self.utt2spk)
        write_table(path / "spk2utt", {s: " ".join(u) for s, u in self.spk2utt.items()})
        if self.segments is not None:
            write_table(path / "segments", {u: f"{r} {s:.3f} {e:.3f}" for u, (r, s, e) in self.segments.items()})
        if self.text is not None:
            write_table(path / "text", self.text)
        if self.utt2dur is not None:
            write_table(path / "utt2dur", {u: f"{d:.4f}" for u, d in self.utt2dur.items()})
        for name, table in self.extra.items():
            write_table(path / name, table)
        for name, content in self.verbatim.items():
            if isinstance(content, Path):  # large or binary: copied byte for byte
                if content.resolve() != (path / name).resolve():
                    with atomic_path(path / name) as tmp:
                        shutil.copyfile(content, tmp)
            else:
                write_text(path / name, content)
        self.path = path
        return path

    # ---------------------------------------------------------------- access
    @property
    def utt_ids(self) -> List[str]:
        return sorted(self.utt2spk, key=_sort_key)

    @property
    def spk2utt(self) -> Dict[str, List[str]]:
        out: Dict[str, List[str]] = defaultdict(list)
        for utt in self.utt_ids:
            out[self.utt2spk[utt]].append(utt)
        return dict(out)

    def __len__(self) -> int:
        return len(self.utt2spk)

    def audio_source(self, utt: str) -> Tuple[str, float, Optional[float]]:
        """``(wav.scp value with relative paths resolved, start, end)`` for an utterance."""
        if self.segments is not None:
            if utt not in self.segments:
                raise NotFoundError(f"utterance {utt!r} not in segments")
            rec, start, end = self.segments[utt]
        else:
            rec, start, end = utt, 0.0, None
        if rec not in self.wav_scp:
            raise NotFoundError(f"recording {rec!r} (utterance {utt!r}) not in wav.scp")
        return self._resolve(self.wav_scp[rec]), start, end

    def _resolve(self, entry: str) -> str:
        if audio_io.is_pipe(entry) or self.path is None:
            return entry
        if os.path.isabs(entry.split(":")[0] if ".ark:" in entry else entry):
            return entry
        return str(self.path / entry)

    def load_audio(self, utt: str, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
        src, start, end = self.audio_source(utt)
        try:
            return audio_io.load(src, sample_rate, start=start, end=end)
        except audio_io.AudioError as e:
            raise audio_io.AudioError(f"utterance {utt} ({e.source})", e.reason) from e

    def iter_audio(self, sample_rate: int = SAMPLE_RATE) -> Iterator[Tuple[str, np.ndarray]]:
        for utt in self.utt_ids:
            yield utt, self.load_audio(utt, sample_rate)

    def compute_utt2dur(self, progress: bool = False, bad: Optional[Dict[str, str]] = None) -> Dict[str, float]:
        """Durations from segments or audio headers (no decoding; pipes must run). With ``bad`` given, an
        unreadable file does not stop the rest: its reason goes into ``bad`` and its duration is 0."""

        durs = {}
        for utt in tqdm(self.utt_ids, desc="utt2dur", disable=not progress):
            if self.segments is not None and utt in self.segments:
                _, s, e = self.segments[utt]
                durs[utt] = e - s
                continue
            src, _, _ = self.audio_source(utt)
            try:
                durs[utt] = audio_io.info(src).duration
            except audio_io.AudioError as e:
                if bad is None:
                    raise audio_io.AudioError(f"utterance {utt} ({e.source})", e.reason) from e
                bad[utt], durs[utt] = e.reason, 0.0
        self.utt2dur = durs
        return durs

    def subset(self, utts) -> DataDir:
        """A new data dir restricted to ``utts`` (recordings kept as needed)."""
        keep = set(utts)
        sub = DataDir(path=self.path, verbatim=dict(self.verbatim))
        sub.utt2spk = {u: s for u, s in self.utt2spk.items() if u in keep}
        kept = {"utt": keep, "spk": set(sub.utt2spk.values())}
        if self.segments is not None:
            sub.segments = {u: v for u, v in self.segments.items() if u in keep}
            recs = {r for r, _, _ in sub.segments.values()}
            sub.wav_scp = {r: v for r, v in self.wav_scp.items() if r in recs}
        else:
            sub.wav_scp = {u: v for u, v in self.wav_scp.items() if u in keep}
        if self.text is not None:
            sub.text = {u: v for u, v in self.text.items() if u in keep}
        if self.utt2dur is not None:
            sub.utt2dur = {u: v for u, v in self.utt2dur.items() if u in keep}
        sub.extra = {n: {u: v for u, v in t.items() if u in keep} for n, t in self.extra.items()}
        kept["reco"] = {r for r, _, _ in sub.segments.values()} if sub.segments is not None else set(sub.wav_scp)
        for name, by in _KEYED_BY.items():
            content = sub.verbatim.get(name)
            if isinstance(content, Path):
                content = content.read_text(encoding="utf-8", errors="replace")
            if content is not None:
                sub.verbatim[name] = "".join(
                    line
                    for line in content.splitlines(keepends=True)
                    if not line.split() or line.split()[0] in kept[by]
                )
        return sub

    # ---------------------------------------------------------------- checking
    def validate(self, check_audio: bool = False) -> List[Problem]:
        """Every problem found, with file and line. ``check_audio`` also opens each file's
        header (missing, empty or corrupt audio)."""
        raw = self._raw or self._raw_from_tables()
        line_of = {name: {k: n for n, k, _ in reversed(rows) if k} for name, rows in raw.items()}
        problems = [p for name, rows in raw.items() if name != "spk2utt" for p in _line_problems(name, rows)]
        problems += self._coverage_problems(raw, line_of)
        problems += self._table_problems(raw, line_of)
        problems += self._speaker_problems(raw, line_of)
        if check_audio:
            for utt in sorted(self.utt2spk):
                try:
                    src, _, _ = self.audio_source(utt)
                    audio_io.info(src)
                except (KeyError, audio_io.AudioError) as e:
                    problems.append(Problem("wav.scp", None, f"{utt}: {e}"))
        return problems

    def _coverage_problems(self, raw, line_of) -> List[Problem]:
        """Every utterance has audio (wav.scp, or segments into it) and every audio entry an utterance."""
        problems: List[Problem] = []
        utts = set(self.utt2spk)
        if self.segments is None:
            problems += [
                Problem("utt2spk", line_of["utt2spk"].get(u), f"{u} has no entry in wav.scp")
                for u in sorted(utts - set(self.wav_scp))
            ]
            problems += [
                Problem("wav.scp", line_of["wav.scp"].get(u), f"{u} not in utt2spk")
                for u in sorted(set(self.wav_scp) - utts)
            ]
            return problems
        for n, utt, v in raw.get("segments", []):
            parts = v.split()
            if len(parts) != 3:
                problems.append(Problem("segments", n, f"{utt}: expected 'recording start end', got {v!r}"))
                continue
            try:
                s, e = float(parts[1]), float(parts[2])
            except ValueError:
                problems.append(Problem("segments", n, f"{utt}: start/end are not numbers"))
                continue
            if not (math.isfinite(s) and math.isfinite(e)):
                problems.append(Problem("segments", n, f"{utt}: start/end must be finite, got {s} {e}"))
            elif not (0 <= s < e):
                problems.append(Problem("segments", n, f"{utt}: need 0 <= start < end, got {s} {e}"))
            if parts[0] not in self.wav_scp:
                problems.append(Problem("segments", n, f"{utt}: recording {parts[0]!r} not in wav.scp"))
        problems += [
            Problem("utt2spk", line_of["utt2spk"].get(u), f"{u} has no entry in segments")
            for u in sorted(utts - set(self.segments))
        ]
        problems += [
            Problem("segments", line_of.get("segments", {}).get(u), f"{u} not in utt2spk")
            for u in sorted(set(self.segments) - utts)
        ]
        return problems

    def _table_problems(self, raw, line_of) -> List[Problem]:
        """Per-utterance tables cover exactly the utterances; durations are positive numbers."""
        problems: List[Problem] = []
        utts = set(self.utt2spk)
        for name, table in {"text": self.text, "utt2dur": self.utt2dur, **self.extra}.items():
            if table is None:
                continue
            problems += [
                Problem(name, line_of.get(name, {}).get(u), f"{u} is in {name} but not in utt2spk/wav.scp")
                for u in sorted(set(table) - utts)
            ]
            if name in ("text", "utt2dur"):
                problems += [Problem(name, None, f"{u} has no entry in {name}") for u in sorted(utts - set(table))]
        for n, k, v in raw.get("utt2dur", []):
            try:
                if k and float(v) <= 0:
                    problems.append(Problem("utt2dur", n, f"{k}: duration must be > 0"))
            except ValueError:
                problems.append(Problem("utt2dur", n, f"{k}: duration {v!r} is not a number"))
        return problems

    def _speaker_problems(self, raw, line_of) -> List[Problem]:
        """spk2utt agrees with utt2spk; speaker ids prefix utterance ids (a warning: Kaldi's sort order)."""
        problems: List[Problem] = []
        if "spk2utt" in raw:
            derived = self.spk2utt
            for n, spk, v in raw["spk2utt"]:
                if spk and sorted(v.split(), key=_sort_key) != derived.get(spk, []):
                    problems.append(
                        Problem("spk2utt", n, f"speaker {spk!r} disagrees with utt2spk (regenerate spk2utt)")
                    )
            missing = set(derived) - {k for _, k, _ in raw["spk2utt"]}
            problems += [Problem("spk2utt", None, f"speaker {spk!r} missing") for spk in sorted(missing)]
        for utt, spk in sorted(self.utt2spk.items()):
            if not utt.startswith(spk):
                problems.append(
                    Problem(
                        "utt2spk",
                        line_of["utt2spk"].get(utt),
                        f"speaker {spk!r} is not a prefix of {utt!r}: Kaldi sorting by utterance may "
                        "then break speaker order",
                        "warning",
                    )
                )
                break  # one warning is enough
        return problems

    def _raw_from_tables(self) -> Dict[str, List[Tuple[int, str, str]]]:
        def rows(table):
            return [(i + 1, k, str(table[k])) for i, k in enumerate(sorted(table, key=_sort_key))]

        raw = {"wav.scp": rows(self.wav_scp), "utt2spk": rows(self.utt2spk)}
        if self.text is not None:
            raw["text"] = rows(self.text)
        if self.segments is not None:
            raw["segments"] = rows({u: f"{r} {s} {e}" for u, (r, s, e) in self.segments.items()})
        return raw

    def fix(self) -> Tuple[DataDir, Dict[str, List[str]]]:
        """Keep only utterances consistent across every file (as Kaldi's fix_data_dir.sh),
        first occurrence of duplicates, sorted. Returns the fixed dir and ``{reason: [ids]}``
        of what was dropped (utterances, duplicate keys, orphan lines); nothing is dropped silently."""
        dropped: Dict[str, List[str]] = defaultdict(list)
        for name, rows in self._raw.items():
            seen = set()
            for _, k, _ in rows:
                if k and k in seen:
                    dropped[f"duplicate lines in {name}"].append(k)
                seen.add(k)
        keep = set(self.utt2spk)
        for name, table in (("text", self.text), ("utt2dur", self.utt2dur), *self.extra.items()):
            orphan = sorted(set(table or ()) - keep, key=_sort_key)
            if orphan and name not in ("spk2utt", "spk2gender"):
                dropped[f"lines in {name} for no utterance in utt2spk"] += orphan
        if self.segments is not None:
            no_audio = {
                u
                for u in keep
                if u not in self.segments
                or self.segments[u][0] not in self.wav_scp
                or not (0 <= self.segments[u][1] < self.segments[u][2])
            }
        else:
            no_audio = keep - set(self.wav_scp)
        dropped["no audio (wav.scp/segments)"] += no_audio
        keep -= no_audio
        for name, table in (("text", self.text), ("utt2dur", self.utt2dur)):
            if table is not None:
                missing = keep - set(table)
                dropped[f"missing from {name}"] += missing
                keep -= missing
        if self.utt2dur is not None:
            bad = {u for u in keep if self.utt2dur[u] <= 0}
            dropped["non-positive duration"] += bad
            keep -= bad
        orphans = (set(self.wav_scp) - set(self.utt2spk)) if self.segments is None else set()
        dropped["recordings with no utterance (wav.scp only)"] += orphans
        return self.subset(keep), {r: sorted(ids, key=_sort_key) for r, ids in dropped.items() if ids}
