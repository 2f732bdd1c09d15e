"""Active speaker detection: training (``speechssl asd train``), scoring (``asd eval``) and the official prediction
CSV (``asd predict``) on the AVA / UniTalk layout (``speechssl.corpus.asd_synth`` writes a synthetic one).

A *track* is one entity's rows of a split's CSV: its face crops in timestamp order, its labels, and its audio
(``clips_audios/<split>/<video>/<entity>.wav``, starting at the track's first frame). The audio branch gets 13
Kaldi MFCCs at 100 Hz (the TalkNet / Light-ASD baseline) or an upstream's hidden states (50 Hz; 25 Hz for
w2v-BERT): with the upstream frozen they are computed once per track and kept in memory; with
``finetune_upstream`` the track keeps its waveform, the upstream's Transformer trains with the model (its CNN
stays frozen, as in CTC fine-tuning, at ``upstream_lr_scale`` x the learning rate) and is exported beside it.
Training draws random windows of ``segment_frames``; evaluation scores whole tracks and computes the official AP
over all face-frames, overall and per UniTalk subset CSV.
"""

from __future__ import annotations

import csv
import json
import logging
import random
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch
from omegaconf import OmegaConf

from ..audio.features import mfcc
from ..audio.io import load
from ..config import to_yaml
from ..downstream.ava_ap import ava_average_precision, read_ava_csv
from ..errors import InputError, MissingInputError
from ..hub import load_upstream
from ..models.asd import ActiveSpeakerModel, AsdConfig
from ..models.encoder import SpeechEncoder
from ..models.registry import save_model
from ..training import (
    OptimConfig,
    SplitsDataModule,
    SupervisedSteps,
    TrainerConfig,
    TrainingTask,
    build_optimizer,
    fit_and_export,
    load_export,
    save_export,
)
from ..utils.atomic import atomic_path, write_text
from ..utils.device import resolve_device

log = logging.getLogger(__name__)


@dataclass
class AsdDataConfig:
    root: str = "asd"  # the layout's root (csv/, clips_videos/, clips_audios/)
    train: str = "train"
    valid: Optional[str] = "val"
    segment_frames: int = 50  # 2 s windows in training
    batch_size: int = 16
    valid_utterances: int = 64  # validation tracks
    num_workers: int = 0
    seed: int = 0
    features: Optional[str] = None  # unused (the shared data module's field)


@dataclass
class AsdTrainConfig:
    upstream: Optional[str] = None  # for model.audio = ssl
    finetune_upstream: bool = False  # train the upstream too (exported to final/upstream) instead of freezing it
    upstream_lr_scale: float = 0.1  # its learning rate relative to optim.lr
    model: AsdConfig = field(default_factory=AsdConfig)
    data: AsdDataConfig = field(default_factory=AsdDataConfig)
    optim: OptimConfig = field(
        default_factory=lambda: OptimConfig(
            lr=1e-3, warmup_steps=50, total_steps=2000, weight_decay=1e-4, grad_clip=5.0
        )
    )
    trainer: TrainerConfig = field(
        default_factory=lambda: TrainerConfig(out_dir="exp/asd", val_every_steps=200, checkpoint_every_steps=200)
    )

    def validate(self) -> None:
        if self.model.audio == "ssl" and not self.upstream:
            raise InputError("asd: model.audio=ssl needs upstream= (an exported folder, HF folder, .pt ...)")
        if self.finetune_upstream and self.model.audio != "ssl":
            raise InputError(f"asd: finetune_upstream needs model.audio=ssl, got {self.model.audio!r}")


# ------------------------------------------------------------------------------------------- tracks
@dataclass
class Track:
    entity: str
    video: str
    rows: List[dict]
    frames: np.ndarray  # [T, S, S] uint8 (S = model.face_size)
    labels: np.ndarray  # [T] 0/1
    audio: torch.Tensor  # [A, D] at 100 Hz (MFCC), [L, A, D] hidden states (upstream rate) or [N] samples


def read_tracks(root, split: str, csv_name: Optional[str] = None) -> Dict[str, List[dict]]:
    """``{entity_id: rows in timestamp order}`` of ``csv/<split>_orig.csv`` (or the named CSV)."""
    rows = read_ava_csv(Path(root) / "csv" / (csv_name or f"{split}_orig.csv"))
    tracks: Dict[str, List[dict]] = defaultdict(list)
    for r in rows:
        tracks[r["entity_id"]].append(r)
    for rs in tracks.values():
        rs.sort(key=lambda r: float(r["frame_timestamp"]))
    return dict(tracks)


SAMPLES_PER_FRAME = 640  # 16 kHz audio, 25 fps video
PER_FRAME = {"mfcc": 4, "wav": SAMPLES_PER_FRAME, "none": 0}  # audio rows per video frame (ssl: the upstream's)


def load_track(root, split: str, rows: List[dict], audio_kind: str, upstream=None, face_size: int = 112) -> Track:
    """``audio_kind``: mfcc | ssl (hidden states of the frozen ``upstream``) | wav (for fine-tuning) | none."""
    from PIL import Image

    root = Path(root)
    video, entity = rows[0]["video_id"], rows[0]["entity_id"]
    vdir = root / "clips_videos" / split / video / entity
    frames = []
    for r in rows:
        f = vdir / f"{r['frame_timestamp']}.jpg"
        if not f.is_file():
            raise MissingInputError(f"{f}: face crop missing for {entity} at {r['frame_timestamp']}")
        frames.append(np.asarray(Image.open(f).convert("L").resize((face_size, face_size), Image.BILINEAR)))
    wav_path = root / "clips_audios" / split / video / f"{entity}.wav"
    if not wav_path.is_file():
        raise MissingInputError(f"{wav_path}: audio missing for track {entity}")
    wav = torch.from_numpy(load(str(wav_path)))
    need = len(rows) * SAMPLES_PER_FRAME
    wav = torch.nn.functional.pad(wav, (0, max(0, need - len(wav))))[: max(need, 400)]
    if audio_kind == "mfcc":
        audio = mfcc(wav, num_ceps=13)[0]
    elif audio_kind == "ssl":
        device = next(upstream.parameters()).device if any(True for _ in upstream.parameters()) else "cpu"
        with torch.inference_mode():
            out = upstream(wav[None].to(device), torch.tensor([len(wav)], device=device))
        audio = torch.stack([h[0] for h in out.hidden_states]).cpu().clone()
    elif audio_kind == "wav":
        audio = wav
    else:
        audio = torch.zeros(1, 1)
    labels = np.array([int(r["label"] == "SPEAKING_AUDIBLE") for r in rows])
    return Track(entity, video, rows, np.stack(frames), labels, audio)


class TrackDataset(torch.utils.data.Dataset):
    def __init__(
        self, tracks: List[Track], audio_kind: str, segment: Optional[int], seed: int = 0, ssl_per_frame: int = 2
    ):
        self.tracks, self.kind, self.segment, self.rng = tracks, audio_kind, segment, random.Random(seed)
        self.per = ssl_per_frame if audio_kind == "ssl" else PER_FRAME[audio_kind]  # audio rows a video frame

    def __len__(self):
        return len(self.tracks)

    def __getitem__(self, i):
        t = self.tracks[i]
        T = len(t.labels)
        S = min(self.segment or T, T)
        s = self.rng.randrange(0, T - S + 1) if self.segment and T > S else 0
        per = self.per
        if self.kind == "ssl":
            audio = t.audio[:, s * per : (s + S) * per]
        else:
            audio = t.audio[s * per : (s + S) * per]
        return {
            "frames": torch.from_numpy(t.frames[s : s + S]),
            "labels": torch.from_numpy(t.labels[s : s + S]),
            "audio": audio,
            "index": i,
            "start": s,
        }


def collate(items):
    B, T = len(items), max(len(it["labels"]) for it in items)
    frames = torch.zeros(B, T, *items[0]["frames"].shape[1:], dtype=torch.uint8)
    labels = torch.zeros(B, T, dtype=torch.long)
    valid = torch.zeros(B, T, dtype=torch.bool)
    for i, it in enumerate(items):
        n = len(it["labels"])
        frames[i, :n], labels[i, :n], valid[i, :n] = it["frames"], it["labels"], True
    a0 = items[0]["audio"]
    if a0.dim() == 1:  # [N] samples
        audio = torch.nn.utils.rnn.pad_sequence([it["audio"] for it in items], batch_first=True)
    elif a0.dim() == 3:  # [L, A, D] hidden states
        A = max(it["audio"].shape[1] for it in items)
        audio = torch.zeros(a0.shape[0], B, A, a0.shape[2])
        for i, it in enumerate(items):
            audio[:, i, : it["audio"].shape[1]] = it["audio"]
    else:
        A = max(it["audio"].shape[0] for it in items)
        audio = torch.zeros(B, A, a0.shape[-1])
        for i, it in enumerate(items):
            audio[i, : it["audio"].shape[0]] = it["audio"]
    return {
        "frames": frames,
        "labels": labels,
        "valid": valid,
        "audio": audio,
        "index": [it["index"] for it in items],
        "lengths": valid.sum(1) * SAMPLES_PER_FRAME,
    }


def _audio_kwargs(kind: str, audio: torch.Tensor) -> dict:
    return {"mfcc": audio} if kind == "mfcc" else {"hidden_states": list(audio)} if kind == "ssl" else {}


class AsdTask(SupervisedSteps, TrainingTask):
    """The model, and with ``finetune_upstream`` the upstream it runs on each batch's waveforms."""

    def __init__(self, cfg: AsdTrainConfig, upstream=None):
        super().__init__()
        self.cfg = cfg
        self.model = ActiveSpeakerModel(cfg.model)
        self.upstream = upstream if cfg.finetune_upstream else None
        if self.upstream is not None:
            self.upstream.train()  # dropout on (it was loaded in eval mode)
            for p in self.upstream.frontend.parameters():  # the CNN stays as pretrained
                p.requires_grad_(False)

    def _audio(self, batch) -> dict:
        if self.upstream is None:
            return _audio_kwargs(self.cfg.model.audio, batch["audio"])
        out = self.upstream(batch["audio"], batch["lengths"])
        return {"hidden_states": list(out.hidden_states)}

    def configure_optimizers(self):
        if self.upstream is None:
            return build_optimizer(self.model.parameters(), self.cfg.optim)
        lr = self.cfg.optim.lr
        return build_optimizer(
            [
                {"params": list(self.model.parameters()), "lr": lr},
                {
                    "params": [p for p in self.upstream.parameters() if p.requires_grad],
                    "lr": lr * self.cfg.upstream_lr_scale,
                },
            ],
            self.cfg.optim,
        )

    def _step(self, batch, prefix):
        av, v = self.model(batch["frames"], **self._audio(batch))
        loss = self.model.loss(av, v, batch["labels"], batch["valid"])
        acc = ((av > 0).long() == batch["labels"])[batch["valid"]].float().mean()
        self.log_dict(
            {f"{prefix}/loss": loss, f"{prefix}/acc": acc}, prog_bar=prefix == "train", batch_size=len(batch["index"])
        )
        return loss


def _upstream(cfg: AsdTrainConfig):
    if cfg.model.audio != "ssl":
        return None
    up = load_upstream(cfg.upstream).eval()
    if cfg.finetune_upstream and not isinstance(up, SpeechEncoder):
        raise InputError(f"asd: finetune_upstream needs a trainable encoder, {cfg.upstream} is {type(up).__name__}")
    cfg.model.ssl_layers, cfg.model.ssl_dim = up.num_layers + 1, up.hidden_size
    if SAMPLES_PER_FRAME % up.downsample_rate:
        raise InputError(
            f"asd: {cfg.upstream} makes a frame every {up.downsample_rate} samples, which does not "
            f"divide a 25 fps video frame ({SAMPLES_PER_FRAME} samples)"
        )
    cfg.model.ssl_frames_per_video_frame = SAMPLES_PER_FRAME // up.downsample_rate
    return up


def audio_kind(cfg: AsdTrainConfig) -> str:
    """What a track keeps as its audio: waveform when the upstream is fine-tuned, else the model's input."""
    return "wav" if cfg.finetune_upstream else cfg.model.audio


def load_split(cfg: AsdTrainConfig, split: str, upstream, csv_name: Optional[str] = None) -> List[Track]:
    tracks = read_tracks(cfg.data.root, split, csv_name)
    return [
        load_track(cfg.data.root, split, rows, audio_kind(cfg), upstream, cfg.model.face_size)
        for rows in tracks.values()
    ]


def train_asd(cfg: AsdTrainConfig) -> dict:
    cfg.validate()
    out = Path(cfg.trainer.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.trainer.seed)
    up = _upstream(cfg)
    kind = audio_kind(cfg)
    per = cfg.model.ssl_frames_per_video_frame
    train = TrackDataset(load_split(cfg, cfg.data.train, up), kind, cfg.data.segment_frames, cfg.data.seed, per)
    valid = TrackDataset(load_split(cfg, cfg.data.valid, up), kind, None, ssl_per_frame=per) if cfg.data.valid else None
    write_text(out / "config.yaml", to_yaml(cfg))
    task = AsdTask(cfg, up)

    def export(trainer, summary) -> Path:
        final, steps = out / "final", summary["steps"]
        if task.upstream is not None:  # the fine-tuned upstream first: final/asd.yaml marks a whole export
            save_model(task.upstream, final / "upstream", {"finetuned_from": cfg.upstream, "steps": steps})
        spec = {
            "asd": _container(cfg.model),
            "upstream": "upstream" if task.upstream is not None else cfg.upstream,
            "finetuned_from": cfg.upstream if task.upstream is not None else None,
            "metadata": {"steps": steps},
        }
        return save_export(task.model, final, "asd", spec)

    dm = SplitsDataModule(cfg.data, train, valid, collate, cfg.data.valid_utterances, cfg.data.batch_size)
    return fit_and_export(
        cfg,
        task,
        dm,
        export,
        extra_summary={"tracks": len(train), "audio": cfg.model.audio, "finetune_upstream": cfg.finetune_upstream},
    )


def _container(obj):
    return OmegaConf.to_container(OmegaConf.structured(obj))


# ------------------------------------------------------------------------------------------- scoring
def load_asd(path):
    return load_export(path, "asd", "asd", AsdConfig, ActiveSpeakerModel)


@torch.no_grad()
def score_split(model_dir, root, split: str, device: str = "auto") -> List[dict]:
    """Every face-frame of ``split`` with the model's score: the official prediction rows."""
    device = resolve_device(device)
    model, spec = load_asd(model_dir)
    model = model.to(device)
    upstream = spec.get("upstream")
    if spec.get("finetuned_from"):  # the fine-tuned upstream lives inside the export
        upstream = str(Path(model_dir) / upstream)
    cfg = AsdTrainConfig(upstream=upstream, model=model.cfg, data=AsdDataConfig(root=str(root)))
    up = None
    if model.cfg.audio == "ssl":
        up = load_upstream(cfg.upstream).eval().to(device)
    preds = []
    for t in load_split(cfg, split, up):
        ds = TrackDataset([t], model.cfg.audio, None, ssl_per_frame=model.cfg.ssl_frames_per_video_frame)
        batch = collate([ds[0]])
        av, _ = model(batch["frames"].to(device), **_audio_kwargs(model.cfg.audio, batch["audio"].to(device)))
        scores = torch.sigmoid(av[0]).tolist()
        for r, s in zip(t.rows, scores):
            preds.append(
                {
                    **{
                        k: r[k]
                        for k in (
                            "video_id",
                            "frame_timestamp",
                            "entity_box_x1",
                            "entity_box_y1",
                            "entity_box_x2",
                            "entity_box_y2",
                            "entity_id",
                        )
                    },
                    "label": "SPEAKING_AUDIBLE",
                    "score": round(float(s), 6),
                }
            )
    return preds


def write_predictions(preds: List[dict], path) -> Path:
    """The official prediction CSV: the ground truth's columns, label SPEAKING_AUDIBLE, and the score."""

    cols = [
        "video_id",
        "frame_timestamp",
        "entity_box_x1",
        "entity_box_y1",
        "entity_box_x2",
        "entity_box_y2",
        "label",
        "entity_id",
        "score",
    ]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, cols)
        w.writeheader()
        w.writerows(preds)
    return path


def evaluate_asd(model_dir, root, split: str, out, device: str = "auto") -> dict:
    """AP overall and per subset CSV (``csv/<split>_<subset>.csv``); predictions CSV and results JSON in ``out``."""

    root, out = Path(root), Path(out)
    preds = score_split(model_dir, root, split, device)
    write_predictions(preds, out / f"{split}_predictions.csv")
    by_uid = {f"{p['frame_timestamp']}:{p['entity_id']}": p for p in preds}
    res = {"split": split, "model": str(model_dir), "face_frames": len(preds), "mAP": {}}
    for csv_file in sorted((root / "csv").glob(f"{split}_*.csv")):
        subset = csv_file.stem[len(split) + 1 :]
        gt = read_ava_csv(csv_file)
        sub_preds = [by_uid[f"{g['frame_timestamp']}:{g['entity_id']}"] for g in gt]
        res["mAP"]["overall" if subset == "orig" else subset] = round(100 * ava_average_precision(gt, sub_preds), 2)
    write_text(out / f"{split}_results.json", json.dumps(res, indent=1))
    return res
