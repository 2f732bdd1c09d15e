"""w2v-BERT pretraining (Chung et al., 2021): contrastive learning and masked language modelling, end to end.

::

    wav -> log-mel -> conv2d 4x subsampler = feature encoder output z      [B, T, C]
      z (unmasked) -> layer norm -> Gumbel quantizer -> q, token ids        (targets)
      z, masked frames -> random vectors -> projection -> N Conformer blocks = context c   (contrastive module)
      c -> M Conformer blocks = m                                                        (MLM module)
    loss = beta * (InfoNCE(c_masked, q; distractors) + alpha * diversity) + gamma * CE(m_masked, ids)

``speechssl pretrain w2v-bert --config conf/pretrain/w2v_bert_mini.yaml key=value ...`` trains with
Lightning (resuming from ``out_dir/checkpoints/last.ckpt``) and exports the encoder (all N + M
blocks) to ``out_dir/final``; the quantizer and heads go beside it in ``pretraining_heads.safetensors``.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

import lightning as L
import torch
from torch import nn

from ..constants import SAMPLE_RATE
from ..errors import InputError
from ..models import build_model, save_model
from ..models.w2v_bert import CONTRASTIVE_LAYERS, W2vBertHeads, W2vBertPretrainModel
from ..nn.masking import MaskingConfig
from ..nn.quantizer import GumbelVectorQuantizer, perplexity
from ..objectives.contrastive import contrastive_sums, token_prediction_sums
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
class W2vBertObjectiveConfig(MaskingConfig):
    # masking. mask_mode start_prob: each frame starts a span with probability mask_prob (the paper:
    # 0.065, spans of 10, ~49% of frames masked); fraction: fairseq's mask_prob (0.65 = the same coverage);
    # min_masks 2: distractors need other masked frames
    mask_prob: float = 0.065
    mask_mode: str = "start_prob"
    contrastive_layers: Optional[int] = None  # Conformer blocks of the contrastive module; the rest form
    # the MLM module (default: the model's split, else half)
    mask_fill: str = "random"  # random: masked frames become random vectors (the paper) | embedding (learnt)
    feature_grad_mult: float = 1.0  # scales the feature encoder's gradient (wav2vec 2.0: 0.1; the paper: not stated)
    # quantizer
    num_codes: int = 1024  # codes per group (paper: one group of 1024)
    codebook_groups: int = 1
    code_dim: int = 256  # width of the concatenated code vector
    temperature: List[float] = field(default_factory=lambda: [2.0, 0.5, 0.999995])  # start, end, decay per update
    # losses
    final_dim: int = 256  # contrastive space (context and code vectors are projected to it)
    num_negatives: int = 100  # distractors per masked frame, from the utterance's other masked frames
    logit_temp: float = 0.1
    diversity_weight: float = 0.1  # alpha: per masked frame, like the InfoNCE term it is added to
    contrastive_weight: float = 1.0  # beta
    mlm_weight: float = 1.0  # gamma
    mlm_only: bool = False  # the paper's ablation: no contrastive (and no diversity) loss
    mlm_target_gradient: bool = False  # let the MLM loss reach the quantizer through its straight-through choice
    # (ids are otherwise detached: the codes can drift but not be *learnt* to collapse)
    # codebook health
    collapse_perplexity: float = 8.0  # warn when the smoothed code perplexity falls below this many codes
    collapse_check_after: int = 100  # ... after this many updates (early codes are still being spread out)


@dataclass
class W2vBertPretrainConfig(PretrainModelConfig):
    model: str = "w2v_bert_small"  # fbank frontend + Conformer
    data: AudioDataConfig = field(default_factory=AudioDataConfig)
    objective: W2vBertObjectiveConfig = field(default_factory=W2vBertObjectiveConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)

    def num_contrastive_layers(self) -> int:
        n = self.objective.contrastive_layers
        if n is None:
            n = CONTRASTIVE_LAYERS.get(self.model, self.encoder_config().num_layers // 2)
        return n

    def validate(self) -> None:
        enc, obj = self.encoder_config(), self.objective
        n = self.num_contrastive_layers()
        wav2vec2 = n == enc.num_layers and obj.mlm_weight == 0  # the whole stack contrastive: wav2vec 2.0
        if not wav2vec2 and (enc.frontend == "waveform_cnn" or enc.encoder != "conformer"):
            log.warning(
                "w2v-BERT is defined on log-mel + Conformer; %s has a %s frontend and a %s encoder",
                self.model,
                enc.frontend,
                enc.encoder,
            )
        if not (1 <= n < enc.num_layers or wav2vec2):
            raise InputError(
                f"objective.contrastive_layers={n}: need 1 <= N < num_layers ({enc.num_layers}) "
                f"so that both modules have blocks (or N = num_layers with objective.mlm_weight=0: "
                f"wav2vec 2.0's objective alone)"
            )
        obj.check_masking()
        choices = {"mask_fill": ("random", "embedding")}
        for key, allowed in choices.items():
            if getattr(obj, key) not in allowed:
                raise InputError(f"objective.{key}={getattr(obj, key)!r}; expected one of {allowed}")
        if obj.mask_fill == "embedding" and not enc.mask_embedding:
            raise InputError("objective.mask_fill=embedding needs model_overrides.mask_embedding=true")
        if obj.num_negatives < 1:
            raise InputError(f"objective.num_negatives must be >= 1, got {obj.num_negatives}")


def fill_random(feats: torch.Tensor, mask: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Replace masked frames of ``feats [B, T, C]`` by Gaussian vectors with the per-channel mean and
    spread of the batch's valid unmasked frames (the paper's "random vectors", on the features' scale;
    nothing of the masked content leaks through the statistics)."""
    ref = feats.detach()[valid & ~mask]
    if ref.shape[0] < 2:
        return feats
    noise = torch.randn_like(feats) * ref.std(0) + ref.mean(0)
    return torch.where(mask[..., None], noise, feats)


class CodebookMonitor:
    """Smoothed code perplexity; warns (at most every ``after`` updates) when it falls below ``threshold``."""

    def __init__(self, total_codes: int, threshold: float, after: int, smoothing: float = 0.9):
        self.total_codes, self.threshold, self.after, self.smoothing = total_codes, threshold, after, smoothing
        self.ema: Optional[float] = None
        self._last_warning = -after

    def update(self, step: int, code_perplexity: float) -> Optional[str]:
        self.ema = (
            code_perplexity if self.ema is None else self.smoothing * self.ema + (1 - self.smoothing) * code_perplexity
        )
        if step < self.after or self.ema >= self.threshold or step - self._last_warning < self.after:
            return None
        self._last_warning = step
        msg = (
            f"codebook collapse at step {step}: code perplexity {self.ema:.1f} of {self.total_codes} codes "
            f"(< {self.threshold:g}). The MLM targets are nearly constant and the task is becoming trivial; "
            f"the contrastive loss and its diversity term keep codes in use (is objective.mlm_only set, or "
            f"objective.diversity_weight too small?)"
        )
        log.warning(msg)
        return msg


class W2vBertPretrainTask(TrainingTask):
    """Feature encoder + Conformer (contrastive module, then MLM module) + quantizer and heads."""

    objective_name = "w2v_bert"

    def __init__(self, cfg: Dict[str, Any]):
        super().__init__()
        self.save_hyperparameters()
        self.cfg = as_config(W2vBertPretrainConfig, cfg)
        obj = self.cfg.objective
        encoder = build_model(self.cfg.encoder_config())
        init_weights_from(encoder, self.cfg.init_from)
        total = obj.codebook_groups * obj.num_codes
        quantizer = GumbelVectorQuantizer(
            encoder.frontend.output_dim, obj.num_codes, obj.codebook_groups, obj.code_dim, obj.temperature
        )
        self.model = W2vBertPretrainModel(
            encoder,
            quantizer,
            W2vBertHeads(encoder.hidden_size, obj.code_dim, obj.final_dim, total),
            self.cfg.num_contrastive_layers(),
        )
        self.monitor = CodebookMonitor(total, obj.collapse_perplexity, obj.collapse_check_after)
        self._val_counts: Optional[torch.Tensor] = None

    @property
    def encoder(self):
        return self.model.encoder

    @property
    def quantizer(self):
        return self.model.quantizer

    @property
    def contrastive_layers(self) -> int:
        return self.model.contrastive_layers

    def heads(self) -> Dict[str, nn.Module]:
        """The parts beside the encoder, by the names ``pretraining_heads.safetensors`` keeps."""
        h = self.model.heads
        return {
            "quantizer": self.quantizer,
            "project_q": h.project_q,
            "project_context": h.project_context,
            "mlm_head": h.mlm_head,
        }

    # -- the objective ----------------------------------------------------------------------
    def compute_sums(self, batch) -> Dict[str, torch.Tensor]:
        obj = self.cfg.objective
        feats, frames, valid, mask = frontend_and_masks(self.encoder, batch, obj, self.training)
        filled = fill_random(feats, mask, valid) if obj.mask_fill == "random" else None
        out = self.model(feats, frames, mask, filled, contrastive=not obj.mlm_only)
        q = out.targets
        sums = {}
        if not obj.mlm_only:
            c = contrastive_sums(
                out.context, out.code_vectors, mask.nonzero()[:, 0], obj.num_negatives, obj.logit_temp, target_ids=q.ids
            )
            sums.update(c_loss=c["loss"], c_correct=c["correct"], c_count=c["count"])
        m = token_prediction_sums(
            out.mlm_logits, q.ids, q.onehot if obj.mlm_target_gradient and self.training else None
        )
        sums.update(
            m_loss=m["loss"],
            m_correct=m["correct"],
            m_count=m["count"],
            diversity=self.quantizer.diversity_loss(q),
            code_perplexity=q.code_perplexity,
            prob_perplexity=q.prob_perplexity.detach(),
            codes_used=q.codes_used,
            ids=q.ids,
        )
        return sums

    def _loss(self, sums: Dict[str, torch.Tensor], stage: str):
        """Normalised by *global* counts (W processes give the gradient of one big batch; DDP averages
        over W, hence the factor W). The diversity term is a per-batch mean; like fairseq, it is scaled
        by the local count of scored frames before the sum is divided by the global count, so it weighs
        ``diversity_weight`` against the *mean* InfoNCE whatever the batch size or process count."""
        obj = self.cfg.objective
        world = self.trainer.world_size
        n_m = self.reduce_sum(sums["m_count"]).clamp(min=1)
        mlm = sums["m_loss"] / n_m
        logged = {
            f"{stage}/mlm": self.reduce_sum(sums["m_loss"]) / n_m,
            f"{stage}/acc_mlm": self.reduce_sum(sums["m_correct"]) / n_m,
            f"{stage}/diversity": sums["diversity"].detach(),
            f"{stage}/code_perplexity": sums["code_perplexity"],
            f"{stage}/prob_perplexity": sums["prob_perplexity"],
            f"{stage}/code_usage": sums["codes_used"] / (obj.num_codes * obj.codebook_groups),
        }
        loss = obj.mlm_weight * mlm
        if not obj.mlm_only:
            n_c = self.reduce_sum(sums["c_count"]).clamp(min=1)
            contrastive = (sums["c_loss"] + obj.diversity_weight * sums["diversity"] * sums["c_count"]) / n_c
            loss = loss + obj.contrastive_weight * contrastive
            logged.update(
                {
                    f"{stage}/contrastive": self.reduce_sum(sums["c_loss"]) / n_c,
                    f"{stage}/acc_contrastive": self.reduce_sum(sums["c_correct"]) / n_c,
                }
            )
        logged[f"{stage}/loss"] = loss.detach() if world == 1 else self.reduce_sum(loss) / world
        return loss * world, logged

    def on_train_batch_start(self, batch, batch_idx):
        self.quantizer.set_num_updates(self.global_step)

    def training_step(self, batch, batch_idx):
        torch.manual_seed(self.cfg.trainer.seed * 100_003 + self.global_step)  # reproducible across resumes
        sums = self.compute_sums(batch)
        if sums["m_count"] == 0:  # nothing masked (utterances of a frame or two): nothing to learn from
            log.warning("step %d: no masked frames in a batch of %s; skipped", self.global_step, batch["utts"][:3])
            self.count_batch()
            return None
        loss, logged = self._loss(sums, "train")
        logged["train/temperature"] = torch.tensor(self.quantizer.temperature)
        self.log_dict(logged, rank_zero_only=True)
        for key in ("loss", "acc_contrastive", "acc_mlm", "code_perplexity"):
            if f"train/{key}" in logged:
                self.log(
                    key.replace("acc_contrastive", "acc_c"),
                    logged[f"train/{key}"],
                    prog_bar=True,
                    logger=False,
                    rank_zero_only=True,
                )
        self.monitor.update(self.global_step, float(sums["code_perplexity"]))
        self.count_batch()
        return loss

    def on_validation_epoch_start(self):
        obj = self.cfg.objective
        self._val_counts = torch.zeros(obj.codebook_groups, obj.num_codes, device=self.device)

    def validation_step(self, batch, batch_idx):
        sums = self.compute_sums(batch)
        _, logged = self._loss(sums, "val")
        ids = sums["ids"]
        for g in range(ids.shape[1]):
            self._val_counts[g] += torch.bincount(ids[:, g], minlength=self._val_counts.shape[1])
        self.log_dict(logged, rank_zero_only=True, batch_size=len(batch["utts"]))

    def on_validation_epoch_end(self):
        """Codebook use over the whole dev set: the share of codes ever chosen and their perplexity."""
        counts = self.reduce_sum(self._val_counts)
        if counts.sum() > 0:
            probs = counts / counts.sum(-1, keepdim=True)
            self.log("val/dev_code_usage", (counts > 0).float().mean(), rank_zero_only=True)
            self.log("val/dev_code_perplexity", perplexity(probs), rank_zero_only=True)

    def configure_optimizers(self):
        return build_optimizer(no_decay_groups(self, self.cfg.optim.weight_decay), self.cfg.optim)


def describe(cfg: W2vBertPretrainConfig) -> Dict[str, int]:
    """Parameter counts of the model a config builds (on the meta device: nothing is allocated)."""
    with torch.device("meta"):
        task = W2vBertPretrainTask({**asdict(cfg), "init_from": None})
    return parameter_summary(task)


def parameter_summary(task: W2vBertPretrainTask) -> Dict[str, int]:
    heads = sum(parameter_count(m) for m in task.heads().values())
    enc = parameter_count(task.encoder)
    per_layer = parameter_count(task.encoder.encoder.layers[0])
    n_c = task.contrastive_layers
    return {
        "encoder": enc,
        "contrastive_module_blocks": n_c,
        "mlm_module_blocks": task.encoder.num_layers - n_c,
        "params_per_block": per_layer,
        "pretraining_heads": heads,
        "total": enc + heads,
    }


def timing_step(cfg: W2vBertPretrainConfig):
    """``(step, device)``: one update on a synthetic micro-batch of the configured size, for
    ``--dry-run --time-steps`` (the loss is the task's terms summed: the same graph, unweighted)."""
    from ..utils.device import resolve_device

    device = resolve_device(cfg.trainer.accelerator)
    task = W2vBertPretrainTask({**asdict(cfg), "init_from": None}).to(device).train()
    utt = cfg.data.crop_seconds or 15.0
    count = max(1, int(cfg.data.batch_seconds // utt))
    n = int(utt * SAMPLE_RATE)
    batch = {
        "wavs": torch.randn(count, n, generator=torch.Generator().manual_seed(0)).to(device) * 0.1,
        "lengths": torch.full((count,), n, device=device),
        "seeds": torch.arange(count),
    }
    opt = torch.optim.AdamW(task.parameters(), lr=1e-6)

    def step():
        opt.zero_grad(set_to_none=True)
        sums = task.compute_sums(batch)
        loss = sums["m_loss"] / sums["m_count"].clamp(min=1) + sums["diversity"]
        if "c_loss" in sums:
            loss = loss + sums["c_loss"] / sums["c_count"].clamp(min=1)
        loss.backward()
        opt.step()

    return step, str(device)


def pretrain_w2v_bert(cfg: W2vBertPretrainConfig, callbacks=()) -> Dict[str, Any]:
    """Train (or resume) and export; returns a summary with the final metrics and the export path."""

    out = Path(cfg.trainer.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    L.seed_everything(cfg.trainer.seed, workers=True, verbose=False)
    dm = audio_data_module(cfg.data)
    dm.setup()
    task = W2vBertPretrainTask(asdict(cfg))
    sizes = parameter_summary(task)
    log.info(
        "w2v-BERT %s: %.2fM encoder parameters (%d contrastive + %d MLM blocks), %.2fM in pretraining heads",
        cfg.model,
        sizes["encoder"] / 1e6,
        sizes["contrastive_module_blocks"],
        sizes["mlm_module_blocks"],
        sizes["pretraining_heads"] / 1e6,
    )

    def export(trainer, summary):
        meta = {
            "objective": "w2v_bert",
            "steps": trainer.global_step,
            "contrastive_layers": task.contrastive_layers,
            "num_codes": cfg.objective.num_codes,
            "codebook_groups": cfg.objective.codebook_groups,
        }
        heads = {f"{name}.{k}": v for name, m in task.heads().items() for k, v in m.cpu().state_dict().items()}
        spec = {
            "kind": "w2v_bert",
            "contrastive_layers": task.contrastive_layers,
            **{k: getattr(cfg.objective, k) for k in ("num_codes", "codebook_groups", "code_dim", "final_dim")},
        }
        folder = save_model(task.encoder.cpu(), out / "final", metadata=meta, heads=(spec, heads))
        summary["parameters"] = sizes
        summary["final_temperature"] = round(task.quantizer.temperature, 4)
        return folder

    return run_pretraining(cfg, task, dm, export, callbacks)
