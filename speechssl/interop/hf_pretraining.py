"""Import a transformers ``Wav2Vec2ForPreTraining`` folder whole: the encoder *and* the wav2vec 2.0 quantizer and
projections, as a :class:`~speechssl.models.w2v_bert.W2vBertPretrainModel` whose every block is contrastive (the
wav2vec 2.0 objective: ``objective.mlm_weight=0``), so our contrastive step can be checked against transformers'
on the same weights, masks and distractors (``tools/bench_pretrain_peer.py``). ``pretrain w2v-bert``'s
``init_from`` still warm-starts the encoder only; starting its quantizer from such a checkpoint is not wired.

Key names (transformers): ``quantizer.codevectors [1, G*V, code_dim/G]``, ``quantizer.weight_proj``,
``project_q`` (code vectors -> ``proj_codevector_dim``), ``project_hid`` (context -> the same space).
"""

import json
from pathlib import Path

import torch

from ..errors import InputError, MissingInputError
from ..models.w2v_bert import W2vBertHeads, W2vBertPretrainModel
from ..nn.quantizer import GumbelVectorQuantizer
from .huggingface import _strip_prefix, import_huggingface, load_hf_state

PRETRAINING_KEYS = (
    "quantizer.codevectors",
    "quantizer.weight_proj.weight",
    "quantizer.weight_proj.bias",
    "project_q.weight",
    "project_q.bias",
    "project_hid.weight",
    "project_hid.bias",
)


def import_wav2vec2_pretraining(folder) -> W2vBertPretrainModel:
    """``folder`` (config.json + weights of ``Wav2Vec2ForPreTraining``) -> the pretraining model, in eval mode.

    The quantizer's temperature schedule is transformers' default (2, 0.5, 0.999995); the MLM head the
    class carries stays untrained and unused (wav2vec 2.0 has none).
    """
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise MissingInputError(f"{folder}: no config.json (not a transformers model folder)")
    cfg = json.loads((folder / "config.json").read_text())
    if cfg.get("model_type") not in ("wav2vec2", "wav2vec2-conformer"):
        raise InputError(
            f"{folder}: model_type {cfg.get('model_type')!r} has no wav2vec 2.0 quantizer "
            f"(wav2vec2 or wav2vec2-conformer)"
        )
    state = {_strip_prefix(k): v for k, v in load_hf_state(folder).items()}
    missing = [k for k in PRETRAINING_KEYS if k not in state]
    if missing:
        raise MissingInputError(
            f"{folder}: no {', '.join(missing)}: not a Wav2Vec2ForPreTraining checkpoint "
            f"(import the encoder alone with import_huggingface(..., drop_heads=True))"
        )
    encoder = import_huggingface(folder, drop_heads=True)
    groups, codes = cfg["num_codevector_groups"], cfg["num_codevectors_per_group"]
    code_dim, final_dim = cfg["codevector_dim"], cfg["proj_codevector_dim"]
    quantizer = GumbelVectorQuantizer(encoder.frontend.output_dim, codes, groups, code_dim)
    heads = W2vBertHeads(encoder.hidden_size, code_dim, final_dim, groups * codes)
    with torch.no_grad():
        quantizer.codevectors.copy_(state["quantizer.codevectors"].reshape(groups * codes, code_dim // groups))
        for ours, theirs in (
            (quantizer.weight_proj, "quantizer.weight_proj"),
            (heads.project_q, "project_q"),
            (heads.project_context, "project_hid"),
        ):
            ours.weight.copy_(state[f"{theirs}.weight"])
            ours.bias.copy_(state[f"{theirs}.bias"])
    model = W2vBertPretrainModel(encoder, quantizer, heads, contrastive_layers=encoder.num_layers)
    model.metadata = {**encoder.metadata, "pretraining_heads": list(PRETRAINING_KEYS)}
    return model.eval()


def negatives_from_flat(flat: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """transformers' ``sampled_negative_indices [B, T, K]`` (into the flattened ``B*T`` frames) -> our rows:
    ``[N, K]`` indices into the ``N`` masked frames in row-major order, for the masked frames only."""
    row_of = torch.full((mask.numel(),), -1, dtype=torch.long)
    row_of[mask.flatten().nonzero()[:, 0]] = torch.arange(int(mask.sum()))
    rows = row_of[flat.long()[mask]]
    if bool((rows < 0).any()):
        raise InputError("a distractor index points at an unmasked frame: the indices were drawn for another mask")
    return rows
