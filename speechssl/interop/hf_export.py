"""Export a :class:`SpeechEncoder` as a Hugging Face transformers folder (config.json, model.safetensors,
preprocessor_config.json) that ``AutoModel.from_pretrained`` opens.

Families map to ``HubertModel``, ``Wav2Vec2Model``, ``WavLMModel``, ``Data2VecAudioModel``,
``Wav2Vec2ConformerModel`` and ``Wav2Vec2BertModel``. Key names come from the pairs that the import in
:mod:`.huggingface` also reads, and every exported key is checked to import back to the key it came from.
LightHuBERT subnets (per-layer head counts and FFN widths) become the HuBERT models they are: the
missing heads and FFN units are zero weights, which add exactly nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Tuple

import torch
from safetensors.torch import save_file

from ..errors import InputError
from ..models.encoder import SpeechEncoder
from ..utils.atomic import atomic_path, write_json
from .huggingface import (
    BATCH_NORM_PAIR,
    CONFORMER_PAIRS,
    CONFORMER_RULES,
    DEPTHWISE_LN_PAIR,
    TRANSFORMER_PAIRS,
    TRANSFORMER_RULES,
)
from .keymap import rename_keys, rules_from_pairs

MODEL_CLASSES = {
    "hubert": ("hubert", "HubertModel"),
    "wav2vec2": ("wav2vec2", "Wav2Vec2Model"),
    "wavlm": ("wavlm", "WavLMModel"),
    "data2vec_audio": ("data2vec-audio", "Data2VecAudioModel"),
}
POSITION_NAMES = {"rel_pos": "relative", "rotary": "rotary", "relative_key": "relative_key", "none": None}


def hf_config(model: SpeechEncoder) -> Dict:
    """The transformers ``config.json`` of ``model`` (raises :class:`InputError` for what has no HF class)."""
    c = model.config
    common = dict(
        hidden_size=c.hidden_size,
        num_hidden_layers=c.num_layers,
        num_attention_heads=c.num_heads,
        intermediate_size=c.ffn_dim,
        hidden_act=c.activation,
        layer_norm_eps=c.layer_norm_eps,
        hidden_dropout=c.dropout,
        attention_dropout=c.attention_dropout,
        activation_dropout=c.activation_dropout,
        feat_proj_dropout=c.feature_dropout,
        layerdrop=c.layerdrop,
        torch_dtype="float32",
        mask_time_prob=0.05 if c.mask_embedding else 0.0,
    )
    if c.frontend == "fbank_stack" and c.encoder == "conformer":
        if c.position not in ("relative_key", "rel_pos", "rotary") or not c.causal_conv or c.conv_norm != "layer_norm":
            raise InputError(
                "w2v-BERT export needs Wav2Vec2BertModel's Conformer (causal depthwise conv with layer "
                f"norm; relative_key, relative or rotary positions); this model has {c.position}, "
                f"causal_conv={c.causal_conv}, conv_norm={c.conv_norm}"
            )
        return dict(
            model_type="wav2vec2-bert",
            architectures=["Wav2Vec2BertModel"],
            **common,
            feature_projection_input_dim=c.num_mel_bins * c.stack_stride,
            position_embeddings_type=POSITION_NAMES[c.position],
            left_max_position_embeddings=c.left_max_position,
            right_max_position_embeddings=c.right_max_position,
            rotary_embedding_base=int(c.rotary_base),
            conv_depthwise_kernel_size=c.depthwise_kernel,
            add_adapter=False,
            use_intermediate_ffn_before_adapter=False,
        )
    if c.frontend != "waveform_cnn":
        raise InputError(f"frontend {c.frontend!r} has no transformers model class; export it as our folder or ONNX")
    waveform = dict(
        conv_dim=[l[0] for l in c.conv_layers],
        conv_kernel=[l[1] for l in c.conv_layers],
        conv_stride=[l[2] for l in c.conv_layers],
        conv_bias=c.conv_bias,
        feat_extract_norm={"group_norm": "group", "layer_norm": "layer"}[c.extractor_mode],
        feat_extract_activation="gelu",
        feat_proj_layer_norm=c.feature_layer_norm,
        num_conv_pos_embedding_groups=c.pos_conv_groups,
    )
    if c.encoder == "conformer":
        if c.conv_norm != "batch_norm" or c.position not in ("rel_pos", "rotary") or not c.final_layer_norm:
            raise InputError(
                "Wav2Vec2ConformerModel needs batch-norm convolution modules, relative or rotary positions "
                "and a final layer norm"
            )
        return dict(
            model_type="wav2vec2-conformer",
            architectures=["Wav2Vec2ConformerModel"],
            **common,
            **waveform,
            num_conv_pos_embeddings=128,
            position_embeddings_type=POSITION_NAMES[c.position],
            rotary_embedding_base=int(c.rotary_base),
            conv_depthwise_kernel_size=c.depthwise_kernel,
        )
    model_type, cls = MODEL_CLASSES.get(c.family, MODEL_CLASSES["hubert"])
    if c.family == "data2vec_audio":
        if c.extractor_mode != "layer_norm" or c.layer_norm_first or not c.pos_conv_layers:
            raise InputError("Data2VecAudioModel is post-norm with a layer-norm CNN and stacked positional convs")
        return dict(
            model_type=model_type,
            architectures=[cls],
            **common,
            **waveform,
            conv_pos_kernel_size=c.pos_conv_kernel,
            num_conv_pos_embeddings=c.pos_conv_layers,
        )
    if c.pos_conv_layers or c.pos_conv_kernel == 0:
        raise InputError(f"a {c.family} transformer export needs one weight-normalised positional conv")
    if (c.position == "gated_bucket") != (c.family == "wavlm") or c.position not in ("none", "gated_bucket"):
        raise InputError(f"family {c.family!r} with position {c.position!r} has no transformers model class")
    heads = _uniform_heads(model)
    common.update(num_attention_heads=heads, intermediate_size=max(c.layer_ffn_dims or [c.ffn_dim]))
    config = dict(
        model_type=model_type,
        architectures=[cls],
        **common,
        **waveform,
        num_conv_pos_embeddings=c.pos_conv_kernel,
        do_stable_layer_norm=c.layer_norm_first,
    )
    if c.family == "wavlm":
        config.update(num_buckets=c.num_buckets, max_bucket_distance=c.max_distance)
    return config


def _uniform_heads(model: SpeechEncoder) -> int:
    """HF's head count for a model whose layers may have their own (a LightHuBERT subnet): hidden / head width."""
    c = model.config
    head_dim = c.head_dim or c.hidden_size // c.num_heads
    if c.hidden_size % head_dim:
        raise InputError(f"head width {head_dim} does not divide hidden size {c.hidden_size}: no HF equivalent")
    heads = c.hidden_size // head_dim
    most = max(c.layer_heads or [c.num_heads])
    if most > heads:
        raise InputError(
            f"a layer has {most} heads of width {head_dim}, more than hidden size {c.hidden_size} holds "
            f"({heads}); transformers' models need heads x width = hidden size"
        )
    return heads


def hf_state(model: SpeechEncoder, config: Dict) -> Dict[str, torch.Tensor]:
    """``model``'s weights under transformers' names, subnets padded to uniform layers."""
    c = model.config
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if c.encoder == "transformer":
        state = _pad_layers(
            state,
            c.num_layers,
            config["num_attention_heads"] * (c.hidden_size // config["num_attention_heads"]),
            config["intermediate_size"],
        )
        inverse, forward = rules_from_pairs(TRANSFORMER_PAIRS, export=True), TRANSFORMER_RULES
    else:
        norm = DEPTHWISE_LN_PAIR if c.conv_norm == "layer_norm" else BATCH_NORM_PAIR
        inverse, forward = rules_from_pairs(CONFORMER_PAIRS + [norm], export=True), CONFORMER_RULES
    renamed, unmatched = rename_keys(state, inverse)
    if unmatched:
        raise InputError(f"no transformers name for: {', '.join(unmatched)}")
    back, _ = rename_keys(renamed, forward)
    wrong = sorted(set(back) ^ set(state))
    if wrong:  # the inverse rules must agree with the import rules
        raise AssertionError(f"export names do not import back: {wrong[:5]}")
    return renamed


def _pad_layers(state: Dict[str, torch.Tensor], num_layers: int, attention_dim: int, ffn_dim: int):
    """Zero rows/columns so every layer has ``attention_dim`` q/k/v outputs and ``ffn_dim`` FFN units."""

    def grow(t: torch.Tensor, dim: int, size: int) -> torch.Tensor:
        if t.shape[dim] == size:
            return t
        pad = list(t.shape)
        pad[dim] = size - t.shape[dim]
        return torch.cat([t, t.new_zeros(pad)], dim)

    out = dict(state)
    for i in range(num_layers):
        p = f"encoder.layers.{i}."
        for name in ("q_proj", "k_proj", "v_proj"):
            out[p + f"self_attn.{name}.weight"] = grow(state[p + f"self_attn.{name}.weight"], 0, attention_dim)
            out[p + f"self_attn.{name}.bias"] = grow(state[p + f"self_attn.{name}.bias"], 0, attention_dim)
        out[p + "self_attn.out_proj.weight"] = grow(state[p + "self_attn.out_proj.weight"], 1, attention_dim)
        out[p + "ffn.fc1.weight"] = grow(state[p + "ffn.fc1.weight"], 0, ffn_dim)
        out[p + "ffn.fc1.bias"] = grow(state[p + "ffn.fc1.bias"], 0, ffn_dim)
        out[p + "ffn.fc2.weight"] = grow(state[p + "ffn.fc2.weight"], 1, ffn_dim)
    return out


def _preprocessor(model: SpeechEncoder, config: Dict) -> Dict:
    if config["model_type"] == "wav2vec2-bert":
        return {
            "feature_extractor_type": "SeamlessM4TFeatureExtractor",
            "feature_size": model.config.num_mel_bins,
            "num_mel_bins": model.config.num_mel_bins,
            "padding_side": "right",
            "padding_value": 1.0,
            "return_attention_mask": True,
            "sampling_rate": 16000,
            "stride": model.config.stack_stride,
        }
    return {
        "feature_extractor_type": "Wav2Vec2FeatureExtractor",
        "feature_size": 1,
        "padding_side": "right",
        "padding_value": 0.0,
        "sampling_rate": 16000,
        "do_normalize": bool(model.config.normalize_waveform),
        "return_attention_mask": config.get("feat_extract_norm") == "layer",
    }


def export_huggingface(model: SpeechEncoder, out) -> Tuple[Path, List[str]]:
    """Write ``out/{config.json, model.safetensors, preprocessor_config.json}``; returns the folder and notes."""
    out = Path(out)
    config = hf_config(model)
    state = hf_state(model, config)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "model.safetensors") as tmp:
        save_file(state, str(tmp), metadata={"format": "pt"})
    write_json(out / "preprocessor_config.json", _preprocessor(model, config))
    provenance = getattr(model, "metadata", None) or {}
    config["speechssl"] = {k: provenance[k] for k in ("source", "weights") if k in provenance}
    write_json(out / "config.json", config)  # last: the folder is complete
    notes = []
    if model.config.layer_heads or model.config.layer_ffn_dims:
        notes.append(
            "per-layer heads / FFN widths padded with zero weights to "
            f"{config['num_attention_heads']} heads and {config['intermediate_size']} units"
        )
    return out, notes


__all__ = ["export_huggingface", "hf_config", "hf_state"]
