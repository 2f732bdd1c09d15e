"""Dry-run validation of every YAML under ``conf/``: each file loads into its schema and validates.

The schema comes from the file's place, as the task registry (:mod:`speechssl.tasks.registry`) maps it
(``pretrain/hubert_*`` -> HuBERT pretraining, ``superb/<task>`` -> SUPERB, ...). A file layered on others
says so in a ``# base: a/b c/d`` line and is checked merged on top of them, as every command loads it.
Values only a run supplies (labels, a teacher, the task
data) are filled with placeholders, so what is checked is the file itself: key names, types, and the
schema's own ``validate()`` (sizes, ranges, a LightHuBERT space that contains its default subnet...).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from .config import CONF_DIR, bases_of, load_config  # noqa: F401 (bases_of: re-exported)
from .models.lighthubert_space import SearchSpace
from .tasks.registry import TASKS, task_for_conf


@dataclass
class ConfCheck:
    path: Path
    schema: str
    error: Optional[str] = None


def _load_space(paths: Sequence[str]) -> None:
    SearchSpace.load(paths[-1])


# conf/ files that are not task configs: a LightHuBERT search space is part of a model
def _load_anchors(paths: Sequence[str]) -> None:
    from .tasks.superb.scores import load_anchors

    load_anchors(paths[-1])


NON_TASK_FILES: Dict[str, Tuple[str, Callable]] = {
    "lighthubert/space_*": ("lighthubert_space", _load_space),
    "superb/anchors*": ("superb_anchors", _load_anchors),
}


def _schema_for(rel: Path) -> Tuple[str, Optional[Callable]]:
    """(kind, check function(paths) -> None) for a file at ``rel`` under conf/: a data file the table above
    names, else a task config by the registry."""
    stem = rel.as_posix()[:-5]
    for pattern, (kind, check) in NON_TASK_FILES.items():
        if fnmatch.fnmatch(stem, pattern):
            return kind, check
    spec = task_for_conf(rel.as_posix())
    if spec is not None:

        def check(paths):
            cfg = load_config(spec.schema_class(), paths, spec.placeholders)
            spec.description(cfg)  # what --dry-run builds must build (e.g. a LightHuBERT space fits its model)

        return spec.name, check
    return "unknown", None


def check_conf_tree(conf_dir: Path = CONF_DIR) -> List[ConfCheck]:
    """Check every ``*.yaml`` under ``conf_dir``; a file with no known schema is an error too."""
    conf_dir = Path(conf_dir)
    out = []
    for path in sorted(conf_dir.rglob("*.yaml")):
        rel = path.relative_to(conf_dir)
        kind, check = _schema_for(rel)
        result = ConfCheck(path, kind)
        if check is None:
            known = [p for t in TASKS.values() for p in t.conf] + list(NON_TASK_FILES)
            result.error = f"no schema for {rel}: put it where a task's configs live ({', '.join(known)})"
        else:
            try:
                check([str(path)])  # load_config puts its '# base:' files first
            except Exception as e:  # noqa: BLE001 - every failure is reported with its file
                result.error = f"{type(e).__name__}: {e}"
        out.append(result)
    return out


def format_report(results: Sequence[ConfCheck], conf_dir: Path = CONF_DIR) -> str:
    lines = []
    for r in results:
        rel = r.path.relative_to(conf_dir)
        lines.append(
            f"{'ok  ' if r.error is None else 'FAIL'} {str(rel):<40} {r.schema}"
            + ("" if r.error is None else f"\n     {r.error}")
        )
    bad = sum(r.error is not None for r in results)
    lines.append(f"{len(results) - bad}/{len(results)} configs valid")
    return "\n".join(lines)
