"""Import official LightHuBERT checkpoints (fairseq format, Wang et al., 2022).

``cfg["model"]["_name"]`` is ``hubert_pruner`` (a stage-2 supernet; its ``pruner_supernet`` YAML
names the Base or Small space, and the default subnet is the one it serves, as the authors'
s3prl upstream does) or ``student_hubert`` (the stage-1 student: the max subnet). Encoder keys are
fairseq HuBERT's (``encoder.layers.N.fc1``, ``encoder.pos_conv.0.weight_g`` ...); the prediction
head is ``layer_pred_heads.L.weight`` ``[teacher_dim, hidden]``.
"""

import logging
import re
from pathlib import Path
from typing import Any, Dict, Union

from ..errors import InputError, NotFoundError
from ..models.lighthubert import LightHubert
from ..models.lighthubert_space import OFFICIAL_SPACES, SearchSpace
from ..models.registry import load_state_strict
from .fairseq import RULES, config_from_fairseq, model_cfg, read_fairseq_checkpoint
from .keymap import rename_keys, split_keys

log = logging.getLogger(__name__)

LIGHTHUBERT_NAMES = ("hubert_pruner", "student_hubert")
IGNORED = (r"label_embs_concat", r"final_proj\..*")  # HuBERT-pretraining heads some checkpoints carry


def is_lighthubert(ckpt: Dict[str, Any]) -> bool:
    try:
        return model_cfg(ckpt).get("_name") in LIGHTHUBERT_NAMES
    except KeyError:
        return False


def official_space(m: Dict[str, Any]) -> str:
    """``base`` or ``small`` from the checkpoint's config (``supernet_type`` or the supernet YAML's name)."""
    kind = str(m.get("supernet_type") or "").lower()
    yaml_name = str(m.get("pruner_supernet") or "").lower()
    if yaml_name.endswith("small.yaml"):
        kind = "small"
    elif yaml_name.endswith("base.yaml"):
        kind = "base"
    return kind if kind in OFFICIAL_SPACES else "base"


def supernet_from_checkpoint(ckpt: Dict[str, Any], source: str = "checkpoint") -> LightHubert:
    """A :class:`LightHubert` with the checkpoint's weights and its served subnet set."""
    m = model_cfg(ckpt)
    name = m.get("_name")
    if name not in LIGHTHUBERT_NAMES:
        raise InputError(f"{source}: cfg.model._name={name!r} is not a LightHuBERT model {LIGHTHUBERT_NAMES}")
    state = dict(ckpt["model"])
    state, heads = split_keys(state, [r"layer_pred_heads\..*"])
    state, ignored = split_keys(state, IGNORED)
    config = config_from_fairseq({**m, "_name": "hubert"}, state)
    kind = official_space(m)
    teacher_dim = int(m.get("teacher_embed_dim", config.hidden_size))
    model = LightHubert(config, SearchSpace.from_dict(dict(OFFICIAL_SPACES[kind])), teacher_dim)
    renamed, unmatched = rename_keys(state, RULES)
    if unmatched:
        raise NotFoundError(f"{source}: unknown checkpoint keys ({len(unmatched)}): {', '.join(unmatched)}")
    load_state_strict(model.encoder, renamed, source)
    if heads:
        last = max(heads, key=lambda k: int(re.match(r"layer_pred_heads\.(\d+)\.", k).group(1)))
        w = heads[last]
        if w.shape[0] != teacher_dim:
            raise InputError(
                f"{source}: {last} predicts {w.shape[0]} dims; only single-target heads "
                f"(teacher_embed_dim={teacher_dim}) are supported"
            )
        model.prediction_head.weight.data.copy_(w)
        if len(heads) > 1:
            log.warning("%s: kept %s, dropped the other layer heads %s", source, last, sorted(set(heads) - {last}))
    model.set_subnet("default" if name == "hubert_pruner" else "max")
    model.metadata = {
        "source": source,
        "format": "lighthubert",
        "space": kind,
        "served_subnet": model.subnet.to_dict(),
        "ignored": sorted(ignored),
    }
    return model.eval()


def import_lighthubert(path: Union[str, Path], trust: bool = False) -> LightHubert:
    return supernet_from_checkpoint(read_fairseq_checkpoint(path, trust), str(path))
