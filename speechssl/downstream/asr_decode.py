"""Decoding a fine-tuned CTC model over a data dir: posteriors once, greedy or beam search (+ word n-gram), and
Kaldi-style scoring. Inference only: ``speechssl decode``, the LM-weight sweep and the TTS judges use it."""

from __future__ import annotations

import time
from typing import Any, Dict, Optional

import torch
from torch import nn
from tqdm import tqdm

from ..data.batching import duration_batches
from ..data.kaldi_dir import DataDir
from ..errors import InputError, MissingInputError
from ..models.ctc import load_ctc_model
from ..utils.device import resolve_device
from .ctc_decode import DEFAULT_LM_WEIGHT, DEFAULT_WORD_SCORE, BeamSearchDecoder, greedy_decode
from .scoring import write_scoring


def ctc_posteriors(
    model_dir, data_dir, batch_seconds: float = 60.0, device: str = "auto", text_file: Optional[str] = None
):
    """Run a fine-tuned model over ``data_dir`` once.

    Returns ``(vocab, utts, refs, batches)``; ``batches`` yields ``(utt ids, log_probs [B, T, V], frames [B])``
    on the CPU one batch at a time (a plain decode holds one batch; an LM-weight sweep keeps the list and
    shares one forward pass among its decoders)."""
    model, vocab = load_ctc_model(model_dir)
    device = resolve_device(device)
    model.to(device)
    d = DataDir.read(data_dir)
    text_file = text_file or ("text.phone" if vocab.unit == "phone" else "text")
    table = d.text if text_file == "text" else d.extra.get(text_file)
    if table is None:
        raise MissingInputError(f"{data_dir}/{text_file}: no references to score against")
    utts = [u for u in d.utt_ids if u in table]
    if len(utts) < len(d.utt_ids):
        raise InputError(f"{data_dir}/{text_file}: {len(d.utt_ids) - len(utts)} utterances have no reference")
    durs = d.utt2dur or d.compute_utt2dur()

    def batches():
        for batch in tqdm(duration_batches(utts, durs, batch_seconds), desc="ctc", unit="batch"):
            wavs = [torch.from_numpy(d.load_audio(u)) for u in batch]
            lengths = torch.tensor([len(w) for w in wavs])
            padded = nn.utils.rnn.pad_sequence(wavs, batch_first=True).to(device)
            with torch.inference_mode():
                log_probs, frames = model(padded, lengths.to(device))
            yield batch, log_probs.float().cpu(), frames.cpu()

    return vocab, utts, [table[u] for u in utts], batches()


def decode_asr(
    model_dir,
    data_dir,
    out_dir,
    beam: int = 0,
    lm: Optional[str] = None,
    lm_weight: float = DEFAULT_LM_WEIGHT,
    word_score: float = DEFAULT_WORD_SCORE,
    batch_seconds: float = 60.0,
    device: str = "auto",
    text_file: Optional[str] = None,
) -> Dict[str, Any]:
    """Decode ``data_dir`` with a fine-tuned model (greedy when ``beam`` is 0) and score it into ``out_dir``."""
    t0 = time.time()
    vocab, utts, refs, batches = ctc_posteriors(model_dir, data_dir, batch_seconds, device, text_file)
    beam_decoder = BeamSearchDecoder(vocab, beam, lm, lm_weight, word_score) if beam else None
    hyps: Dict[str, str] = {}
    for batch, log_probs, frames in batches:
        texts = beam_decoder(log_probs, frames) if beam_decoder else greedy_decode(log_probs, frames, vocab)
        hyps.update(zip(batch, texts))
    how = {
        "decoder": f"beam{beam}" if beam else "greedy",
        "lm": str(lm) if lm else None,
        "lm_weight": lm_weight if lm else None,
        "word_score": word_score if lm else None,
        "model": str(model_dir),
        "data": str(data_dir),
        "seconds": round(time.time() - t0, 1),
    }
    return write_scoring(out_dir, utts, refs, [hyps[u] for u in utts], vocab.unit, how)
