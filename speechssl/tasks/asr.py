"""CTC fine-tuning of a pretrained encoder for ASR (wav2vec 2.0 / HuBERT fine-tuning recipe).

``speechssl finetune asr --config finetune/asr_mini key=value ...``: letters with ``|`` word
boundaries, a linear CTC layer on the encoder output, the waveform CNN frozen, the Transformer
frozen for the first ``freeze_encoder_steps`` updates, time and channel masking, the tri-stage
learning-rate schedule. The best checkpoint by dev WER is exported to ``out_dir/final``: the
encoder in our folder format (an upstream like any other) plus ``ctc_head.safetensors``,
``tokens.txt`` and ``asr.json``; ``speechssl decode`` reads it.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from ..constants import SAMPLE_RATE
from ..data.dataset import AudioTextDataset, collate_audio_text
from ..data.kaldi_dir import DataDir
from ..data.tokenizers import TokenVocab
from ..downstream.asr_decode import ctc_posteriors, decode_asr  # noqa: F401 (re-exported)
from ..downstream.ctc_decode import greedy_decode
from ..downstream.metrics import ErrorCounts, error_counts
from ..errors import InputError, MissingInputError
from ..hub import load_upstream
from ..models.ctc import AsrModelConfig, CtcModel, load_ctc_model, save_ctc_model  # noqa: F401 (re-exported)
from ..models.encoder import EncoderConfig, SpeechEncoder
from ..objectives.ctc import ctc_loss_per_token, infeasible_targets
from ..training import (
    OptimConfig,
    TrainerConfig,
    TrainingTask,
    as_config,
    build_optimizer,
    fit_and_export,
    no_decay_groups,
)
from ..utils.atomic import write_text
from ..utils.readers import load_checkpoint, load_yaml_dict
from .audio_data import AudioDataModule
from .common import AudioDataConfig

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------ config
@dataclass
class AsrDataConfig(AudioDataConfig):
    vocab: Optional[str] = None  # tokens.txt (or fairseq dict.ltr.txt); built from train text if None
    unit: str = "char"  # char (letters + |) | phone | word
    text_file: str = "text"  # transcript table in the data dirs (text.phone for phones)
    crop_seconds: Optional[float] = None  # CTC needs whole utterances
    max_seconds: Optional[float] = 30.0


@dataclass
class TriStageOptimConfig(OptimConfig):
    """AdamW with fairseq's tri-stage schedule over ``total_steps``: linear warmup from
    ``init_lr_scale * lr``, hold at ``lr``, exponential decay to ``final_lr_scale * lr``."""

    lr: float = 5e-5
    weight_decay: float = 0.0
    phase_ratio: List[float] = field(default_factory=lambda: [0.1, 0.4, 0.5])
    init_lr_scale: float = 0.01
    final_lr_scale: float = 0.05
    total_steps: int = 20000
    warmup_steps: int = 0  # unused: phase_ratio sets the phases


@dataclass
class AsrFinetuneConfig:
    model: AsrModelConfig = field(default_factory=AsrModelConfig)
    data: AsrDataConfig = field(default_factory=AsrDataConfig)
    optim: TriStageOptimConfig = field(default_factory=TriStageOptimConfig)
    trainer: TrainerConfig = field(default_factory=lambda: TrainerConfig(out_dir="exp/asr", max_steps=20000))

    def validate(self) -> None:
        if self.data.unit not in ("char", "phone", "word"):
            raise InputError(f"data.unit must be char, phone or word, got {self.data.unit!r}")
        r = self.optim.phase_ratio
        if len(r) != 3 or abs(sum(r) - 1) > 1e-6 or min(r) < 0:
            raise InputError(f"optim.phase_ratio must be three non-negative shares summing to 1, got {r}")


def tri_stage(step: int, total: int, ratios, init_scale: float, final_scale: float) -> float:
    """LR multiplier of fairseq's ``tri_stage`` scheduler at ``step``."""
    warm, hold = int(total * ratios[0]), int(total * ratios[1])
    decay = total - warm - hold
    if step < warm:
        return init_scale + (1 - init_scale) * step / max(warm, 1)
    if step < warm + hold:
        return 1.0
    if step < total and decay > 0:
        return math.exp(math.log(final_scale) * (step - warm - hold) / decay)
    return final_scale


# ------------------------------------------------------------------------------------ training
class AsrDataModule(AudioDataModule):
    def __init__(self, cfg: AsrDataConfig, vocab: TokenVocab):
        super().__init__(cfg)
        self.vocab = vocab

    collate_fn = staticmethod(collate_audio_text)

    def make_dataset(self, data_dir, label_paths, train):
        return AudioTextDataset(
            data_dir,
            self.vocab,
            self.cfg.text_file,
            self.cfg.min_seconds if train else 0.0,
            self.cfg.max_seconds if train else None,
            normalize=self.cfg.normalize,
        )


class AsrFinetuneTask(TrainingTask):
    def __init__(self, cfg: Dict[str, Any], vocab_tokens: List[str]):
        super().__init__()
        self.save_hyperparameters()
        self.cfg = as_config(AsrFinetuneConfig, cfg)
        self.vocab = TokenVocab(vocab_tokens, self.cfg.data.unit)
        encoder = load_upstream(self.cfg.model.upstream)
        if not isinstance(encoder, SpeechEncoder):
            raise InputError(
                f"{self.cfg.model.upstream}: CTC fine-tuning needs a trainable encoder, not {type(encoder).__name__}"
            )
        if self.cfg.model.encoder_overrides:  # dropout and friends: rebuild with the same weights
            conf = EncoderConfig.from_dict({**encoder.config.to_dict(), **self.cfg.model.encoder_overrides})
            state = encoder.state_dict()
            encoder = SpeechEncoder(conf)
            encoder.load_state_dict(state)
        self.model = CtcModel(encoder, len(self.vocab), self.cfg.model.final_dropout).train()  # loaded in eval mode
        if self.cfg.model.freeze_feature_extractor:
            for p in self.model.encoder.frontend.parameters():
                p.requires_grad_(False)
        self._val = ErrorCounts(), ErrorCounts()

    def _ctc(self, log_probs, frames, batch):
        return ctc_loss_per_token(log_probs, frames, batch["targets"], batch["target_lengths"], self.vocab.blank)

    def training_step(self, batch, batch_idx):
        torch.manual_seed(self.cfg.trainer.seed * 100_003 + self.global_step)
        m = self.cfg.model
        frozen = self.global_step < m.freeze_encoder_steps
        log_probs, frames = self.model(
            batch["wavs"], batch["lengths"], mask=m, freeze_frontend=m.freeze_feature_extractor, freeze_encoder=frozen
        )
        loss = self._ctc(log_probs, frames, batch)
        self.log("train/ctc_loss", loss, prog_bar=True, rank_zero_only=True)
        self.log("train/encoder_frozen", float(frozen), rank_zero_only=True)
        self.count_batch()
        return loss

    def on_save_checkpoint(self, checkpoint):
        super().on_save_checkpoint(checkpoint)
        checkpoint["validations"] = list(getattr(self, "validations", []))  # the selection survives a resume

    def on_load_checkpoint(self, checkpoint):
        super().on_load_checkpoint(checkpoint)
        self.validations = list(checkpoint.get("validations", []))

    def on_validation_epoch_start(self):
        self._val = ErrorCounts(), ErrorCounts()
        self._val_ctc = [0.0, 0]
        if not hasattr(self, "validations"):
            self.validations = []

    def validation_step(self, batch, batch_idx):
        log_probs, frames = self.model(batch["wavs"], batch["lengths"])
        ctc = self._ctc(log_probs, frames, batch)
        self.log("val/ctc_loss", ctc, batch_size=len(batch["utts"]))
        self._val_ctc[0] += float(ctc) * len(batch["utts"])
        self._val_ctc[1] += len(batch["utts"])
        hyps = greedy_decode(log_probs, frames, self.vocab)
        refs = [self.trainer.datamodule.valid_set.texts[u] for u in batch["utts"]]
        for acc, unit in zip(self._val, ("word", "char")):
            c = error_counts(refs, hyps, unit)
            acc.ref, acc.sub, acc.dele, acc.ins = acc.ref + c.ref, acc.sub + c.sub, acc.dele + c.dele, acc.ins + c.ins

    def on_validation_epoch_end(self):
        counts = torch.tensor(
            [[c.ref, c.sub, c.dele, c.ins] for c in self._val], dtype=torch.float64, device=self.device
        )
        if self.trainer.world_size > 1:
            counts = self.trainer.strategy.reduce(counts, reduce_op="sum")
        wer, cer = (100 * c[1:].sum() / c[0].clamp_min(1) for c in counts)
        self.log("val/wer", wer.float(), prog_bar=True)
        self.log("val/cer", cer.float())
        # the checkpoint kept: lowest WER; ties (common early, when every word is wrong) go to the lower CER, then
        # the lower CTC loss, so a later, better model is not passed over for the first of equals
        ctc = self._val_ctc[0] / max(self._val_ctc[1], 1)
        selection = float(wer + 1e-4 * cer + 1e-7 * min(ctc, 1000.0))
        self.log("val/selection", selection)
        if not self.trainer.sanity_checking:
            self.validations.append(
                {"step": self.global_step, "wer": float(wer), "cer": float(cer), "ctc": ctc, "selection": selection}
            )

    def configure_optimizers(self):
        o = self.cfg.optim
        return build_optimizer(
            no_decay_groups(self, o.weight_decay),
            o,
            lambda s: tri_stage(s, o.total_steps, o.phase_ratio, o.init_lr_scale, o.final_lr_scale),
        )


def build_vocab(cfg: AsrDataConfig, out: Path) -> TokenVocab:
    """The vocabulary: the configured file, the run's own ``tokens.txt`` (resume), or built from train text."""
    if cfg.vocab:
        return TokenVocab.load(cfg.vocab, cfg.unit)
    mine = out / "tokens.txt"
    if mine.exists():
        return TokenVocab.load(mine, cfg.unit)
    d = DataDir.read(cfg.train)
    table = d.text if cfg.text_file == "text" else d.extra.get(cfg.text_file)
    if not table:
        raise MissingInputError(f"{cfg.train}/{cfg.text_file}: no transcripts to build a vocabulary from")
    vocab = TokenVocab.build(table.values(), cfg.unit)
    vocab.save(mine)
    return vocab


LETTER_VOCAB = 32  # fairseq's dict.ltr.txt: 28 letters and marks + 4 specials; the dry run's assumption


def describe(cfg: AsrFinetuneConfig) -> Dict[str, Any]:
    """Parameters of the CTC model a config builds: the upstream's architecture (its folder's config, or a
    registered name: counted only, nothing loaded) and a letter output layer."""
    from ..models import model_config

    folder = Path(cfg.model.upstream) / "config.yaml"
    if folder.is_file():
        enc_cfg = EncoderConfig.from_dict(load_yaml_dict(folder)["model"])
    else:
        try:
            enc_cfg = model_config(cfg.model.upstream)
        except KeyError:
            return {
                "upstream": f"{cfg.model.upstream} (not there yet: counted once pretraining has written it; "
                f"or pass model.upstream=<registered name> to count that architecture)"
            }
    with torch.device("meta"):
        model = CtcModel(SpeechEncoder(enc_cfg), LETTER_VOCAB)
    n = sum(p.numel() for p in model.parameters())
    return {"total": n, "ctc_layer": sum(p.numel() for p in model.ctc_proj.parameters()), "assumed_vocab": LETTER_VOCAB}


def report_infeasible(dataset, encoder, out: Path) -> None:
    """Name the training utterances whose transcript cannot fit their frames (a warning with the first ones,
    all of them in ``out/infeasible_targets.txt``): CTC gives them no gradient, so they are labels lost."""
    samples = torch.tensor([int(round(dataset.durations[u] * SAMPLE_RATE)) for u in dataset.utts])
    frames = dict(zip(dataset.utts, encoder.output_lengths(samples).tolist()))
    bad = infeasible_targets({u: dataset.targets[u] for u in dataset.utts}, frames)
    if not bad:
        return
    lines = [f"{u} needs {need} frames, has {have}" for u, need, have in bad]
    write_text(out / "infeasible_targets.txt", "\n".join(lines) + "\n")
    log.warning(
        "%d of %d training utterances have a transcript longer than CTC can emit in their frames (no "
        "gradient from them): %s%s; all in %s",
        len(bad),
        len(dataset.utts),
        "; ".join(lines[:3]),
        " ..." if len(bad) > 3 else "",
        out / "infeasible_targets.txt",
    )


def finetune_asr(cfg: AsrFinetuneConfig, callbacks=()) -> Dict[str, Any]:
    """Fine-tune (or resume), export the best-by-dev-WER model to ``out_dir/final``; returns a summary."""

    cfg.validate()
    out = Path(cfg.trainer.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    L.seed_everything(cfg.trainer.seed, workers=True, verbose=False)
    vocab = build_vocab(cfg.data, out)
    dm = AsrDataModule(cfg.data, vocab)
    dm.setup()
    task = AsrFinetuneTask(asdict(cfg), vocab.tokens)
    report_infeasible(dm.train_set, task.model.encoder, out)
    best = ModelCheckpoint(
        dirpath=out / "checkpoints",
        filename="best",
        monitor="val/selection",
        mode="min",
        save_top_k=1,
        save_weights_only=True,
        enable_version_counter=False,
    )

    def export(trainer, summary) -> Path:
        """The best-by-dev-WER weights (the last ones when nothing was validated)."""
        best_path = out / "checkpoints" / "best.ckpt"
        if best_path.exists():
            task.load_state_dict(load_checkpoint(best_path)["state_dict"])
            chosen = min(getattr(task, "validations", []), key=lambda v: v["selection"], default=None)
            summary["best_val_wer"] = None if chosen is None else round(chosen["wer"], 3)
            summary["best_val_step"] = None if chosen is None else chosen["step"]
        meta = {
            "steps": summary["steps"],
            "upstream": cfg.model.upstream,
            "train": cfg.data.train,
            "best_val_wer": summary.get("best_val_wer"),
        }
        return save_ctc_model(task.model.cpu(), vocab, out / "final", meta)

    return fit_and_export(cfg, task, dm, export, callbacks=[best, *callbacks], extra_summary={"vocab_size": len(vocab)})
