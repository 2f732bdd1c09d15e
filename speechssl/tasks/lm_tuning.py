"""The LM weight and word score of CTC beam search, chosen on a dev set (Kaldi's LMWT / word-insertion-penalty
sweep, ESPnet's ``lm_weight`` search).

``speechssl decode --lm LM --beam 20 --lm-weight 0.1 0.2 0.3 0.5 --word-score 0 1 2 3 --data data/dev``
runs the model once, beam-searches the dev set at every grid point and writes the best point's decode to
``--out`` with ``tuning.json`` beside it (every point's WER). Test sets are then decoded with that one setting
(``--settings-from`` the dev decode dir), never tuned on themselves.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

from ..downstream.asr_decode import ctc_posteriors
from ..downstream.ctc_decode import BeamSearchDecoder
from ..downstream.metrics import error_counts
from ..downstream.scoring import write_scoring
from ..errors import InputError, MissingInputError
from ..utils.artifacts import DecodeResult
from ..utils.atomic import write_json


def tune_lm_decoding(
    model_dir,
    data_dir,
    out_dir,
    lm: str,
    lm_weights: Sequence[float],
    word_scores: Sequence[float],
    beam: int = 20,
    batch_seconds: float = 60.0,
    device: str = "auto",
) -> Dict[str, Any]:
    """Beam-search ``data_dir`` at every (LM weight, word score) pair and keep the lowest WER (ties: the first
    pair in grid order). Writes ``out_dir`` (the chosen decode, scored) and ``out_dir/tuning.json``."""
    if not lm or beam <= 0:
        raise InputError("tuning the LM weight needs --lm and a beam width above 0")
    t0 = time.time()
    vocab, utts, refs, stream = ctc_posteriors(model_dir, data_dir, batch_seconds, device)
    batches = list(stream)  # one forward pass, kept for every grid point
    grid = []
    best: Optional[Dict[str, Any]] = None
    decoder = BeamSearchDecoder(vocab, beam, lm)  # the LM is loaded once for the whole grid
    for lm_weight, word_score in itertools.product(lm_weights, word_scores):
        decoder.set_weights(lm_weight, word_score)
        hyps = {}
        for batch, log_probs, frames in batches:
            hyps.update(zip(batch, decoder(log_probs, frames)))
        hyp_list = [hyps[u] for u in utts]
        wer = error_counts(refs, hyp_list, "word").rate
        grid.append({"lm_weight": lm_weight, "word_score": word_score, "wer": round(wer, 3)})
        if best is None or wer < best["wer"]:
            best = {"lm_weight": lm_weight, "word_score": word_score, "wer": wer, "hyps": hyp_list}
    how = {
        "decoder": f"beam{beam}",
        "lm": str(lm),
        "lm_weight": best["lm_weight"],
        "word_score": best["word_score"],
        "tuned_on": str(data_dir),
        "grid_points": len(grid),
        "model": str(model_dir),
        "data": str(data_dir),
        "seconds": round(time.time() - t0, 1),
    }
    result = write_scoring(out_dir, utts, refs, best["hyps"], vocab.unit, how)
    write_json(
        Path(out_dir) / "tuning.json", {"chosen": {k: best[k] for k in ("lm_weight", "word_score")}, "grid": grid}
    )
    return result


def settings_from(decode_dir) -> Dict[str, float]:
    """The LM weight and word score a dev decode (``tune_lm_decoding``'s or any beam + LM decode) used."""
    f = Path(decode_dir) / DecodeResult.FILE
    if not f.is_file():
        raise MissingInputError(f"{f}: no decode to take the LM weight and word score from (decode dev first)")
    d = DecodeResult.read(f)
    if d.get("lm_weight") is None or d.get("word_score") is None:
        raise InputError(f"{f}: this decode used no LM, so it has no LM weight or word score to reuse")
    return {"lm_weight": float(d["lm_weight"]), "word_score": float(d["word_score"])}
