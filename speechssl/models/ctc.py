"""The CTC model of ASR fine-tuning: a :class:`~speechssl.models.encoder.SpeechEncoder` with a linear CTC output
layer, its architecture config, and its exported folder (the encoder in our format + ``ctc_head.safetensors``,
``tokens.txt``, ``asr.json``). Training lives in :mod:`speechssl.tasks.asr`, decoding in ``downstream/``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional

import torch
from safetensors.torch import save_file
from torch import nn

from ..config import MISSING
from ..data.tokenizers import TokenVocab
from ..errors import MissingInputError
from ..nn.masking import channel_mask, span_mask
from ..nn.utils import lengths_to_mask
from ..utils.atomic import atomic_path, write_json
from ..utils.readers import load_safetensors
from .encoder import SpeechEncoder, normalize_waveform
from .registry import load_model, save_model


@dataclass
class AsrModelConfig:
    upstream: str = MISSING  # exported folder, HF folder, fairseq .pt, or a registered name
    encoder_overrides: Dict[str, Any] = field(default_factory=dict)  # e.g. dropout, layerdrop
    final_dropout: float = 0.0
    freeze_feature_extractor: bool = True
    freeze_encoder_steps: int = 0  # fairseq freeze_finetune_updates: only the CTC layer learns until then
    mask_prob: float = 0.65  # fraction of frames covered by time-mask spans (fairseq meaning)
    mask_length: int = 10
    mask_channel_prob: float = 0.0  # fraction of channels zeroed by spans
    mask_channel_length: int = 64


class CtcModel(nn.Module):
    """A :class:`SpeechEncoder` with a linear CTC output layer: ``wavs -> log_probs [B, T', V]``."""

    def __init__(self, encoder: SpeechEncoder, vocab_size: int, final_dropout: float = 0.0):
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(final_dropout)
        self.ctc_proj = nn.Linear(encoder.hidden_size, vocab_size)

    def forward(
        self,
        wavs: torch.Tensor,
        lengths: torch.Tensor,
        mask: Optional[AsrModelConfig] = None,
        freeze_frontend: bool = True,
        freeze_encoder: bool = False,
    ):
        """Returns ``(log_probs [B, T', V], frames [B])``; ``mask`` (a config) applies time/channel masking."""
        enc = self.encoder
        with torch.set_grad_enabled(torch.is_grad_enabled() and not freeze_encoder):
            if enc.config.normalize_waveform:
                wavs = normalize_waveform(wavs, lengths)
            with torch.set_grad_enabled(torch.is_grad_enabled() and not freeze_frontend):
                feats, frames = enc.frontend(wavs, lengths)
            time_mask = chan = None
            if mask is not None:
                B, T = feats.shape[:2]
                if mask.mask_prob > 0:
                    time_mask = span_mask(frames, T, mask.mask_prob, mask.mask_length, 2) & lengths_to_mask(frames, T)
                if mask.mask_channel_prob > 0:
                    chan = channel_mask(
                        B, enc.hidden_size, mask.mask_channel_prob, mask.mask_channel_length, device=feats.device
                    )
            x = enc.forward_features(feats, frames, time_mask=time_mask, channel_mask=chan).last_hidden_state
        return self.ctc_proj(self.dropout(x)).float().log_softmax(-1), frames


def save_ctc_model(model: CtcModel, vocab: TokenVocab, path, metadata: Optional[Dict] = None) -> Path:
    path = Path(path)
    save_model(model.encoder, path, metadata={"objective": "ctc", **(metadata or {})})
    state = {k: v.detach().contiguous().cpu() for k, v in model.ctc_proj.state_dict().items()}
    with atomic_path(path / "ctc_head.safetensors") as tmp:
        save_file(state, str(tmp))
    vocab.save(path / "tokens.txt")
    write_json(path / "asr.json", {"unit": vocab.unit, "vocab_size": len(vocab)})
    return path


def load_ctc_model(path):
    """``(CtcModel, TokenVocab)`` from a folder written by :func:`save_ctc_model`."""

    path = Path(path)
    if not (path / "asr.json").is_file():
        raise MissingInputError(f"{path}: not a fine-tuned CTC model (no asr.json; made by `speechssl finetune asr`)")
    info = json.loads((path / "asr.json").read_text())
    vocab = TokenVocab.load(path / "tokens.txt", info["unit"])
    model = CtcModel(load_model(path), len(vocab))
    model.ctc_proj.load_state_dict(load_safetensors(path / "ctc_head.safetensors"))
    return model.eval(), vocab


__all__ = ["AsrModelConfig", "CtcModel", "load_ctc_model", "save_ctc_model"]
