"""Training WavThruVec's acoustic model (``speechssl tts train-acoustic``): phones -> SSL features.

Needs transcribed speech. Inputs are phone ids in the mini corpus's set (``speechssl.audio.phones``;
text is phonemized with the bundled espeak-ng into the same set), targets the vocoder's upstream layer,
extracted once as for the vocoder (:func:`speechssl.tasks.vec2wav.ensure_features`). Durations come from
the data dir's phone alignments (``alignments.ctm``) when ``durations: alignments`` and the file is
there, else from monotonic alignment search inside the model (``durations: mas``).
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List

import numpy as np
import torch

from ..audio.phones import PHONE_SET, SILENCE
from ..config import MISSING
from ..constants import SAMPLE_RATE
from ..corpus.phonemize import phone_ids
from ..data.kaldi_dir import DataDir
from ..errors import InputError
from ..models.text2vec import Text2Vec, Text2VecConfig
from ..training import (
    OptimConfig,
    SplitsDataModule,
    SupervisedSteps,
    TrainerConfig,
    TrainingTask,
    fit_and_export,
    save_export,
)
from .tts_common import SpeakerConfig, export_spec, feature_hop, prepare_splits, set_speaker_sizes, speaker_inputs
from .vocoder_data import VocoderDataConfig

log = logging.getLogger(__name__)


@dataclass
class AcousticDataConfig(VocoderDataConfig):
    durations: str = "alignments"  # alignments (alignments.ctm, else MAS) | mas
    batch_size: int = 16


@dataclass
class Text2VecTrainConfig:
    upstream: str = MISSING
    layer: int = 6
    speaker: SpeakerConfig = field(default_factory=SpeakerConfig)
    model: Text2VecConfig = field(default_factory=Text2VecConfig)
    data: AcousticDataConfig = field(default_factory=AcousticDataConfig)
    optim: OptimConfig = field(
        default_factory=lambda: OptimConfig(lr=1e-3, warmup_steps=200, total_steps=4000, grad_clip=1.0)
    )
    trainer: TrainerConfig = field(
        default_factory=lambda: TrainerConfig(out_dir="exp/text2vec", val_every_steps=200, checkpoint_every_steps=200)
    )

    def validate(self) -> None:
        if self.data.durations not in ("alignments", "mas"):
            raise InputError(f"data.durations must be alignments or mas, got {self.data.durations!r}")
        if self.data.perturb_semitones:
            raise InputError("data.perturb_semitones is the vocoder's option: text2vec predicts the clean features")
        if self.data.new_voices:
            raise InputError("data.new_voices is the vocoder's option: text2vec learns the corpus's own voices")
        if self.data.target_train or self.data.target_valid:
            raise InputError(
                "data.target_train / target_valid are the vocoder's options: text2vec predicts features "
                "of data.train's own audio"
            )
        self.speaker.validate()
        self.model.validate()


def alignments_from_ctm(path: Path, frame_rate: float = 50.0) -> Dict[str, tuple]:
    """``alignments.ctm`` -> ``{utt: (phones, frames per phone at frame_rate Hz)}`` (boundaries rounded, so they
    add up)."""
    segs: Dict[str, list] = {}
    for line in Path(path).read_text().splitlines():
        utt, _, s, d, p = line.split()
        segs.setdefault(utt, []).append((float(s), float(s) + float(d), p))
    out = {}
    for utt, ss in segs.items():
        bounds = [round(s * frame_rate) for s, _, _ in ss] + [round(ss[-1][1] * frame_rate)]
        out[utt] = ([p for _, _, p in ss], [b - a for a, b in zip(bounds, bounds[1:])])
    return out


class AcousticDataset(torch.utils.data.Dataset):
    def __init__(
        self,
        data_dir: str,
        feats: Dict[str, np.ndarray],
        spk_emb: Dict[str, np.ndarray],
        use_alignments: bool,
        speakers: List[str],
        seed: int = 0,
        hop: int = 320,
    ):

        self.data = DataDir.read(data_dir)
        self.feats, self.spk_emb = feats, spk_emb
        ctm = Path(data_dir) / "alignments.ctm"
        self.hop = hop  # audio samples per feature frame (the upstream's)
        self.align = alignments_from_ctm(ctm, SAMPLE_RATE / hop) if use_alignments and ctm.is_file() else {}
        phones = self.data.extra.get("text.phone", {})
        self.items = []
        for utt in self.data.utt_ids:
            if utt not in feats:
                raise InputError(f"{data_dir}: utterance {utt} has no extracted features")
            if utt in self.align:
                seq, dur = self.align[utt]
            elif utt in phones:
                seq, dur = [SILENCE] + phones[utt].split() + [SILENCE], None
            else:
                raise InputError(f"{data_dir}: utterance {utt} has neither alignments.ctm nor text.phone")
            self.items.append((utt, phone_ids(seq, f"{data_dir}/{utt}"), dur))
        self.spk_index = {s: i for i, s in enumerate(speakers)}
        self.by_spk = self.data.spk2utt
        self.rng = random.Random(seed)

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        utt, ids, dur = self.items[i]
        f = self.feats[utt]
        if dur is not None:  # the alignment's length and the upstream's may differ by a frame
            dur = list(dur)
            dur[-1] = max(0, dur[-1] + len(f) - sum(dur))
            f = f[: sum(dur)]
        spk = self.data.utt2spk[utt]
        others = [u for u in self.by_spk[spk] if u != utt] or [utt]
        return {
            "utt": utt,
            "phones": torch.tensor(ids),
            "features": torch.tensor(f),
            "durations": None if dur is None else torch.tensor(dur),
            "speaker": torch.from_numpy(self.spk_emb[self.rng.choice(others)]),
            "speaker_id": self.spk_index.get(spk, 0),
            "samples": len(f) * self.hop,
        }


def collate(items):
    B = len(items)
    Tx = max(len(it["phones"]) for it in items)
    Ty = max(len(it["features"]) for it in items)
    F = items[0]["features"].shape[1]
    phones = torch.zeros(B, Tx, dtype=torch.long)
    feats = torch.zeros(B, Ty, F)
    with_d = all(it["durations"] is not None for it in items)
    durs = torch.zeros(B, Tx, dtype=torch.long) if with_d else None
    for i, it in enumerate(items):
        phones[i, : len(it["phones"])] = it["phones"]
        feats[i, : len(it["features"])] = it["features"]
        if with_d:
            durs[i, : len(it["durations"])] = it["durations"]
    return {
        "phones": phones,
        "phone_lengths": torch.tensor([len(it["phones"]) for it in items]),
        "features": feats,
        "feature_lengths": torch.tensor([len(it["features"]) for it in items]),
        "lengths": torch.tensor([it["samples"] for it in items]),  # audio samples, for throughput
        "durations": durs,
        "speaker": torch.stack([it["speaker"] for it in items]),
        "speaker_id": torch.tensor([it["speaker_id"] for it in items]),
        "utts": [it["utt"] for it in items],
    }


class Text2VecTask(SupervisedSteps, TrainingTask):
    def __init__(self, cfg: Text2VecTrainConfig):
        super().__init__()
        self.cfg = cfg
        self.model = Text2Vec(cfg.model)

    def _speaker(self, batch):
        return speaker_inputs(self.cfg.speaker.kind, batch)

    def _step(self, batch, prefix):
        out = self.model(
            batch["phones"],
            batch["phone_lengths"],
            batch["features"],
            batch["feature_lengths"],
            durations=batch["durations"],
            **self._speaker(batch),
        )
        self.log_dict(
            {f"{prefix}/{k}": out[k] for k in ("loss", "l1", "cos", "prior", "duration")},
            prog_bar=prefix == "train",
            batch_size=batch["phones"].shape[0],
        )
        return out["loss"]


def train_acoustic(cfg: Text2VecTrainConfig) -> dict:
    out, speakers, splits = prepare_splits(cfg)
    hop = feature_hop(cfg)  # durations are counted in the upstream's frames
    sets = {}
    for name, d, feats, emb in splits:
        cfg.model.feature_dim = next(iter(feats.values())).shape[1]
        sets[name] = AcousticDataset(d, feats, emb, cfg.data.durations == "alignments", speakers, cfg.data.seed, hop)
    cfg.model.num_phones = len(PHONE_SET) + 1
    set_speaker_sizes(cfg.model, cfg.speaker.kind, len(next(iter(sets["train"].spk_emb.values()))), len(speakers))
    task = Text2VecTask(cfg)
    dm = SplitsDataModule(
        cfg.data, sets["train"], sets.get("valid"), collate, 4 * cfg.data.valid_utterances, cfg.data.batch_size
    )

    def export(trainer, summary) -> Path:
        return save_export(
            task.model,
            out / "final",
            "acoustic",
            export_spec(cfg, "text2vec", speakers, phones=PHONE_SET, metadata={"steps": summary["steps"]}),
        )

    return fit_and_export(
        cfg,
        task,
        dm,
        export,
        extra_summary={
            "durations": "alignments" if sets["train"].align else "mas",
            "parameters": sum(p.numel() for p in task.model.parameters()),
        },
    )
