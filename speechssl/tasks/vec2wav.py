"""Training WavThruVec's vocoder (``speechssl tts train-vocoder``): SSL features -> 16 kHz waveform, GAN.

Untranscribed audio is enough. Before training, the upstream's ``layer`` (the vocoded features) and
``speaker.layer`` (the speaker embedding's source) are extracted once for the train and valid data dirs
with :func:`speechssl.extract.extract_features` (resumable; or point ``data.features`` at an existing
``speechssl extract`` output). Each utterance's speaker embedding is the L2-normalised mean and standard
deviation of its speaker layer over time; in training an utterance is conditioned on the embedding of
another utterance of its speaker, so the generator learns to take the voice from a reference rather than
from the content (what zero-shot synthesis and voice conversion need).

Steps follow HiFi-GAN: a random crop of ``segment_frames`` feature frames and the matching
``segment_frames * hop`` samples; the discriminators step on ``(1 - D(x))^2 + D(G(s))^2``, then the
generator on ``adv + 2 fm + 45 mel``; AdamW (0.8, 0.99) at 2e-4 for both, decayed exponentially.
"""
from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import lightning as L
import numpy as np
import torch

from ..config import MISSING
from ..models.vec2wav import MultiPeriodDiscriminator, MultiScaleDiscriminator, Vec2WavConfig, Vec2WavGenerator
from ..objectives.gan import LogMel, discriminator_loss, generator_loss
from .common import OptimConfig, TrainerConfig, build_trainer, last_checkpoint, write_json

log = logging.getLogger(__name__)


@dataclass
class SpeakerConfig:
    kind: str = "reference"        # reference (embedding of reference audio: zero-shot) | table | none
    layer: int = 1                 # upstream layer whose mean + std over time is the embedding


@dataclass
class VocoderDataConfig:
    train: str = "data/train"
    valid: Optional[str] = "data/dev"
    features: Optional[str] = None  # an existing `speechssl extract` output holding both layers (else extracted)
    segment_frames: int = 32        # 32 x 320 = 10240 samples (HiFi-GAN: 8192)
    batch_size: int = 16
    valid_utterances: int = 8
    num_workers: int = 0
    seed: int = 0


@dataclass
class DiscriminatorConfig:
    periods: List[int] = field(default_factory=lambda: [2, 3, 5, 7, 11])
    mpd_channels: List[int] = field(default_factory=lambda: [32, 128, 512, 1024])
    msd_width: int = 128


@dataclass
class GanOptimConfig:
    lr: float = 2e-4
    betas: List[float] = field(default_factory=lambda: [0.8, 0.99])
    weight_decay: float = 0.01
    lr_decay: float = 0.999          # HiFi-GAN's ExponentialLR gamma, applied every `lr_decay_every` steps
    lr_decay_every: int = 200
    fm_weight: float = 2.0
    mel_weight: float = 45.0


@dataclass
class Vec2WavTrainConfig:
    upstream: str = MISSING          # the SSL model whose features are vocoded
    layer: int = 6
    speaker: SpeakerConfig = field(default_factory=SpeakerConfig)
    model: Vec2WavConfig = field(default_factory=Vec2WavConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    data: VocoderDataConfig = field(default_factory=VocoderDataConfig)
    optim: GanOptimConfig = field(default_factory=GanOptimConfig)
    trainer: TrainerConfig = field(default_factory=lambda: TrainerConfig(out_dir="exp/vec2wav", val_every_steps=200,
                                                                         checkpoint_every_steps=200))

    def validate(self) -> None:
        if self.speaker.kind not in ("reference", "table", "none"):
            raise ValueError(f"speaker.kind must be reference, table or none, got {self.speaker.kind!r}")
        if self.data.segment_frames < 4:
            raise ValueError("data.segment_frames must be at least 4")
        self.model.validate()


# ----------------------------------------------------------------------------------- features
def ensure_features(cfg: Vec2WavTrainConfig, data_dir: str, name: str) -> Path:
    """The extraction holding ``layer`` and ``speaker.layer`` for ``data_dir`` (extracted if absent)."""
    if cfg.data.features:
        return Path(cfg.data.features) / name
    from ..extract import extract_features
    from ..models.upstream import load_upstream

    out = Path(cfg.trainer.out_dir) / "features" / name
    layers = sorted({cfg.layer, cfg.speaker.layer})
    if not all((out / f"layer{layer}" / "feats.scp").is_file() for layer in layers):
        extract_features(load_upstream(cfg.upstream), data_dir, out, layers, "ark", progress=False)
    return out


def speaker_embedding(frames: np.ndarray) -> np.ndarray:
    """``[T, D]`` layer features -> ``[2 D]``: mean and standard deviation over time, L2-normalised."""
    v = np.concatenate([frames.mean(0), frames.std(0)]).astype(np.float32)
    return v / max(float(np.linalg.norm(v)), 1e-8)


def read_layer(feats_dir: Path, layer: int) -> Dict[str, np.ndarray]:
    from ..extract import read_features
    return {u: np.asarray(a, dtype=np.float32) for u, a in read_features(feats_dir, layer)}


class VocoderDataset(torch.utils.data.Dataset):
    """Random aligned crops: ``features [S, F]``, ``wav [S * hop]``, the speaker embedding of another
    utterance of the same speaker (or the speaker's index for a table)."""

    def __init__(self, data_dir: str, feats: Dict[str, np.ndarray], spk_emb: Dict[str, np.ndarray],
                 segment_frames: Optional[int], hop: int, speakers: List[str], seed: int = 0):
        from ..data.kaldi_dir import DataDir

        self.data = DataDir.read(data_dir)
        missing = [u for u in self.data.utt_ids if u not in feats]
        if missing:
            raise ValueError(f"{data_dir}: {len(missing)} utterances have no extracted features (first: {missing[0]})")
        self.utts = self.data.utt_ids
        self.feats, self.spk_emb, self.segment, self.hop = feats, spk_emb, segment_frames, hop
        self.spk_index = {s: i for i, s in enumerate(speakers)}
        self.by_spk = self.data.spk2utt
        self.rng = random.Random(seed)

    def __len__(self) -> int:
        return len(self.utts)

    def __getitem__(self, i: int):
        utt = self.utts[i]
        f = self.feats[utt]
        wav = self.data.load_audio(utt)
        T = min(len(f), len(wav) // self.hop)
        if T == 0:
            raise ValueError(f"{self.data.path}: utterance {utt} is shorter than one feature frame")
        S = self.segment or T
        start = self.rng.randrange(0, T - S + 1) if T > S else 0
        n = min(S, T)
        feats = np.zeros((S, f.shape[1]), np.float32)
        feats[:n] = f[start:start + n]
        audio = np.zeros(S * self.hop, np.float32)
        audio[: n * self.hop] = wav[start * self.hop:(start + n) * self.hop]
        spk = self.data.utt2spk[utt]
        others = [u for u in self.by_spk[spk] if u != utt] or [utt]
        ref = self.rng.choice(others) if self.segment else others[0]
        return {"features": torch.from_numpy(feats), "wav": torch.from_numpy(audio),
                "frames": n, "speaker": torch.from_numpy(self.spk_emb[ref]),
                "speaker_id": self.spk_index.get(spk, 0), "utt": utt}


def collate(items):
    S = max(it["features"].shape[0] for it in items)
    hop = items[0]["wav"].shape[0] // items[0]["features"].shape[0]
    feats = torch.zeros(len(items), S, items[0]["features"].shape[1])
    wavs = torch.zeros(len(items), S * hop)
    for i, it in enumerate(items):
        feats[i, : it["features"].shape[0]] = it["features"]
        wavs[i, : it["wav"].shape[0]] = it["wav"]
    frames = torch.tensor([it["frames"] for it in items])
    return {"features": feats, "wavs": wavs, "frames": frames, "lengths": frames * hop,
            "speaker": torch.stack([it["speaker"] for it in items]),
            "speaker_id": torch.tensor([it["speaker_id"] for it in items]), "utts": [it["utt"] for it in items]}


# ----------------------------------------------------------------------------------- the task
class Vec2WavTask(L.LightningModule):
    def __init__(self, cfg: Vec2WavTrainConfig):
        super().__init__()
        self.cfg = cfg
        self.automatic_optimization = False
        self.generator = Vec2WavGenerator(cfg.model)
        d = cfg.discriminator
        self.mpd = MultiPeriodDiscriminator(tuple(d.periods), tuple(d.mpd_channels))
        self.msd = MultiScaleDiscriminator(d.msd_width)
        self.log_mel = LogMel()
        self.trained_seconds = 0.0

    def _speaker(self, batch):
        kind = self.cfg.speaker.kind
        if kind == "none":
            return {}
        if kind == "table":
            return {"speaker_ids": batch["speaker_id"]}
        return {"speaker": batch["speaker"]}

    def training_step(self, batch, batch_idx):
        opt_g, opt_d = self.optimizers()
        real = batch["wavs"]
        fake = self.generator(batch["features"], **self._speaker(batch))
        # discriminators
        loss_d = discriminator_loss(self.mpd(real), self.mpd(fake.detach())) + \
            discriminator_loss(self.msd(real), self.msd(fake.detach()))
        opt_d.zero_grad()
        self.manual_backward(loss_d)
        opt_d.step()
        # generator
        from ..objectives.gan import mel_l1_loss
        mel = mel_l1_loss(self.log_mel, real, fake)
        parts = generator_loss([self.mpd(real), self.msd(real)], [self.mpd(fake), self.msd(fake)], mel,
                               self.cfg.optim.fm_weight, self.cfg.optim.mel_weight)
        opt_g.zero_grad()
        self.manual_backward(parts["loss"])
        opt_g.step()
        if (self.global_step // 2) % self.cfg.optim.lr_decay_every == 0:
            for s in self.lr_schedulers():
                s.step()
        self.log_dict({"train/loss_d": loss_d.detach(), "train/loss_g": parts["loss"].detach(),
                       "train/adv": parts["adv"].detach(), "train/fm": parts["fm"].detach(),
                       "train/mel": mel.detach()}, prog_bar=True, batch_size=real.shape[0])

    def validation_step(self, batch, batch_idx):
        fake = self.generator(batch["features"], **self._speaker(batch))
        n = int(batch["lengths"][0])
        mel = torch.nn.functional.l1_loss(self.log_mel(fake[:1, :n]), self.log_mel(batch["wavs"][:1, :n]))
        self.log("val/mel", mel, batch_size=1, prog_bar=True)

    def configure_optimizers(self):
        o = self.cfg.optim
        opt_g = torch.optim.AdamW(self.generator.parameters(), o.lr, tuple(o.betas), weight_decay=o.weight_decay)
        opt_d = torch.optim.AdamW(list(self.mpd.parameters()) + list(self.msd.parameters()), o.lr, tuple(o.betas),
                                  weight_decay=o.weight_decay)
        return [opt_g, opt_d], [torch.optim.lr_scheduler.ExponentialLR(opt_g, o.lr_decay),
                                torch.optim.lr_scheduler.ExponentialLR(opt_d, o.lr_decay)]

    def on_save_checkpoint(self, checkpoint):
        checkpoint["trained_seconds"] = self.trained_seconds

    def on_load_checkpoint(self, checkpoint):
        self.trained_seconds = checkpoint.get("trained_seconds", 0.0)


class VocoderDataModule(L.LightningDataModule):
    def __init__(self, cfg: Vec2WavTrainConfig, train: VocoderDataset, valid: Optional[VocoderDataset]):
        super().__init__()
        self.cfg, self.train, self.valid = cfg, train, valid

    def train_dataloader(self):
        g = torch.Generator().manual_seed(self.cfg.data.seed)
        return torch.utils.data.DataLoader(self.train, self.cfg.data.batch_size, shuffle=True, generator=g,
                                           collate_fn=collate, num_workers=self.cfg.data.num_workers, drop_last=True)

    def val_dataloader(self):
        if self.valid is None:
            return []
        idx = list(range(min(self.cfg.data.valid_utterances, len(self.valid))))
        return torch.utils.data.DataLoader(torch.utils.data.Subset(self.valid, idx), 1, collate_fn=collate)


# ----------------------------------------------------------------------------------- export / load
def save_vocoder(generator: Vec2WavGenerator, out: Path, cfg: Vec2WavTrainConfig, speakers: List[str],
                 metadata: dict) -> Path:
    from omegaconf import OmegaConf
    from safetensors.torch import save_file

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    spec = {"vec2wav": OmegaConf.to_container(OmegaConf.structured(cfg.model)), "upstream": cfg.upstream,
            "layer": cfg.layer, "speaker": {"kind": cfg.speaker.kind, "layer": cfg.speaker.layer},
            "speakers": speakers, "metadata": metadata}
    save_file({k: v.detach().contiguous() for k, v in generator.state_dict().items()}, str(out / "model.safetensors.tmp"))
    (out / "model.safetensors.tmp").replace(out / "model.safetensors")
    (out / "vocoder.yaml").write_text(OmegaConf.to_yaml(spec))
    return out


def load_vocoder(path) -> tuple:
    """An exported vocoder folder -> ``(generator in eval mode, spec dict)``."""
    from omegaconf import OmegaConf
    from safetensors.torch import load_file

    path = Path(path)
    if not (path / "vocoder.yaml").is_file():
        raise FileNotFoundError(f"{path}: not a vec2wav export (no vocoder.yaml)")
    spec = OmegaConf.to_container(OmegaConf.load(path / "vocoder.yaml"))
    cfg = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(Vec2WavConfig), spec["vec2wav"]))
    gen = Vec2WavGenerator(cfg)
    gen.load_state_dict(load_file(str(path / "model.safetensors")))
    return gen.eval(), spec


# ----------------------------------------------------------------------------------- driver
def train_vocoder(cfg: Vec2WavTrainConfig) -> dict:
    """Extract features (once), train with resume from ``out_dir/checkpoints/last.ckpt``, export ``final``."""
    from ..config import to_yaml
    from ..data.kaldi_dir import DataDir
    from .common import StepTimeLimit

    cfg.validate()
    out = Path(cfg.trainer.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.trainer.seed)
    dirs = {"train": cfg.data.train, **({"valid": cfg.data.valid} if cfg.data.valid else {})}
    sets, speakers = {}, sorted(set(DataDir.read(cfg.data.train).utt2spk.values()))
    for name, d in dirs.items():
        fdir = ensure_features(cfg, d, name)
        feats = read_layer(fdir, cfg.layer)
        spk_src = feats if cfg.speaker.layer == cfg.layer else read_layer(fdir, cfg.speaker.layer)
        emb = {u: speaker_embedding(a) for u, a in spk_src.items()}
        width = next(iter(feats.values())).shape[1]
        if cfg.model.feature_dim != width:
            log.info("model.feature_dim %d -> %d (layer %d of %s)", cfg.model.feature_dim, width, cfg.layer, cfg.upstream)
            cfg.model.feature_dim = width
        sets[name] = VocoderDataset(d, feats, emb, cfg.data.segment_frames if name == "train" else None,
                                    cfg.model.hop_length, speakers, cfg.data.seed)
    emb_dim = len(next(iter(sets["train"].spk_emb.values())))
    if cfg.speaker.kind == "reference":
        cfg.model.speaker_dim, cfg.model.num_speakers = emb_dim, 0
    elif cfg.speaker.kind == "table":
        cfg.model.speaker_dim = cfg.model.speaker_dim or 64
        cfg.model.num_speakers = len(speakers)
    else:
        cfg.model.speaker_dim, cfg.model.num_speakers = 0, 0
    (out / "config.yaml").write_text(to_yaml(cfg))
    task = Vec2WavTask(cfg)
    dm = VocoderDataModule(cfg, sets["train"], sets.get("valid"))
    callbacks = [StepTimeLimit(cfg.trainer.max_time_minutes)] if cfg.trainer.max_time_minutes else []
    tcfg = cfg.trainer
    # two optimizer steps per batch: Lightning counts both in global_step
    trainer = build_trainer(TrainerConfig(**{**tcfg.__dict__, "max_steps": 2 * tcfg.max_steps,
                                             "max_time_minutes": None,
                                             "checkpoint_every_steps": 2 * tcfg.checkpoint_every_steps}),
                            OptimConfig(grad_clip=0.0), callbacks)
    import warnings
    warnings.filterwarnings("ignore", message=".*ModelCheckpoint with manual optimization.*")  # we save after steps
    ckpt = last_checkpoint(out)
    t0 = time.time()
    trainer.fit(task, datamodule=dm, ckpt_path=ckpt)
    trainer.save_checkpoint(out / "checkpoints" / "last.ckpt")
    steps = trainer.global_step // 2
    summary = {"steps": steps, "trained_seconds": round(task.trained_seconds, 1),
               "wall_seconds_this_run": round(time.time() - t0, 1),
               "generator_parameters": sum(p.numel() for p in task.generator.parameters()),
               "metrics": {k: round(float(v), 5) for k, v in trainer.callback_metrics.items()}}
    if trainer.is_global_zero:
        summary["export"] = str(save_vocoder(task.generator, out / "final", cfg, speakers, {"steps": steps}))
        write_json(out / "summary.json", summary)
    return summary
