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
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

import numpy as np
import torch

from ..config import MISSING
from ..models.vec2wav import MultiPeriodDiscriminator, MultiScaleDiscriminator, Vec2WavConfig, Vec2WavGenerator
from ..objectives.gan import LogMel, discriminator_loss, generator_loss, mel_l1_loss
from ..training import (
    OptimConfig,
    TrainerConfig,
    TrainingTask,
    fit_and_export,
    save_export,
)
from .tts_common import (
    SpeakerConfig,
    export_spec,
    speaker_inputs,
)
from .vocoder_data import VocoderDataConfig, check_vocoder_config, learn_codebook, vocoder_data

log = logging.getLogger(__name__)


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
