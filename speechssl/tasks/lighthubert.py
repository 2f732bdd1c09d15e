"""LightHuBERT two-stage distillation (Wang et al., 2022) from a HuBERT teacher.

``speechssl distill lighthubert --config conf/distill/lighthubert_mini_stage1.yaml`` trains the
supernet (:mod:`speechssl.models.lighthubert`) to predict, through its prediction head, the
average of the teacher's last K layer outputs from masked input:

* stage 1 (pretraining distillation): the full-size student (the max subnet) only;
* stage 2 (once-for-all): starting from the stage-1 export (``init_from``), a subnet per step
  drawn uniformly (``sampling: random``) or max + min + a random one (``sampling: sandwich``).

Targets come from the frozen teacher on the fly, or from features dumped once with
``speechssl lighthubert dump-targets`` (``data.train_targets`` / ``data.valid_targets``).
The export, ``OUT/final``, is a supernet folder: the max network as an ordinary model plus
``lighthubert.yaml`` and the prediction head; ``speechssl lighthubert search / export`` take it.
"""

from __future__ import annotations

import logging
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import kaldiio
import lightning as L
import numpy as np
import torch

from ..config import MISSING
from ..constants import SAMPLE_RATE
from ..data.dataset import AudioLabelDataset, collate_audio_labels
from ..errors import InputError, MissingInputError
from ..hub import load_upstream
from ..models.lighthubert import (
    SPACE_FILE,
    LightHubert,
    SearchSpace,
    Subnet,
    build_supernet,
    count_parameters,
    load_supernet,
)
from ..models.teacher import LayerAverage
from ..objectives.distillation import DistillObjectiveConfig, align_frames, distillation_sums, load_teacher  # noqa: F401 (re-exported)
from ..pipelines.extract import extract_features
from ..training import OptimConfig, TrainerConfig, TrainingTask, as_config, build_optimizer, no_decay_groups
from ..utils.artifacts import FeatureSpec
from .audio_data import AudioDataModule
from .common import AudioDataConfig, PretrainModelConfig, frontend_and_masks, init_weights_from, run_pretraining

log = logging.getLogger(__name__)


@dataclass
class DistillDataConfig(AudioDataConfig):
    train_targets: Optional[str] = None  # `speechssl lighthubert dump-targets` folder; None: teacher on the fly
    valid_targets: Optional[str] = None


@dataclass
class LightHubertDistillConfig(PretrainModelConfig):
    model: str = "hubert_base"  # the max network (the stage-1 student)
    space: str = "lighthubert/space_base.yaml"  # search space YAML (path or name under conf/)
    teacher: str = MISSING  # any upstream: our folder, fairseq .pt, HF folder
    data: DistillDataConfig = field(default_factory=DistillDataConfig)
    objective: DistillObjectiveConfig = field(default_factory=DistillObjectiveConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)

    def validate(self) -> None:
        self.encoder_config()
        SearchSpace.load(self.space)
        obj = self.objective
        obj.check_masking()
        checks = {
            "stage": (obj.stage, (1, 2)),
            "sampling": (obj.sampling, ("random", "sandwich")),
            "loss": (obj.loss, ("l1", "cosine")),
            "target_norm": (obj.target_norm, ("none", "layer_norm")),
            "loss_frames": (obj.loss_frames, ("masked", "all")),
        }
        for name, (value, allowed) in checks.items():
            if value not in allowed:
                raise InputError(f"objective.{name}={value!r}; expected one of {allowed}")
        if obj.target_layers < 1:
            raise InputError(f"objective.target_layers must be >= 1, got {obj.target_layers}")


# ------------------------------------------------------------------------------------ targets
def dump_targets(teacher: str, k: int, data_dir: str, out_dir: str, norm: str = "none", **kwargs) -> Dict:
    """Teacher targets of every utterance of ``data_dir`` to ``out_dir/layer0/feats.scp`` (resumable)."""
    return extract_features(
        load_teacher(teacher, k, norm),
        data_dir,
        out_dir,
        layers=[0],
        model_name=f"{teacher} (mean of last {k} layers, norm {norm})",
        **kwargs,
    )


class AudioTargetDataset(AudioLabelDataset):
    """Utterances with dumped teacher targets ``[T', D]`` cropped in step with the audio."""

    def __init__(self, data_dir, targets_dir, crop_seconds=None, min_seconds=0.0, normalize=False):
        super().__init__(data_dir, (), crop_seconds, min_seconds, normalize=normalize)
        scp = Path(targets_dir) / "layer0" / "feats.scp"
        if not scp.is_file():
            raise MissingInputError(
                f"{targets_dir}: no layer0/feats.scp (run `speechssl lighthubert dump-targets` to the end)"
            )
        self.hop = int(round(SAMPLE_RATE / FeatureSpec.read(targets_dir).frame_rate))
        self._align = self.hop
        self.targets = kaldiio.load_scp(str(scp))
        missing = [u for u in self.utts if u not in self.targets]
        if missing:
            raise InputError(
                f"{scp}: no targets for {len(missing)} utterances of {data_dir} (first: {', '.join(missing[:5])})"
            )
        self.source = str(scp)

    def __getitem__(self, key) -> dict:
        item = super().__getitem__(key)
        mat = self.targets[item["utt"]]
        expected = len(item["wav"]) // self.hop
        start = item["start"] // self.hop
        if len(mat) < start + expected - 1:
            raise InputError(
                f"{self.source}: {item['utt']} has {len(mat)} target frames, the audio needs {start + expected}"
            )
        item["targets"] = torch.from_numpy(np.array(mat[start : start + expected + 1], dtype=np.float32))
        return item


def collate_audio_targets(items: List[dict]) -> dict:
    batch = collate_audio_labels(items)
    batch["targets"] = torch.nn.utils.rnn.pad_sequence([it["targets"] for it in items], batch_first=True)
    return batch


class DistillDataModule(AudioDataModule):
    def make_dataset(self, data_dir: str, label_paths, train: bool):
        targets = self.cfg.train_targets if train else self.cfg.valid_targets
        if not targets:
            return super().make_dataset(data_dir, (), train)
        return AudioTargetDataset(
            data_dir,
            targets,
            self.cfg.crop_seconds,
            self.cfg.min_seconds if train else 0.0,
            normalize=self.cfg.normalize,
        )

    @staticmethod
    def collate_fn(items):
        return collate_audio_targets(items) if "targets" in items[0] else collate_audio_labels(items)


class LightHubertDistillTask(TrainingTask):
    """The supernet trained to predict the teacher's targets (stage 1 or 2)."""

    objective_name = "lighthubert"

    def __init__(self, cfg: Dict[str, Any], teacher_dim: int):
        super().__init__()
        self.save_hyperparameters()
        self.cfg = as_config(LightHubertDistillConfig, cfg)
        self.supernet = build_supernet(self.cfg.model, self.cfg.space, teacher_dim, **self.cfg.model_overrides)
        self._warm_start(self.cfg.init_from)
        self._teacher: List[LayerAverage] = []  # a list: outside the module tree (never trained or saved)
        self.trained_seconds = 0.0

    @property
    def encoder(self):
        """The max network (what run_pretraining saves as ``OUT/init``)."""
        return self.supernet.encoder

    def _warm_start(self, path: Optional[str]) -> None:
        if not path:
            return
        if (Path(path) / SPACE_FILE).is_file():  # a stage-1 (or earlier stage-2) supernet: weights and head
            source = load_supernet(path)
            self.supernet.encoder.load_state_dict(source.encoder.state_dict())
            if source.prediction_head.weight.shape == self.supernet.prediction_head.weight.shape:
                self.supernet.prediction_head.load_state_dict(source.prediction_head.state_dict())
            log.info("initialised the supernet and its head from %s", path)
        else:  # e.g. the teacher itself, when it has the supernet's shape
            init_weights_from(self.supernet.encoder, path)

    @property
    def teacher(self) -> LayerAverage:
        """Loaded on first use, outside the module tree: never trained, never in checkpoints."""
        if not self._teacher:
            obj = self.cfg.objective
            self._teacher.append(load_teacher(self.cfg.teacher, obj.target_layers, obj.target_norm))
        return self._teacher[0].to(self.device)

    def targets(self, batch) -> torch.Tensor:
        if "targets" in batch:
            return batch["targets"]
        with torch.no_grad():
            return self.teacher(batch["wavs"], batch["lengths"]).hidden_states[0]

    def step_subnets(self) -> List[Tuple[str, Subnet]]:
        """The subnets of this training step (seeded by the step, so a resume repeats the draw)."""
        sn = self.supernet
        if self.cfg.objective.stage == 1:
            return [("max", sn.max_subnet())]
        rng = random.Random(self.cfg.trainer.seed * 1_000_003 + self.global_step)
        if self.cfg.objective.sampling == "sandwich":
            return [("max", sn.max_subnet()), ("min", sn.min_subnet()), ("random", sn.sample_subnet(rng))]
        return [("random", sn.sample_subnet(rng))]

    def compute_sums(self, batch, subnets: List[Tuple[str, Subnet]]) -> Dict[str, torch.Tensor]:
        obj = self.cfg.objective
        feats, frames, valid, mask = frontend_and_masks(self.supernet.encoder, batch, obj, self.training)
        target = align_frames(feats.shape[1], self.targets(batch).to(feats.dtype))
        scored = mask if obj.loss_frames == "masked" else valid
        sums = {"frames": scored.sum().float()}
        for name, subnet in subnets:
            self.supernet.set_subnet(subnet)
            out = self.supernet.forward_features(feats, frames, time_mask=mask)
            pred = self.supernet.predict(out.last_hidden_state)
            sums[f"loss_{name}"] = distillation_sums(pred, target, scored, obj.loss)
        return sums

    def training_step(self, batch, batch_idx):
        torch.manual_seed(self.cfg.trainer.seed * 100_003 + self.global_step)
        subnets = self.step_subnets()
        sums = self.compute_sums(batch, subnets)
        n = self.reduce_sum(sums["frames"]).clamp(min=1)
        if float(n) == 0:
            log.warning("step %d: no frames to score in this batch", self.global_step)
        losses = {k[5:]: v for k, v in sums.items() if k.startswith("loss_")}
        loss = sum(losses.values()) / n * self.trainer.world_size
        logged = {f"train/loss_{k}": self.reduce_sum(v) / n for k, v in losses.items()}
        logged["train/loss"] = sum(logged.values())
        if self.cfg.objective.stage == 2:
            logged["train/subnet_params_m"] = torch.tensor(self.supernet.subnet_parameters(subnets[-1][1]) / 1e6)
        self.log_dict(logged, rank_zero_only=True)
        self.log("loss", logged["train/loss"], prog_bar=True, logger=False, rank_zero_only=True)
        self.count_batch()
        return loss

    def validation_step(self, batch, batch_idx):
        sn = self.supernet
        names = [("max", sn.max_subnet())]
        if self.cfg.objective.stage == 2:
            names += [("default", sn.default_subnet()), ("min", sn.min_subnet())]
        sums = self.compute_sums(batch, names)
        n = self.reduce_sum(sums["frames"]).clamp(min=1)
        logged = {f"val/loss_{k[5:]}": self.reduce_sum(v) / n for k, v in sums.items() if k.startswith("loss_")}
        logged["val/loss"] = logged["val/loss_max"]
        self.log_dict(logged, rank_zero_only=True, batch_size=len(batch["utts"]))

    def on_validation_end(self):
        self.supernet.set_subnet("max")

    def configure_optimizers(self):
        return build_optimizer(no_decay_groups(self.supernet, self.cfg.optim.weight_decay), self.cfg.optim)


def teacher_dim_of(cfg: LightHubertDistillConfig) -> int:
    return load_upstream(cfg.teacher, drop_heads=True).hidden_size


def distill_lighthubert(cfg: LightHubertDistillConfig, callbacks=()) -> Dict[str, Any]:
    """Train (or resume) one distillation stage and export the supernet to ``OUT/final``."""

    cfg.validate()
    out = Path(cfg.trainer.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    L.seed_everything(cfg.trainer.seed, workers=True, verbose=False)
    dm = DistillDataModule(cfg.data)
    dm.setup()
    task = LightHubertDistillTask(asdict(cfg), teacher_dim_of(cfg))

    def export(trainer, summary):
        sn = task.supernet.cpu()
        meta = {
            "objective": "lighthubert",
            "stage": cfg.objective.stage,
            "steps": trainer.global_step,
            "teacher": cfg.teacher,
            "target_layers": cfg.objective.target_layers,
            "objective_config": asdict(cfg.objective),
        }
        summary["subnet_parameters"] = {name: sn.subnet_parameters(name) for name in ("max", "default", "min")}
        summary["num_subnets"] = sn.space.num_subnets()
        return sn.save(out / "final", metadata=meta)

    return run_pretraining(cfg, task, dm, export, callbacks)


def describe(cfg: LightHubertDistillConfig) -> Dict[str, Any]:
    """Parameter counts of the supernet's max / default / min subnets and the size of its space."""
    space = SearchSpace.load(cfg.space)
    with torch.device("meta"):
        sn = LightHubert(cfg.encoder_config(), space)
    return {
        "num_subnets": space.num_subnets(),
        **{name: sn.subnet_parameters(name) for name in ("max", "default", "min")},
        "encoder": count_parameters(sn.encoder.config),
    }


__all__ = [
    "LightHubertDistillConfig",
    "LightHubertDistillTask",
    "distill_lighthubert",
    "dump_targets",
    "distillation_sums",
    "LayerAverage",
    "describe",
    "LightHubert",
]
