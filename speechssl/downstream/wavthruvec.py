"""WavThruVec inference: text -> SSL features -> waveform, and voice conversion through the vocoder.

``synthesize``: phonemize (espeak-ng) -> text2vec (durations from its predictor) -> the vocoder (vec2wav, or
vec2mel + Griffin-Lim), with the speaker embedding of a reference recording. ``voice_convert``: the source's
upstream features -> the vocoder with the target reference's embedding. Both take the upstream the vocoder
was trained on from its export.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..audio.io import save
from ..constants import SAMPLE_RATE
from ..corpus.phonemize import phone_ids, phonemize
from ..errors import InputError
from ..hub import load_upstream
from ..models.text2vec import Text2Vec, Text2VecConfig
from ..models.vec2mel import Vec2MelConfig, Vec2MelGenerator
from ..models.vec2wav import Vec2WavConfig, Vec2WavGenerator
from ..pipelines.speaker_embedding import logmel_speaker_embedding, speaker_embedding
from ..training.export import load_export, read_export_spec
from ..utils.device import resolve_device


def load_acoustic(path) -> tuple:
    """An exported text2vec folder -> ``(model in eval mode, spec dict)``."""
    return load_export(path, "acoustic", "text2vec", Text2VecConfig, Text2Vec)


def load_vocoder(path) -> tuple:
    """An exported vocoder folder, vec2wav or vec2mel -> ``(generator in eval mode, spec dict)``. Both offer
    ``waveform(features [B, T, F], **speaker) -> wav [B, T * hop]``."""
    spec = read_export_spec(path, "vocoder")  # read once: its section names the kind
    if "vec2mel" in spec:
        return load_export(path, "vocoder", "vec2mel", Vec2MelConfig, Vec2MelGenerator, spec=spec)
    return load_export(path, "vocoder", "vec2wav", Vec2WavConfig, Vec2WavGenerator, spec=spec)


class WavThruVec:
    """The two stages and the upstream they share, loaded from exported folders."""

    def __init__(self, vocoder: str, acoustic: Optional[str] = None, device: str = "auto"):
        self.device = resolve_device(device)
        self.vocoder, self.vspec = load_vocoder(vocoder)
        self.vocoder.to(self.device)
        self.acoustic, self.aspec = load_acoustic(acoustic) if acoustic else (None, None)
        if self.acoustic is not None:
            self.acoustic.to(self.device)
        if self.aspec and (self.aspec["layer"] != self.vspec["layer"]):
            raise InputError(
                f"text2vec predicts layer {self.aspec['layer']} but the vocoder takes layer "
                f"{self.vspec['layer']}: train them on the same upstream layer"
            )
        self.upstream = load_upstream(self.vspec["upstream"]).eval().to(self.device)

    @torch.no_grad()
    def layers(self, wav: np.ndarray, *specs: dict):
        """16 kHz audio -> (vocoder features [T, F], one speaker embedding [S] per spec in ``specs``, as each
        spec's model was trained with: the vocoder's when none is given). One upstream pass for all."""
        x = torch.from_numpy(np.asarray(wav, np.float32))[None].to(self.device)
        out = self.upstream(x, torch.tensor([x.shape[1]], device=self.device))
        feats = out.hidden_states[self.vspec["layer"]][0]
        embeddings = []
        for spec in specs or (self.vspec,):
            speaker = spec["speaker"]
            if speaker.get("source", "upstream") == "logmel":  # folders from before `source` existed: upstream
                spk = logmel_speaker_embedding(wav)
            else:
                spk = speaker_embedding(out.hidden_states[speaker["layer"]][0].cpu().numpy())
            embeddings.append(torch.from_numpy(spk).to(self.device))
        return (feats, *embeddings)

    def _speaker_kwargs(self, spk: torch.Tensor) -> dict:
        return {"speaker": spk[None]} if self.vocoder.cfg.speaker_dim and not self.vocoder.cfg.num_speakers else {}

    @torch.no_grad()
    def vocode(self, feats: torch.Tensor, spk: torch.Tensor) -> np.ndarray:
        return self.vocoder.waveform(feats[None].to(self.device), **self._speaker_kwargs(spk))[0].cpu().numpy()

    @torch.no_grad()
    def synthesize(self, text: str, speaker_ref: np.ndarray, length_scale: float = 1.0):
        """-> (waveform, phones, predicted features [T, F])."""
        if self.acoustic is None:
            raise InputError("synthesis needs a text2vec model (--acoustic)")
        phones = phonemize(text)
        if not phones:
            raise InputError(f"nothing to say: espeak-ng gave no phones for {text!r}")
        ids = torch.tensor([phone_ids(phones, "text")], device=self.device)
        _, spk, spk_acoustic = self.layers(speaker_ref, self.vspec, self.aspec)
        kw = (
            {"speaker": spk_acoustic[None]}
            if self.acoustic.cfg.speaker_dim and not self.acoustic.cfg.num_speakers
            else {}
        )
        feats, _ = self.acoustic.synthesize(
            ids, torch.tensor([ids.shape[1]], device=self.device), length_scale=length_scale, **kw
        )
        return self.vocode(feats[0], spk), phones, feats[0]

    @torch.no_grad()
    def voice_convert(self, source: np.ndarray, target_ref: np.ndarray) -> np.ndarray:
        feats, _ = self.layers(source)
        _, spk = self.layers(target_ref)
        return self.vocode(feats, spk)


def save_wav(path, wav: np.ndarray) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save(path, np.clip(wav, -1, 1).astype(np.float32), SAMPLE_RATE)
    return path
