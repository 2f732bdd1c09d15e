"""``data fix``: Kaldi's ``fix_data_dir.sh`` with a report of every dropped id and a backup that is
always made when the output is the input folder, however either is spelled."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

from .kaldi_dir import DataDir

BACKUP_DIR = ".backup"


@dataclass
class FixReport:
    """What ``fix_data_dir`` did: ``dropped`` maps a reason to the ids it dropped."""

    out: Path
    total: int
    kept: int
    dropped: Dict[str, List[str]]
    backup: Optional[Path]

    def lines(self, show: int = 10) -> List[str]:
        out = [
            f"{self.out}: kept {self.kept} of {self.total} utterances"
            + (f" (originals in {self.backup})" if self.backup else "")
        ]
        for reason, ids in sorted(self.dropped.items()):
            more = f" ... (+{len(ids) - show})" if len(ids) > show else ""
            out.append(f"  dropped {len(ids)}: {reason}: {' '.join(ids[:show])}{more}")
        return out


def same_folder(a: os.PathLike, b: os.PathLike) -> bool:
    """True when ``a`` and ``b`` name one folder (``d``, ``d/``, ``./d``, a symlink to it)."""
    a, b = Path(a), Path(b)
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def fix_data_dir(src: os.PathLike, out: Optional[os.PathLike] = None) -> FixReport:
    """Fix ``src`` into ``out`` (default: in place). In place, every file of ``src`` is first copied
    to ``src/.backup/`` (as ``fix_data_dir.sh`` does; a later fix uses ``.backup.1`` and so on, so the
    original is never overwritten); files it does not understand are carried over byte for byte."""
    d = DataDir.read(src)
    fixed, dropped = d.fix()
    out = Path(out) if out is not None else Path(src)
    backup = None
    if same_folder(out, src):  # never overwrite an earlier backup: .backup, then .backup.1, ...
        backup = Path(src) / BACKUP_DIR
        n = 0
        while backup.exists():
            n += 1
            backup = Path(src) / f"{BACKUP_DIR}.{n}"
        backup.mkdir()
        for f in Path(src).iterdir():
            if f.is_file():
                shutil.copy2(f, backup / f.name)
    fixed.write(out)
    return FixReport(out, len(d), len(fixed), dropped, backup)
