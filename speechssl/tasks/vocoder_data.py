"""The data side shared by the vocoder tasks (vec2wav, vec2mel) and text2vec: the data config, aligned random
crops of features and audio with a speaker reference, their batches, the frame codebook, and the data module of a
vocoder config."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch

from ..data.kaldi_dir import DataDir
from ..errors import InputError
from ..pipelines.speaker_perturb import new_voices_data_dir
from ..training import SplitsDataModule
from .tts_common import feature_hop, perturbed_features, prepare_splits, set_speaker_sizes

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


def check_vocoder_config(cfg) -> None:
    """What every vocoder config (vec2wav, vec2mel) must hold: a valid speaker section and model, crops of at
    least 4 frames."""
    cfg.speaker.validate()
    if cfg.data.segment_frames < 4:
        raise InputError("data.segment_frames must be at least 4")
    cfg.model.validate()


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
