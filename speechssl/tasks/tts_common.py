"""What both WavThruVec stages share: the upstream features and speaker embeddings of a data dir, the speaker
conditioning's sizes, exported folders (``<kind>.yaml`` + ``model.safetensors``), and the fit-then-export driver.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import torch
from omegaconf import OmegaConf

from ..data.kaldi_dir import DataDir
from ..errors import InputError
from ..hub import load_upstream
from ..pipelines.extract import extract_features, extraction_hop, read_features
from ..pipelines.speaker_embedding import logmel_speaker_embedding, speaker_embedding
from ..pipelines.speaker_perturb import perturbed_data_dir

log = logging.getLogger(__name__)


@dataclass
class SpeakerConfig:
    kind: str = "reference"  # reference (embedding of reference audio: zero-shot) | table | none
    source: str = "upstream"  # of a reference embedding: upstream (layer `layer`) | logmel (80-bin log-mel)
    layer: int = 1  # upstream layer whose mean + std over time is the embedding

    def validate(self) -> None:
        if self.kind not in ("reference", "table", "none"):
            raise InputError(f"speaker.kind must be reference, table or none, got {self.kind!r}")
        if self.source not in ("upstream", "logmel"):
            raise InputError(f"speaker.source must be upstream or logmel, got {self.source!r}")


def ensure_features(cfg, data_dir: str, name: str) -> Path:
    """The extraction holding ``cfg.layer`` and ``cfg.speaker.layer`` for ``data_dir`` (extracted if absent)."""
    if cfg.data.features:
        return Path(cfg.data.features) / name

    out = Path(cfg.trainer.out_dir) / "features" / name
    layers = sorted({cfg.layer, cfg.speaker.layer})
    if not all((out / f"layer{layer}" / "feats.scp").is_file() for layer in layers):
        extract_features(load_upstream(cfg.upstream), data_dir, out, layers, "ark", progress=False)
    return out


def feature_hop(cfg) -> int:
    """Samples per frame of the training features' upstream, read from their extraction (the upstream is not
    loaded again once its features exist)."""
    return extraction_hop(ensure_features(cfg, cfg.data.train, "train"))


def read_layer(feats_dir: Path, layer: int) -> Dict[str, np.ndarray]:
    return {u: np.asarray(a, dtype=np.float32) for u, a in read_features(feats_dir, layer)}


def split_features(cfg, data_dir: str, name: str) -> Tuple[Dict[str, np.ndarray], Dict[str, np.ndarray]]:
    """``({utt: features [T, F]}, {utt: speaker embedding [S]})`` of one split."""
    fdir = ensure_features(cfg, data_dir, name)
    feats = read_layer(fdir, cfg.layer)
    if cfg.speaker.source == "logmel":
        data = DataDir.read(data_dir)
        return feats, {u: logmel_speaker_embedding(data.load_audio(u)) for u in feats}
    spk_src = feats if cfg.speaker.layer == cfg.layer else read_layer(fdir, cfg.speaker.layer)
    return feats, {u: speaker_embedding(a) for u, a in spk_src.items()}


def perturbed_features(cfg, data_dir: str) -> Dict[str, np.ndarray]:
    """``{utt: [T, F]}``: layer ``cfg.layer`` of a voice-shifted copy of ``data_dir`` (``data.perturb_semitones``,
    :mod:`speechssl.pipelines.speaker_perturb`), same frames as the clean features. Kept under
    ``out_dir/perturbed/<split>_shift<S>_seed<N>``; the extraction there refuses another upstream."""
    s, seed = cfg.data.perturb_semitones, cfg.data.seed
    base = Path(cfg.trainer.out_dir) / "perturbed" / f"{Path(data_dir).name}_shift{s:g}_seed{seed}"
    pdir = perturbed_data_dir(data_dir, base / "data", s, seed)
    fdir = base / "features"
    if not (fdir / f"layer{cfg.layer}" / "feats.scp").is_file():
        extract_features(load_upstream(cfg.upstream), pdir, fdir, [cfg.layer], "ark", progress=False)
    return read_layer(fdir, cfg.layer)


def prepare_splits(cfg, train=None) -> Tuple[Path, List[str], List[tuple]]:
    """Validate ``cfg``, make ``out_dir``, seed; -> ``(out_dir, training speakers, [(split, data dir, features,
    speaker embeddings)])`` for the train (``train``, else ``cfg.data.train``) and (if set) valid splits."""

    cfg.validate()
    out = Path(cfg.trainer.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.trainer.seed)
    train = str(train or cfg.data.train)
    speakers = sorted(set(DataDir.read(train).utt2spk.values()))
    splits = [
        (name, d, *split_features(cfg, d, name)) for name, d in (("train", train), ("valid", cfg.data.valid)) if d
    ]
    return out, speakers, splits


def set_speaker_sizes(model_cfg, kind: str, embedding_dim: int, num_speakers: int) -> None:
    """``speaker_dim`` / ``num_speakers`` of a model config from the conditioning chosen."""
    if kind == "reference":
        model_cfg.speaker_dim, model_cfg.num_speakers = embedding_dim, 0
    elif kind == "table":
        model_cfg.speaker_dim, model_cfg.num_speakers = model_cfg.speaker_dim or 64, num_speakers
    else:
        model_cfg.speaker_dim, model_cfg.num_speakers = 0, 0


def speaker_inputs(kind: str, batch) -> dict:
    """The model's speaker keyword arguments for a batch."""
    return (
        {}
        if kind == "none"
        else {"speaker_ids": batch["speaker_id"]}
        if kind == "table"
        else {"speaker": batch["speaker"]}
    )


def export_spec(cfg, config_key: str, speakers: List[str], **extra) -> dict:
    return {
        config_key: OmegaConf.to_container(OmegaConf.structured(cfg.model)),
        "upstream": cfg.upstream,
        "layer": cfg.layer,
        "speaker": {"kind": cfg.speaker.kind, "source": cfg.speaker.source, "layer": cfg.speaker.layer},
        "speakers": speakers,
        **extra,
    }
