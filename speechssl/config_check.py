"""Dry-run validation of every YAML under ``conf/``: each file loads into its schema and validates.

The schema comes from the file's place (``pretrain/hubert_*`` -> HuBERT pretraining, ``superb/<task>`` ->
SUPERB, ...). A file meant to be layered on others says so in a ``# base: a/b c/d`` line and is checked
merged on top of them, as the recipe passes it. Values only a run supplies (labels, a teacher, the task
data) are filled with placeholders, so what is checked is the file itself: key names, types, and the
schema's own ``validate()`` (sizes, ranges, a LightHuBERT space that contains its default subnet...).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from .config import CONF_DIR, load_config

BASE_LINE = re.compile(r"^#\s*base:\s*(.+)$", re.MULTILINE)

# values a run supplies, filled so that the file itself can be checked
PLACEHOLDERS: Dict[str, List[str]] = {
    "hubert": ["data.train_labels=[labels/train]"],
    "lighthubert": ["teacher=exp/teacher"],
    "asr": ["model.upstream=exp/upstream"],
    "superb": ["data=superb/task", "upstream=fbank"],
    "tts": ["upstream=exp/upstream"],
}


@dataclass
class ConfCheck:
    path: Path
    schema: str
    error: Optional[str] = None


def bases_of(path: Path) -> List[str]:
    m = BASE_LINE.search(Path(path).read_text())
    return m.group(1).split() if m else []


def _schema_for(rel: Path) -> Tuple[str, Optional[Callable]]:
    """(kind, check function(paths) -> None) for a file at ``rel`` under conf/."""
    group, name = rel.parts[0], rel.stem
    if group == "pretrain" and name.startswith("hubert"):
        from .tasks.hubert import HubertPretrainConfig
        return "hubert", lambda paths: load_config(HubertPretrainConfig, paths, PLACEHOLDERS["hubert"])
    if group == "pretrain" and name.startswith("w2v_bert"):
        from .tasks.w2v_bert import W2vBertPretrainConfig
        return "w2v_bert", lambda paths: load_config(W2vBertPretrainConfig, paths)
    if group == "distill" and name.startswith("lighthubert"):
        from .tasks.lighthubert import LightHubertDistillConfig, describe

        def check(paths):
            cfg = load_config(LightHubertDistillConfig, paths, PLACEHOLDERS["lighthubert"])
            cfg.validate()
            describe(cfg)  # builds the supernet on the meta device: the space must fit the model
        return "lighthubert", check
    if group == "finetune" and name.startswith("asr"):
        from .tasks.asr import AsrFinetuneConfig
        return "asr", lambda paths: load_config(AsrFinetuneConfig, paths, PLACEHOLDERS["asr"])
    if group == "superb":
        from .tasks.superb import SuperbConfig
        return "superb", lambda paths: load_config(SuperbConfig, paths, PLACEHOLDERS["superb"])
    if group == "tts" and name.startswith("vec2wav"):
        from .tasks.vec2wav import Vec2WavTrainConfig
        return "vec2wav", lambda paths: load_config(Vec2WavTrainConfig, paths, PLACEHOLDERS["tts"])
    if group == "tts" and name.startswith("text2vec"):
        from .tasks.text2vec import Text2VecTrainConfig
        return "text2vec", lambda paths: load_config(Text2VecTrainConfig, paths, PLACEHOLDERS["tts"])
    if group == "asd":
        from .tasks.asd import AsdTrainConfig
        return "asd", lambda paths: load_config(AsdTrainConfig, paths, ["upstream=exp/upstream"])
    if group == "lighthubert" and name.startswith("space_"):
        from .models.lighthubert import SearchSpace
        return "lighthubert_space", lambda paths: SearchSpace.load(paths[-1])
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
            result.error = (f"no schema for {rel}: put it under pretrain/ (hubert_*, w2v_bert_*), distill/ "
                            "(lighthubert_*), finetune/ (asr_*), superb/, tts/ (vec2wav_*, text2vec_*), asd/ or lighthubert/ (space_*)")
        else:
            try:
                bases = [str(conf_dir / b) + ("" if b.endswith(".yaml") else ".yaml") for b in bases_of(path)]
                check(bases + [str(path)])
            except Exception as e:  # noqa: BLE001 - every failure is reported with its file
                result.error = f"{type(e).__name__}: {e}"
        out.append(result)
    return out


def format_report(results: Sequence[ConfCheck], conf_dir: Path = CONF_DIR) -> str:
    lines = []
    for r in results:
        rel = r.path.relative_to(conf_dir)
        lines.append(f"{'ok  ' if r.error is None else 'FAIL'} {str(rel):<40} {r.schema}"
                     + ("" if r.error is None else f"\n     {r.error}"))
    bad = sum(r.error is not None for r in results)
    lines.append(f"{len(results) - bad}/{len(results)} configs valid")
    return "\n".join(lines)
