"""HuBERT pretraining (Hsu et al., 2021): masked prediction of k-means cluster targets.

``speechssl pretrain hubert --config conf/pretrain/hubert_mini.yaml key=value ...`` builds a
:class:`HubertPretrainConfig`, trains with Lightning (resuming from ``out_dir/checkpoints/last.ckpt``
when present) and exports the encoder to ``out_dir/final`` (config.yaml + model.safetensors).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Tuple

import lightning as L
import torch

from ..clustering.spec import SPEC_FILE, KMeansSpec
from ..constants import SAMPLE_RATE
from ..errors import ConfigError
from ..models import SpeechEncoder, build_model, save_model
from ..models.hubert import HubertPretrainHeads, HubertPretrainModel
from ..nn.masking import MaskingConfig
from ..objectives.masked_prediction import hubert_loss, hubert_sums
from ..training import (
    OptimConfig,
    TrainerConfig,
    TrainingTask,
    as_config,
    build_optimizer,
    no_decay_groups,
    parameter_count,
)
from .common import AudioDataConfig, PretrainModelConfig, frontend_and_masks, init_weights_from, run_pretraining
from .data_source import audio_data_module

log = logging.getLogger(__name__)


@dataclass
class HubertObjectiveConfig(MaskingConfig):  # mask_prob 0.8 of frames (fraction), spans of 10, at least 2
    logit_temp: float = 0.1
    pred_masked_weight: float = 1.0
    pred_nomask_weight: float = 0.0
    feature_pen_weight: float = 10.0
    feature_grad_mult: float = 0.1  # scales the waveform CNN's gradient (fairseq HuBERT base)
    final_dim: int = 256


@dataclass
class HubertDataConfig(AudioDataConfig):
    train_labels: List[str] = field(default_factory=list)  # one `speechssl kmeans assign` folder per target set
    # (none with data.shards: the shards hold them)
    valid_labels: List[str] = field(default_factory=list)


@dataclass
class HubertPretrainConfig(PretrainModelConfig):
    model: str = "hubert_base"
    data: HubertDataConfig = field(default_factory=HubertDataConfig)
    objective: HubertObjectiveConfig = field(default_factory=HubertObjectiveConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)

    def validate(self) -> None:
        self.encoder_config()
        self.objective.check_masking()
        if not self.data.train_labels and not self.data.shards:
            raise ConfigError(
                "data.train_labels: at least one label set is needed (or data.shards written with labels)"
            )


class HubertPretrainTask(TrainingTask):
    """Masked prediction of k-means targets on a :class:`~speechssl.models.hubert.HubertPretrainModel`
    (the encoder and its heads, a plain module); this class only orchestrates."""

    objective_name = "hubert"

    def __init__(self, cfg: Dict[str, Any], num_classes: List[int], label_rates: List[float]):
        super().__init__()
        self.save_hyperparameters()
        self.cfg = as_config(HubertPretrainConfig, cfg)
        encoder = build_model(self.cfg.model, **self.cfg.model_overrides)
        init_weights_from(encoder, self.cfg.init_from)
        self.model = HubertPretrainModel.from_encoder(encoder, num_classes, self.cfg.objective.final_dim)
        self.num_classes, self.label_rates = list(num_classes), list(label_rates)
        self.frame_rate = SAMPLE_RATE / self.encoder.downsample_rate
        self.trained_seconds = 0.0

    # -- the objective ----------------------------------------------------------------------
    def compute_sums(self, batch) -> Dict[str, torch.Tensor]:
        obj = self.cfg.objective
        feats, frames, valid, mask = frontend_and_masks(self.encoder, batch, obj, self.training)
        return hubert_sums(
            self.model, feats, frames, valid, mask, batch["labels"], self.label_rates, self.frame_rate, obj.logit_temp
        )

    @property
    def encoder(self):
        return self.model.encoder

    def _loss(self, sums: Dict[str, torch.Tensor], stage: str):
        """Normalise by *global* counts so that W processes give the gradient of one big batch
        (DDP averages gradients over W, hence the factor W)."""
        obj = self.cfg.objective
        totals = {k: self.reduce_sum(v) for k, v in sums.items()}
        loss, parts = hubert_loss(
            sums,
            totals,
            pred_masked_weight=obj.pred_masked_weight,
            pred_nomask_weight=obj.pred_nomask_weight,
            feature_pen_weight=obj.feature_pen_weight,
        )
        logged = {f"{stage}/{k}": v for k, v in parts.items()}
        world = self.trainer.world_size
        return loss * world, logged

    def training_step(self, batch, batch_idx):
        # fairseq seeds every update: dropout is reproducible across resumes
        torch.manual_seed(self.cfg.trainer.seed * 100_003 + self.global_step)
        sums = self.compute_sums(batch)
        loss, logged = self._loss(sums, "train")
        self.log_dict(logged, prog_bar=False, rank_zero_only=True)
        self.log("loss", logged["train/loss"], prog_bar=True, logger=False, rank_zero_only=True)
        self.log("acc_m", logged["train/acc_m"], prog_bar=True, logger=False, rank_zero_only=True)
        self.count_batch()
        self.last_logged = {k: float(v) for k, v in logged.items()}
        return loss

    def validation_step(self, batch, batch_idx):
        sums = self.compute_sums(batch)
        _, logged = self._loss(sums, "val")
        self.log_dict(logged, rank_zero_only=True, batch_size=len(batch["utts"]))

    def configure_optimizers(self):
        return build_optimizer(no_decay_groups(self, self.cfg.optim.weight_decay), self.cfg.optim)


def label_sets_of(cfg: HubertPretrainConfig) -> Tuple[List[int], List[float], bool]:
    """``(num_classes, label_rates, known)`` of the configured label folders, read from their kmeans.json; the
    paper's k=500 at 50 Hz per set (``known`` False) when a folder is not there yet (a dry run before k-means)."""
    ks, rates, known = [], [], True
    for folder in cfg.data.train_labels or ["(shards)"]:
        if (Path(folder) / SPEC_FILE).is_file():
            spec = KMeansSpec.read(folder)
            ks.append(spec.k)
            rates.append(spec.frame_rate)
        else:
            ks.append(500)
            rates.append(50.0)
            known = False
    return ks, rates, known


def describe(cfg: HubertPretrainConfig) -> Dict[str, Any]:
    """Parameter counts of the model a config builds, with and without HuBERT's heads (on the meta device:
    nothing is allocated). Published sizes count the heads (HuBERT Base: 94.68M)."""
    num_classes, _, known = label_sets_of(cfg)
    with torch.device("meta"):
        encoder = SpeechEncoder(cfg.encoder_config())
        heads = HubertPretrainHeads(encoder.hidden_size, num_classes, cfg.objective.final_dim)
    n, h = parameter_count(encoder), parameter_count(heads)

    def human(x):
        return f"{x / 1e9:.3f}B" if x >= 1e9 else f"{x / 1e6:.2f}M"

    return {
        "encoder": n,
        "encoder_human": human(n),
        "pretraining_heads": h,
        "total": n + h,
        "total_human": human(n + h),
        "heads_for": f"k={num_classes}" + ("" if known else " (assumed: the label folders are not there yet)"),
    }


def timing_step(cfg: HubertPretrainConfig):
    """``(step, device)``: one update of the configured model on a synthetic micro-batch of the configured size
    (random audio in utterances of ``crop_seconds``, random labels), for ``--dry-run --time-steps``."""
    from ..utils.device import resolve_device

    num_classes, rates, _ = label_sets_of(cfg)
    device = resolve_device(cfg.trainer.accelerator)
    task = HubertPretrainTask({**asdict(cfg), "init_from": None}, num_classes, rates).to(device).train()
    utt = cfg.data.crop_seconds or 15.0
    count = max(1, int(cfg.data.batch_seconds // utt))
    n = int(utt * SAMPLE_RATE)
    g = torch.Generator().manual_seed(0)
    batch = {
        "wavs": torch.randn(count, n, generator=g).to(device) * 0.1,
        "lengths": torch.full((count,), n, device=device),
        "seeds": torch.arange(count),
        "labels": [
            torch.randint(0, k, (count, int(utt * r) + 1), generator=g).to(device) for k, r in zip(num_classes, rates)
        ],
    }
    opt = torch.optim.AdamW(task.parameters(), lr=1e-6)
    obj = cfg.objective

    def step():
        opt.zero_grad(set_to_none=True)
        loss, _ = hubert_loss(
            task.compute_sums(batch),
            pred_masked_weight=obj.pred_masked_weight,
            pred_nomask_weight=obj.pred_nomask_weight,
            feature_pen_weight=obj.feature_pen_weight,
        )
        loss.backward()
        opt.step()

    return step, str(device)


def pretrain_hubert(cfg: HubertPretrainConfig, callbacks=()) -> Dict[str, Any]:
    """Train (or resume) and export; returns a summary with the final metrics and the export path."""

    Path(cfg.trainer.out_dir).mkdir(parents=True, exist_ok=True)
    L.seed_everything(cfg.trainer.seed, workers=True, verbose=False)
    dm = audio_data_module(cfg.data, cfg.data.train_labels, cfg.data.valid_labels)
    dm.setup()
    task = HubertPretrainTask(asdict(cfg), dm.num_classes, dm.label_rates)

    def export(trainer, summary):
        meta = {
            "objective": "hubert",
            "steps": trainer.global_step,
            "label_rates": dm.label_rates,
            "labels": list(cfg.data.train_labels),
        }
        heads = task.model.heads.cpu()
        return save_model(
            task.encoder.cpu(),
            Path(cfg.trainer.out_dir) / "final",
            metadata=meta,
            heads=(heads.spec(), heads.state_dict()),
        )

    return run_pretraining(cfg, task, dm, export, callbacks)
