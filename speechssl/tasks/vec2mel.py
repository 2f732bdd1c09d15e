"""Training WavThruVec's GAN-free vocoder (``speechssl tts train-mel-vocoder``): SSL features -> log-mel, L1.

The data are the vocoder's (:mod:`speechssl.tasks.vec2wav`: the upstream layer extracted once, random aligned
crops, the speaker embedding of another utterance of the same speaker, the optional voice-shifted input); the
target is HiFi-GAN's log-mel of the crop's audio (:class:`speechssl.objectives.gan.LogMel` at
``model.mel_hop_length``). At inference Griffin-Lim turns the mel into audio
(:meth:`speechssl.models.vec2mel.Vec2MelGenerator.waveform`), so the export drops into ``speechssl tts eval``,
``synthesize`` and ``voice-convert`` wherever a vec2wav export goes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

import numpy as np
import torch

from ..config import MISSING
from ..models.vec2mel import Vec2MelConfig, Vec2MelGenerator
from ..objectives.gan import LogMel
from ..training import OptimConfig, SupervisedSteps, TrainerConfig, TrainingTask, fit_and_export, save_export
from .tts_common import SpeakerConfig, export_spec, speaker_inputs
from .vocoder_data import VocoderDataConfig, VocoderDataset, check_vocoder_config, collate, learn_codebook, vocoder_data


@dataclass
class Vec2MelTrainConfig:
    upstream: str = MISSING  # the SSL model whose features are vocoded
    layer: int = 2
    speaker: SpeakerConfig = field(default_factory=SpeakerConfig)
    model: Vec2MelConfig = field(default_factory=Vec2MelConfig)
    data: VocoderDataConfig = field(default_factory=lambda: VocoderDataConfig(segment_frames=32))
    optim: OptimConfig = field(
        default_factory=lambda: OptimConfig(lr=1e-3, warmup_steps=100, total_steps=2000, grad_clip=1.0)
    )
    trainer: TrainerConfig = field(
        default_factory=lambda: TrainerConfig(out_dir="exp/vec2mel", val_every_steps=200, checkpoint_every_steps=200)
    )

    def validate(self) -> None:
        check_vocoder_config(self)


class Vec2MelTask(SupervisedSteps, TrainingTask):
    def __init__(self, cfg: Vec2MelTrainConfig, speakers: Optional[List[str]] = None):
        super().__init__()
        self.cfg, self.speakers = cfg, speakers or []
        self.model = Vec2MelGenerator(cfg.model)
        m = cfg.model
        self.log_mel = LogMel(
            n_fft=m.n_fft, hop_length=m.mel_hop_length, win_length=m.n_fft, n_mels=m.n_mels, fmax=m.fmax
        )

    def _step(self, batch, prefix):
        target = self.log_mel(batch["wavs"]).transpose(1, 2)  # [B, T * R, n_mels]
        pred = self.model(batch["features"], **speaker_inputs(self.cfg.speaker.kind, batch))
        R = self.cfg.model.mels_per_frame
        valid = torch.arange(pred.shape[1], device=pred.device)[None] < (batch["frames"] * R)[:, None]
        err = (pred[:, : target.shape[1]] - target).abs().mean(-1)  # [B, T * R]
        loss = (err * valid).sum() / valid.sum().clamp_min(1)  # crops' padding excluded
        self.log(f"{prefix}/mel", loss, prog_bar=prefix == "train", batch_size=target.shape[0])
        return loss


def train_mel_vocoder(cfg: Vec2MelTrainConfig) -> dict:
    """Extract features (once), train with resume from ``out_dir/checkpoints/last.ckpt``, export ``final``."""
    out, speakers, sets, dm = vocoder_data(cfg, adopt_hop=True)
    task = Vec2MelTask(cfg, speakers)
    train = sets["train"]
    task.model.set_speaker_statistics(torch.from_numpy(np.stack(list(train.spk_emb.values()))))
    task.model.mel_mean.copy_(mean_log_mel(task.log_mel, train))
    if cfg.model.codebook_size:
        task.model.codebook.copy_(learn_codebook(train.feats, cfg.model.codebook_size, cfg.data.seed))

    def export(trainer, summary) -> Path:
        whole = VocoderDataset(
            train.data.path,
            train.feats,
            train.spk_emb,
            None,
            cfg.model.hop_length,
            speakers,
            cfg.data.seed,
            train.target_dir,
        )  # whole training utterances, not crops
        task.model.mel_spread.copy_(fit_mel_spread(task, whole))
        return save_export(
            task.model,
            out / "final",
            "vocoder",
            export_spec(cfg, "vec2mel", speakers, metadata={"steps": summary["steps"]}),
        )

    return fit_and_export(
        cfg, task, dm, export, extra_summary={"parameters": sum(p.numel() for p in task.model.parameters())}
    )


@torch.no_grad()
def fit_mel_spread(task: Vec2MelTask, dataset, max_utterances: int = 100) -> torch.Tensor:
    """``[n_mels]``: per bin, the square root of the true log-mel's within-utterance variance over the
    prediction's, pooled over (the first ``max_utterances``) whole utterances of ``dataset`` (a VocoderDataset
    without crops). Clamped to [1, 3]: it only ever restores contrast the regression flattened."""
    was_training = task.training
    task.eval()
    true_ss, pred_ss = 0.0, 0.0
    for i in range(min(len(dataset), max_utterances)):
        batch = collate([dataset[i]])
        n = int(batch["frames"][0]) * task.cfg.model.mels_per_frame
        true = task.log_mel(batch["wavs"])[0].T[:n]  # [n, n_mels]
        pred = task.model(batch["features"], **speaker_inputs(task.cfg.speaker.kind, batch))[0, :n]
        true_ss = true_ss + ((true - true.mean(0)) ** 2).sum(0)
        pred_ss = pred_ss + ((pred - pred.mean(0)) ** 2).sum(0)
    task.train(was_training)
    return (true_ss / pred_ss.clamp_min(1e-8)).sqrt().clamp(1.0, 3.0)


@torch.no_grad()
def mean_log_mel(log_mel: LogMel, dataset, max_utterances: int = 200) -> torch.Tensor:
    """``[n_mels]``: the mean log-mel over (the first ``max_utterances``) training utterances."""
    frames = [
        log_mel(torch.from_numpy(dataset.target_audio(u).astype(np.float32))[None])[0].T
        for u in dataset.utts[:max_utterances]
    ]
    return torch.cat(frames).mean(0)
