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
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List

import lightning as L
import numpy as np
import torch

from ..audio.phones import PHONE_SET, SILENCE
from ..config import MISSING
from ..models.text2vec import Text2Vec, Text2VecConfig
from .common import OptimConfig, TrainerConfig, build_optimizer, build_trainer, last_checkpoint, write_json
from .vec2wav import SpeakerConfig, VocoderDataConfig, ensure_features, read_layer, speaker_embedding

log = logging.getLogger(__name__)
FRAME_RATE = 50.0
PHONE_IDS = {p: i + 1 for i, p in enumerate(PHONE_SET)}     # 0 pads


@dataclass
class AcousticDataConfig(VocoderDataConfig):
    durations: str = "alignments"    # alignments (alignments.ctm, else MAS) | mas
    batch_size: int = 16


@dataclass
class Text2VecTrainConfig:
    upstream: str = MISSING
    layer: int = 6
    speaker: SpeakerConfig = field(default_factory=SpeakerConfig)
    model: Text2VecConfig = field(default_factory=Text2VecConfig)
    data: AcousticDataConfig = field(default_factory=AcousticDataConfig)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=1e-3, warmup_steps=200, total_steps=4000,
                                                                   grad_clip=1.0))
    trainer: TrainerConfig = field(default_factory=lambda: TrainerConfig(out_dir="exp/text2vec", val_every_steps=200,
                                                                         checkpoint_every_steps=200))

    def validate(self) -> None:
        if self.data.durations not in ("alignments", "mas"):
            raise ValueError(f"data.durations must be alignments or mas, got {self.data.durations!r}")
        if self.speaker.kind not in ("reference", "table", "none"):
            raise ValueError(f"speaker.kind must be reference, table or none, got {self.speaker.kind!r}")
        self.model.validate()


def phone_ids(phones: List[str], where: str = "") -> List[int]:
    unknown = sorted({p for p in phones if p not in PHONE_IDS})
    if unknown:
        raise ValueError(f"{where}: phones {unknown} are not in the phone set ({' '.join(PHONE_SET)})")
    return [PHONE_IDS[p] for p in phones]


def phonemize(text: str) -> List[str]:
    """Text -> phones of the mini corpus's set, through the bundled espeak-ng (pauses as ``SIL``)."""
    from ..audio.espeak import Espeak
    from ..audio.synth import segments_from_events

    syn = Espeak().synthesize(text)
    return [p for p, _, _ in segments_from_events(syn.phonemes, syn.audio.shape[0], 1.0)]


def alignments_from_ctm(path: Path) -> Dict[str, tuple]:
    """``alignments.ctm`` -> ``{utt: (phones, frames per phone at 50 Hz)}`` (boundaries rounded, so they add up)."""
    segs: Dict[str, list] = {}
    for line in Path(path).read_text().splitlines():
        utt, _, s, d, p = line.split()
        segs.setdefault(utt, []).append((float(s), float(s) + float(d), p))
    out = {}
    for utt, ss in segs.items():
        bounds = [round(s * FRAME_RATE) for s, _, _ in ss] + [round(ss[-1][1] * FRAME_RATE)]
        out[utt] = ([p for _, _, p in ss], [b - a for a, b in zip(bounds, bounds[1:])])
    return out


class AcousticDataset(torch.utils.data.Dataset):
    def __init__(self, data_dir: str, feats: Dict[str, np.ndarray], spk_emb: Dict[str, np.ndarray],
                 use_alignments: bool, speakers: List[str], seed: int = 0):
        from ..data.kaldi_dir import DataDir

        self.data = DataDir.read(data_dir)
        self.feats, self.spk_emb = feats, spk_emb
        ctm = Path(data_dir) / "alignments.ctm"
        self.align = alignments_from_ctm(ctm) if use_alignments and ctm.is_file() else {}
        phones = self.data.extra.get("text.phone", {})
        self.items = []
        for utt in self.data.utt_ids:
            if utt not in feats:
                raise ValueError(f"{data_dir}: utterance {utt} has no extracted features")
            if utt in self.align:
                seq, dur = self.align[utt]
            elif utt in phones:
                seq, dur = [SILENCE] + phones[utt].split() + [SILENCE], None
            else:
                raise ValueError(f"{data_dir}: utterance {utt} has neither alignments.ctm nor text.phone")
            self.items.append((utt, phone_ids(seq, f"{data_dir}/{utt}"), dur))
        self.spk_index = {s: i for i, s in enumerate(speakers)}
        self.by_spk = self.data.spk2utt
        self.rng = random.Random(seed)

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        utt, ids, dur = self.items[i]
        f = self.feats[utt]
        if dur is not None:                  # the alignment's length and the upstream's may differ by a frame
            dur = list(dur)
            dur[-1] = max(0, dur[-1] + len(f) - sum(dur))
            f = f[: sum(dur)]
        spk = self.data.utt2spk[utt]
        others = [u for u in self.by_spk[spk] if u != utt] or [utt]
        return {"utt": utt, "phones": torch.tensor(ids), "features": torch.tensor(f),
                "durations": None if dur is None else torch.tensor(dur),
                "speaker": torch.from_numpy(self.spk_emb[self.rng.choice(others)]),
                "speaker_id": self.spk_index.get(spk, 0)}


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
    return {"phones": phones, "phone_lengths": torch.tensor([len(it["phones"]) for it in items]),
            "features": feats, "feature_lengths": torch.tensor([len(it["features"]) for it in items]),
            "lengths": torch.tensor([len(it["features"]) * 320 for it in items]),   # audio samples, for throughput
            "durations": durs, "speaker": torch.stack([it["speaker"] for it in items]),
            "speaker_id": torch.tensor([it["speaker_id"] for it in items]), "utts": [it["utt"] for it in items]}


class Text2VecTask(L.LightningModule):
    def __init__(self, cfg: Text2VecTrainConfig):
        super().__init__()
        self.cfg = cfg
        self.model = Text2Vec(cfg.model)
        self.trained_seconds = 0.0

    def _speaker(self, batch):
        kind = self.cfg.speaker.kind
        return {} if kind == "none" else {"speaker_ids": batch["speaker_id"]} if kind == "table" else \
            {"speaker": batch["speaker"]}

    def _step(self, batch, prefix):
        out = self.model(batch["phones"], batch["phone_lengths"], batch["features"], batch["feature_lengths"],
                         durations=batch["durations"], **self._speaker(batch))
        self.log_dict({f"{prefix}/{k}": out[k] for k in ("loss", "l1", "cos", "prior", "duration")},
                      prog_bar=prefix == "train", batch_size=batch["phones"].shape[0])
        return out["loss"]

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def configure_optimizers(self):
        return build_optimizer(self.model.parameters(), self.cfg.optim)

    def on_save_checkpoint(self, checkpoint):
        checkpoint["trained_seconds"] = self.trained_seconds

    def on_load_checkpoint(self, checkpoint):
        self.trained_seconds = checkpoint.get("trained_seconds", 0.0)


class AcousticDataModule(L.LightningDataModule):
    def __init__(self, cfg, train, valid):
        super().__init__()
        self.cfg, self.train, self.valid = cfg, train, valid

    def train_dataloader(self):
        g = torch.Generator().manual_seed(self.cfg.data.seed)
        return torch.utils.data.DataLoader(self.train, self.cfg.data.batch_size, shuffle=True, generator=g,
                                           collate_fn=collate, num_workers=self.cfg.data.num_workers, drop_last=True)

    def val_dataloader(self):
        if self.valid is None:
            return []
        idx = list(range(min(self.cfg.data.valid_utterances * 4, len(self.valid))))
        return torch.utils.data.DataLoader(torch.utils.data.Subset(self.valid, idx), self.cfg.data.batch_size,
                                           collate_fn=collate)


def save_acoustic(model: Text2Vec, out: Path, cfg: Text2VecTrainConfig, speakers: List[str], metadata: dict) -> Path:
    from omegaconf import OmegaConf
    from safetensors.torch import save_file

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    spec = {"text2vec": OmegaConf.to_container(OmegaConf.structured(cfg.model)), "upstream": cfg.upstream,
            "layer": cfg.layer, "speaker": {"kind": cfg.speaker.kind, "layer": cfg.speaker.layer},
            "phones": PHONE_SET, "speakers": speakers, "metadata": metadata}
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(out / "model.safetensors.tmp"))
    (out / "model.safetensors.tmp").replace(out / "model.safetensors")
    (out / "acoustic.yaml").write_text(OmegaConf.to_yaml(spec))
    return out


def load_acoustic(path) -> tuple:
    from omegaconf import OmegaConf
    from safetensors.torch import load_file

    path = Path(path)
    if not (path / "acoustic.yaml").is_file():
        raise FileNotFoundError(f"{path}: not a text2vec export (no acoustic.yaml)")
    spec = OmegaConf.to_container(OmegaConf.load(path / "acoustic.yaml"))
    model = Text2Vec(OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(Text2VecConfig), spec["text2vec"])))
    model.load_state_dict(load_file(str(path / "model.safetensors")))
    return model.eval(), spec


def train_acoustic(cfg: Text2VecTrainConfig) -> dict:
    from ..config import to_yaml
    from ..data.kaldi_dir import DataDir
    from .common import StepTimeLimit

    cfg.validate()
    out = Path(cfg.trainer.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.trainer.seed)
    speakers = sorted(set(DataDir.read(cfg.data.train).utt2spk.values()))
    sets = {}
    for name, d in {"train": cfg.data.train, **({"valid": cfg.data.valid} if cfg.data.valid else {})}.items():
        fdir = ensure_features(cfg, d, name)
        feats = read_layer(fdir, cfg.layer)
        spk_src = feats if cfg.speaker.layer == cfg.layer else read_layer(fdir, cfg.speaker.layer)
        emb = {u: speaker_embedding(a) for u, a in spk_src.items()}
        cfg.model.feature_dim = next(iter(feats.values())).shape[1]
        sets[name] = AcousticDataset(d, feats, emb, cfg.data.durations == "alignments", speakers, cfg.data.seed)
    cfg.model.num_phones = len(PHONE_SET) + 1
    emb_dim = len(next(iter(sets["train"].spk_emb.values())))
    if cfg.speaker.kind == "reference":
        cfg.model.speaker_dim, cfg.model.num_speakers = emb_dim, 0
    elif cfg.speaker.kind == "table":
        cfg.model.speaker_dim, cfg.model.num_speakers = cfg.model.speaker_dim or 64, len(speakers)
    else:
        cfg.model.speaker_dim, cfg.model.num_speakers = 0, 0
    (out / "config.yaml").write_text(to_yaml(cfg))
    task = Text2VecTask(cfg)
    dm = AcousticDataModule(cfg, sets["train"], sets.get("valid"))
    callbacks = [StepTimeLimit(cfg.trainer.max_time_minutes)] if cfg.trainer.max_time_minutes else []
    trainer = build_trainer(TrainerConfig(**{**cfg.trainer.__dict__, "max_time_minutes": None}), cfg.optim, callbacks)
    t0 = time.time()
    trainer.fit(task, datamodule=dm, ckpt_path=last_checkpoint(out))
    trainer.save_checkpoint(out / "checkpoints" / "last.ckpt")
    summary = {"steps": trainer.global_step, "trained_seconds": round(task.trained_seconds, 1),
               "wall_seconds_this_run": round(time.time() - t0, 1),
               "durations": "alignments" if sets["train"].align else "mas",
               "parameters": sum(p.numel() for p in task.model.parameters()),
               "metrics": {k: round(float(v), 5) for k, v in trainer.callback_metrics.items()}}
    if trainer.is_global_zero:
        summary["export"] = str(save_acoustic(task.model, out / "final", cfg, speakers, {"steps": trainer.global_step}))
        write_json(out / "summary.json", summary)
    return summary
