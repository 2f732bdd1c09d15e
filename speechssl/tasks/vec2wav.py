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
generator on ``adv + 2 fm + 45 mel``; AdamW (0.8, 0.99) at 2e-4 for both, decayed exponentially. With
``optim.discriminator_start_steps`` the generator first learns from the mel loss alone, as Parallel WaveGAN
does: those steps cost a third of a GAN step, which is what a CPU budget needs to reach intelligible speech.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch

from ..config import MISSING
from ..data.kaldi_dir import DataDir
from ..errors import InputError
from ..models.vec2wav import MultiPeriodDiscriminator, MultiScaleDiscriminator, Vec2WavConfig, Vec2WavGenerator
from ..objectives.gan import LogMel, discriminator_loss, generator_loss, mel_l1_loss
from ..pipelines.speaker_perturb import new_voices_data_dir
from ..training import (
    OptimConfig,
    SplitsDataModule,
    TrainerConfig,
    TrainingTask,
    fit_and_export,
    load_export,
    save_export,
)
from .tts_common import (
    SpeakerConfig,
    export_spec,
    feature_hop,
    perturbed_features,
    prepare_splits,
    set_speaker_sizes,
    speaker_inputs,
)

log = logging.getLogger(__name__)


@dataclass
class VocoderDataConfig:
    train: str = "data/train"
    valid: Optional[str] = "data/dev"
    features: Optional[str] = None  # an existing `speechssl extract` output holding both layers (else extracted)
    segment_frames: int = 32  # 32 x 320 = 10240 samples (HiFi-GAN: 8192)
    batch_size: int = 16
    valid_utterances: int = 8
    num_workers: int = 0
    seed: int = 0
    perturb_semitones: float = 0.0  # > 0: train on features of a voice-shifted copy (+-S semitones per utterance)
    new_voices: int = 0  # > 0: train on this many voice-shifted copies of train too, each speaker shifted
    #                                 by its own 1.5-4 semitones in each copy, as a new speaker (more voices to learn)
    target_train: Optional[str] = None  # a data dir with train's utterance ids whose audio is the target instead
    target_valid: Optional[str] = None  # (the clean twin, `corpus synth --preset mini-clean`: a denoising vocoder;
    #                                     with new_voices, its copies get the same shifts)


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
    lr_decay: float = 0.999  # HiFi-GAN's ExponentialLR gamma, applied every `lr_decay_every` steps
    lr_decay_every: int = 200
    fm_weight: float = 2.0
    mel_weight: float = 45.0
    discriminator_start_steps: int = 0  # mel L1 alone before this (Parallel WaveGAN's warm-up; HiFi-GAN: 0)


@dataclass
class Vec2WavTrainConfig:
    upstream: str = MISSING  # the SSL model whose features are vocoded
    layer: int = 6
    speaker: SpeakerConfig = field(default_factory=SpeakerConfig)
    model: Vec2WavConfig = field(default_factory=Vec2WavConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    data: VocoderDataConfig = field(default_factory=VocoderDataConfig)
    optim: GanOptimConfig = field(default_factory=GanOptimConfig)
    snapshot_every_steps: int = 0  # > 0: the generator also goes to out_dir/snapshots/stepN (`tts curve` scores them)
    trainer: TrainerConfig = field(
        default_factory=lambda: TrainerConfig(out_dir="exp/vec2wav", val_every_steps=200, checkpoint_every_steps=200)
    )

    def validate(self) -> None:
        check_vocoder_config(self)


def check_vocoder_config(cfg) -> None:
    """What every vocoder config (vec2wav, vec2mel) must hold: a valid speaker section and model, crops of at
    least 4 frames."""
    cfg.speaker.validate()
    if cfg.data.segment_frames < 4:
        raise InputError("data.segment_frames must be at least 4")
    cfg.model.validate()


# ----------------------------------------------------------------------------------- data
class VocoderDataset(torch.utils.data.Dataset):
    """Random aligned crops: ``features [S, F]``, ``wav [S * hop]``, the speaker embedding of another
    utterance of the same speaker (or the speaker's index for a table). The audio is ``data_dir``'s, or that of
    the same utterance in ``target_dir`` (sample-aligned with it, e.g. its clean twin)."""

    def __init__(
        self,
        data_dir: str,
        feats: Dict[str, np.ndarray],
        spk_emb: Dict[str, np.ndarray],
        segment_frames: Optional[int],
        hop: int,
        speakers: List[str],
        seed: int = 0,
        target_dir: Optional[str] = None,
    ):

        self.data = DataDir.read(data_dir)
        missing = [u for u in self.data.utt_ids if u not in feats]
        if missing:
            raise InputError(f"{data_dir}: {len(missing)} utterances have no extracted features (first: {missing[0]})")
        self.target = DataDir.read(target_dir) if target_dir else self.data
        self.target_dir = target_dir
        missing = sorted(set(self.data.utt_ids) - set(self.target.utt_ids))
        if missing:
            raise InputError(
                f"{target_dir}: {len(missing)} utterances of {data_dir} have no target audio (first: {missing[0]})"
            )
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
        wav = self.target_audio(utt)
        T = min(len(f), len(wav) // self.hop)
        if T == 0:
            raise InputError(f"{self.data.path}: utterance {utt} is shorter than one feature frame")
        S = self.segment or T
        start = self.rng.randrange(0, T - S + 1) if T > S else 0
        n = min(S, T)
        feats = np.zeros((S, f.shape[1]), np.float32)
        feats[:n] = f[start : start + n]
        audio = np.zeros(S * self.hop, np.float32)
        audio[: n * self.hop] = wav[start * self.hop : (start + n) * self.hop]
        spk = self.data.utt2spk[utt]
        others = [u for u in self.by_spk[spk] if u != utt] or [utt]
        ref = self.rng.choice(others) if self.segment else others[0]
        return {
            "features": torch.from_numpy(feats),
            "wav": torch.from_numpy(audio),
            "frames": n,
            "speaker": torch.from_numpy(self.spk_emb[ref]),
            "speaker_id": self.spk_index.get(spk, 0),
            "utt": utt,
        }

    def target_audio(self, utt: str) -> np.ndarray:
        """``[T]`` the audio the vocoder learns to make for ``utt``."""
        wav = self.target.load_audio(utt)
        frames = len(self.feats[utt])
        if self.target is not self.data and abs(len(wav) // self.hop - frames) > 2:  # frontends trim a frame or two
            raise InputError(
                f"{self.target.path}: the target audio of {utt} lasts {len(wav) // self.hop} frames of "
                f"{self.hop} samples, its features from {self.data.path} {frames}: not its twin"
            )
        return wav


def collate(items):
    S = max(it["features"].shape[0] for it in items)
    hop = items[0]["wav"].shape[0] // items[0]["features"].shape[0]
    feats = torch.zeros(len(items), S, items[0]["features"].shape[1])
    wavs = torch.zeros(len(items), S * hop)
    for i, it in enumerate(items):
        feats[i, : it["features"].shape[0]] = it["features"]
        wavs[i, : it["wav"].shape[0]] = it["wav"]
    frames = torch.tensor([it["frames"] for it in items])
    return {
        "features": feats,
        "wavs": wavs,
        "frames": frames,
        "lengths": frames * hop,
        "speaker": torch.stack([it["speaker"] for it in items]),
        "speaker_id": torch.tensor([it["speaker_id"] for it in items]),
        "utts": [it["utt"] for it in items],
    }


# ----------------------------------------------------------------------------------- the task
class Vec2WavTask(TrainingTask):
    def __init__(self, cfg: Vec2WavTrainConfig, speakers: Optional[List[str]] = None):
        super().__init__()
        self.cfg, self.speakers = cfg, speakers or []
        self.automatic_optimization = False
        self.generator = Vec2WavGenerator(cfg.model)
        d = cfg.discriminator
        self.mpd = MultiPeriodDiscriminator(tuple(d.periods), tuple(d.mpd_channels))
        self.msd = MultiScaleDiscriminator(d.msd_width)
        self.log_mel = LogMel()

    def _speaker(self, batch):
        return speaker_inputs(self.cfg.speaker.kind, batch)

    def training_step(self, batch, batch_idx):
        opt_g, opt_d = self.optimizers()
        real = batch["wavs"]
        fake = self.generator(batch["features"], **self._speaker(batch))
        step = self.global_step // 2
        adversarial = step >= self.cfg.optim.discriminator_start_steps
        # discriminators (before the start they take an empty step: Lightning still counts 2 steps a batch)
        opt_d.zero_grad()
        if adversarial:
            loss_d = discriminator_loss(self.mpd(real), self.mpd(fake.detach())) + discriminator_loss(
                self.msd(real), self.msd(fake.detach())
            )
            self.manual_backward(loss_d)
        opt_d.step()
        # generator
        mel = mel_l1_loss(self.log_mel, real, fake)
        if adversarial:
            parts = generator_loss(
                [self.mpd(real), self.msd(real)],
                [self.mpd(fake), self.msd(fake)],
                mel,
                self.cfg.optim.fm_weight,
                self.cfg.optim.mel_weight,
            )
        else:
            zero = mel.new_zeros(())
            parts = {"loss": self.cfg.optim.mel_weight * mel, "adv": zero, "fm": zero}
            loss_d = zero
        opt_g.zero_grad()
        self.manual_backward(parts["loss"])
        opt_g.step()
        if step % self.cfg.optim.lr_decay_every == 0:
            for s in self.lr_schedulers():
                s.step()
        every = self.cfg.snapshot_every_steps
        if every and step % every == 0 and self.trainer.is_global_zero:
            snap = Path(self.cfg.trainer.out_dir) / "snapshots" / f"step{step:07d}"
            if not snap.exists():
                save_export(
                    self.generator,
                    snap,
                    "vocoder",
                    export_spec(self.cfg, "vec2wav", self.speakers, metadata={"steps": step}),
                )
        self.log_dict(
            {
                "train/loss_d": loss_d.detach(),
                "train/loss_g": parts["loss"].detach(),
                "train/adv": parts["adv"].detach(),
                "train/fm": parts["fm"].detach(),
                "train/mel": mel.detach(),
            },
            prog_bar=True,
            batch_size=real.shape[0],
        )

    def validation_step(self, batch, batch_idx):
        fake = self.generator(batch["features"], **self._speaker(batch))
        n = int(batch["lengths"][0])
        mel = torch.nn.functional.l1_loss(self.log_mel(fake[:1, :n]), self.log_mel(batch["wavs"][:1, :n]))
        self.log("val/mel", mel, batch_size=1, prog_bar=True)

    def configure_optimizers(self):
        o = self.cfg.optim
        opt_g = torch.optim.AdamW(self.generator.parameters(), o.lr, tuple(o.betas), weight_decay=o.weight_decay)
        opt_d = torch.optim.AdamW(
            list(self.mpd.parameters()) + list(self.msd.parameters()), o.lr, tuple(o.betas), weight_decay=o.weight_decay
        )
        return [opt_g, opt_d], [
            torch.optim.lr_scheduler.ExponentialLR(opt_g, o.lr_decay),
            torch.optim.lr_scheduler.ExponentialLR(opt_d, o.lr_decay),
        ]


def learn_codebook(feats: Dict[str, np.ndarray], k: int, seed: int = 0, max_frames: int = 200_000) -> torch.Tensor:
    """``[k, F]`` k-means centroids (faiss, seeded) of a uniform sample of at most ``max_frames`` training
    frames (the sampling and checks of :func:`speechssl.clustering.kmeans.sample_frames`)."""
    import faiss

    from ..clustering.kmeans import sample_frames

    x, _ = sample_frames(((u, feats[u]) for u in sorted(feats)), 1.0, max_frames, seed)
    if len(x) < k:
        raise InputError(f"vec2wav: codebook_size {k} needs at least as many training frames, have {len(x)}")
    km = faiss.Kmeans(x.shape[1], k, niter=25, seed=seed, verbose=False)
    km.train(np.ascontiguousarray(x))
    log.info("vec2wav: codebook of %d centroids from %d frames (k-means objective %.1f)", k, len(x), km.obj[-1])
    return torch.from_numpy(km.centroids.copy())


# ----------------------------------------------------------------------------------- data / export / load
def load_vocoder(path) -> tuple:
    """An exported vocoder folder, vec2wav or vec2mel -> ``(generator in eval mode, spec dict)``. Both offer
    ``waveform(features [B, T, F], **speaker) -> wav [B, T * hop]``."""
    from omegaconf import OmegaConf

    from ..models.vec2mel import Vec2MelConfig, Vec2MelGenerator

    spec_file = Path(path) / "vocoder.yaml"
    if spec_file.is_file() and "vec2mel" in OmegaConf.load(spec_file):
        return load_export(path, "vocoder", "vec2mel", Vec2MelConfig, Vec2MelGenerator)
    return load_export(path, "vocoder", "vec2wav", Vec2WavConfig, Vec2WavGenerator)


def vocoder_data(cfg, adopt_hop: bool = False) -> tuple:
    """A vocoder config (vec2wav or vec2mel) -> ``(out_dir, training speakers, {split: VocoderDataset},
    data module)``, with ``cfg.model``'s ``feature_dim`` and speaker sizes set from the data. The upstream's
    hop (samples per frame) must equal ``model.hop_length``; ``adopt_hop`` sets it instead."""
    train, target_train = None, cfg.data.target_train
    if cfg.data.new_voices > 0:
        if cfg.data.features:
            raise InputError("data.new_voices needs features of the new voices: leave data.features unset")
        n, seed, voices = cfg.data.new_voices, cfg.data.seed, Path(cfg.trainer.out_dir) / "voices"
        train = new_voices_data_dir(cfg.data.train, voices / f"{Path(cfg.data.train).name}_x{n}_seed{seed}", n, seed)
        if target_train:  # the same shift per speaker and copy (it depends on the speaker's name), so still twins
            folder = voices / f"target_{Path(target_train).name}_x{n}_seed{seed}"
            target_train = new_voices_data_dir(target_train, folder, n, seed)
    out, speakers, splits = prepare_splits(cfg, train)
    hop = feature_hop(cfg)
    if adopt_hop:
        cfg.model.hop_length = hop
    elif hop != cfg.model.hop_length:
        raise InputError(
            f"{cfg.upstream} gives a frame every {hop} samples, but the vocoder's model.hop_length is "
            f"{cfg.model.hop_length}: set it (and rates that multiply to it) for this upstream"
        )
    if cfg.data.perturb_semitones > 0:  # the input loses the voice; the target audio and embedding keep it
        name, d, _, emb = splits[0]
        splits[0] = (name, d, perturbed_features(cfg, d), emb)
    sets = {}
    for name, d, feats, emb in splits:
        width = next(iter(feats.values())).shape[1]
        if cfg.model.feature_dim != width:
            log.info(
                "model.feature_dim %d -> %d (layer %d of %s)", cfg.model.feature_dim, width, cfg.layer, cfg.upstream
            )
            cfg.model.feature_dim = width
        sets[name] = VocoderDataset(
            d,
            feats,
            emb,
            cfg.data.segment_frames if name == "train" else None,
            cfg.model.hop_length,
            speakers,
            cfg.data.seed,
            target_train if name == "train" else cfg.data.target_valid,
        )
    set_speaker_sizes(cfg.model, cfg.speaker.kind, len(next(iter(sets["train"].spk_emb.values()))), len(speakers))
    dm = SplitsDataModule(cfg.data, sets["train"], sets.get("valid"), collate, cfg.data.valid_utterances, 1)
    return out, speakers, sets, dm


def train_vocoder(cfg: Vec2WavTrainConfig) -> dict:
    """Extract features (once), train with resume from ``out_dir/checkpoints/last.ckpt``, export ``final``."""

    out, speakers, sets, dm = vocoder_data(cfg)
    task = Vec2WavTask(cfg, speakers)
    task.generator.set_speaker_statistics(torch.from_numpy(np.stack(list(sets["train"].spk_emb.values()))))
    if cfg.model.codebook_size:
        task.generator.codebook.copy_(learn_codebook(sets["train"].feats, cfg.model.codebook_size, cfg.data.seed))

    def export(trainer, summary) -> Path:
        return save_export(
            task.generator,
            out / "final",
            "vocoder",
            export_spec(cfg, "vec2wav", speakers, metadata={"steps": summary["steps"]}),
        )

    # the GAN clips nothing and counts two optimizer steps per batch
    return fit_and_export(
        cfg,
        task,
        dm,
        export,
        optim=OptimConfig(grad_clip=0.0),
        steps_per_batch=2,
        extra_summary={"generator_parameters": sum(p.numel() for p in task.generator.parameters())},
    )
