"""Import Hugging Face ``HubertModel``, ``Wav2Vec2Model``, ``Wav2Vec2ConformerModel``, ``WavLMModel``,
``Data2VecAudioModel`` and ``Wav2Vec2BertModel`` folders (config.json + safetensors or bin, sharded or not)."""

import json
import logging
from pathlib import Path
from typing import Dict

import torch

from ..errors import InputError, MissingInputError, NotFoundError
from ..models.encoder import EncoderConfig, SpeechEncoder
from ..models.registry import load_state_strict
from ..utils.readers import load_checkpoint, load_safetensors
from .keymap import rename_keys, rules_from_pairs, split_keys

log = logging.getLogger(__name__)

MODEL_TYPES = {
    "hubert": "hubert",
    "wav2vec2": "wav2vec2",
    "wav2vec2-conformer": "wav2vec2",
    "wav2vec2-bert": "w2v_bert",
    "wavlm": "wavlm",
    "data2vec-audio": "data2vec_audio",
}
BASE_PREFIXES = ("hubert.", "wav2vec2.", "wav2vec2_conformer.", "wav2vec2_bert.", "wavlm.", "data2vec_audio.")
# task heads around the base model: kept out of the encoder, dropped only when asked
HEAD_PATTERNS = (
    r"lm_head\..*",
    r"quantizer\..*",
    r"project_q\..*",
    r"project_hid\..*",
    r"projector\..*",
    r"classifier\..*",
    r"layer_weights",
    r"adapter\..*",
    r"intermediate_ffn\..*",
    r"final_proj\..*",
    r"label_embeddings_concat",
)
POSITION_TYPES = {None: "none", "relative": "rel_pos", "rotary": "rotary", "relative_key": "relative_key"}

# Our key -> transformers' key, once for both directions (keymap.rules_from_pairs): import reads them right to
# left, hf_export left to right. "final_layer_norm" is the FFN norm of a Transformer layer but the last norm of a
# Conformer block.
COMMON_PAIRS = [
    # waveform CNN and projection
    (
        "frontend.conv_layers.{i}.(conv|layer_norm).(weight|bias)",
        "feature_extractor.conv_layers.{i}.(conv|layer_norm).(weight|bias)",
    ),
    (
        "feature_projection.(layer_norm|projection).(weight|bias)",
        "feature_projection.(layer_norm|projection).(weight|bias)",
    ),
    ("mask_embedding", "masked_spec_embed"),
    # Transformer encoder
    (
        "encoder.pos_conv.conv.(parametrizations.weight.original0|parametrizations.weight.original1|bias)",
        "encoder.pos_conv_embed.conv.(parametrizations.weight.original0|parametrizations.weight.original1|bias)",
    ),
    ("encoder.layer_norm.(weight|bias)", "encoder.layer_norm.(weight|bias)"),
]
TRANSFORMER_PAIRS = COMMON_PAIRS + [
    (
        "encoder.layers.{i}.self_attn.(q|k|v|out)_proj.(weight|bias)",
        "encoder.layers.{i}.attention.(q|k|v|out)_proj.(weight|bias)",
    ),
    ("encoder.layers.{i}.self_attn_norm.(weight|bias)", "encoder.layers.{i}.layer_norm.(weight|bias)"),
    ("encoder.layers.{i}.ffn.fc1.(weight|bias)", "encoder.layers.{i}.feed_forward.intermediate_dense.(weight|bias)"),
    ("encoder.layers.{i}.ffn.fc2.(weight|bias)", "encoder.layers.{i}.feed_forward.output_dense.(weight|bias)"),
    ("encoder.layers.{i}.ffn_norm.(weight|bias)", "encoder.layers.{i}.final_layer_norm.(weight|bias)"),
    # WavLM: the gate of each layer, the bucketed bias that layer 0 computes for all
    ("encoder.layers.{i}.self_attn.gate_const", "encoder.layers.{i}.attention.gru_rel_pos_const"),
    (
        "encoder.layers.{i}.self_attn.gate_proj.(weight|bias)",
        "encoder.layers.{i}.attention.gru_rel_pos_linear.(weight|bias)",
    ),
    ("encoder.relative_bias.embedding.weight", "encoder.layers.0.attention.rel_attn_embed.weight"),
    # data2vec-audio: a stack of plain positional convs
    ("encoder.pos_conv.layers.{i}.conv.(weight|bias)", "encoder.pos_conv_embed.layers.{i}.conv.(weight|bias)"),
]
CONFORMER_PAIRS = COMMON_PAIRS + [
    ("encoder.layers.{i}.(ffn1|ffn2)_norm.(weight|bias)", "encoder.layers.{i}.(ffn1|ffn2)_layer_norm.(weight|bias)"),
    (
        "encoder.layers.{i}.(ffn1|ffn2).fc1.(weight|bias)",
        "encoder.layers.{i}.(ffn1|ffn2).intermediate_dense.(weight|bias)",
    ),
    ("encoder.layers.{i}.(ffn1|ffn2).fc2.(weight|bias)", "encoder.layers.{i}.(ffn1|ffn2).output_dense.(weight|bias)"),
    ("encoder.layers.{i}.self_attn_norm.(weight|bias)", "encoder.layers.{i}.self_attn_layer_norm.(weight|bias)"),
    (
        "encoder.layers.{i}.self_attn.(q|k|v|out)_proj.(weight|bias)",
        "encoder.layers.{i}.self_attn.linear_(q|k|v|out).(weight|bias)",
    ),
    ("encoder.layers.{i}.self_attn.pos_proj.weight", "encoder.layers.{i}.self_attn.linear_pos.weight"),
    (
        "encoder.layers.{i}.self_attn.(pos_bias_u|pos_bias_v|distance_embedding.weight)",
        "encoder.layers.{i}.self_attn.(pos_bias_u|pos_bias_v|distance_embedding.weight)",
    ),
    (
        "encoder.layers.{i}.conv_module.(layer_norm|pointwise_conv1|depthwise_conv|pointwise_conv2).(weight|bias)",
        "encoder.layers.{i}.conv_module.(layer_norm|pointwise_conv1|depthwise_conv|pointwise_conv2).(weight|bias)",
    ),
    ("encoder.layers.{i}.final_norm.(weight|bias)", "encoder.layers.{i}.final_layer_norm.(weight|bias)"),
]
# the Conformer's depthwise norm: BatchNorm in Wav2Vec2ConformerModel, LayerNorm in Wav2Vec2BertModel
BATCH_NORM_PAIR = (
    "encoder.layers.{i}.conv_module.depthwise_norm.(weight|bias|running_mean|running_var|num_batches_tracked)",
    "encoder.layers.{i}.conv_module.batch_norm.(weight|bias|running_mean|running_var|num_batches_tracked)",
)
DEPTHWISE_LN_PAIR = (
    "encoder.layers.{i}.conv_module.depthwise_norm.(weight|bias)",
    "encoder.layers.{i}.conv_module.depthwise_layer_norm.(weight|bias)",
)
# import only: the old weight-norm names
WEIGHT_NORM_ALIASES = rules_from_pairs(
    [
        ("encoder.pos_conv.conv.parametrizations.weight.original0", "encoder.pos_conv_embed.conv.weight_g"),
        ("encoder.pos_conv.conv.parametrizations.weight.original1", "encoder.pos_conv_embed.conv.weight_v"),
    ]
)
TRANSFORMER_RULES = rules_from_pairs(TRANSFORMER_PAIRS) + WEIGHT_NORM_ALIASES
CONFORMER_RULES = rules_from_pairs(CONFORMER_PAIRS + [BATCH_NORM_PAIR, DEPTHWISE_LN_PAIR]) + WEIGHT_NORM_ALIASES


def config_from_hf(cfg: Dict) -> EncoderConfig:
    """Translate a transformers ``config.json`` into an :class:`EncoderConfig` (or say what is unsupported)."""
    model_type = cfg.get("model_type")
    if MODEL_TYPES.get(model_type) is None:
        raise InputError(
            f"unsupported Hugging Face model_type {model_type!r}; "
            f"supported: {', '.join(k for k, v in MODEL_TYPES.items() if v)}"
        )
    unsupported = [
        name
        for name, bad in (
            ("add_adapter", cfg.get("add_adapter", False)),
            ("adapter_attn_dim", cfg.get("adapter_attn_dim") is not None),
            ("conv_pos_batch_norm", cfg.get("conv_pos_batch_norm", False)),
            ("use_intermediate_ffn_before_adapter", cfg.get("use_intermediate_ffn_before_adapter", False)),
            ("feat_extract_activation != gelu", cfg.get("feat_extract_activation", "gelu") != "gelu"),
        )
        if bad
    ]
    if unsupported:
        raise InputError(f"config uses features speechssl does not implement: {', '.join(unsupported)}")
    common = dict(
        family=MODEL_TYPES[model_type],
        hidden_size=cfg["hidden_size"],
        num_layers=cfg["num_hidden_layers"],
        num_heads=cfg["num_attention_heads"],
        ffn_dim=cfg["intermediate_size"],
        activation=cfg["hidden_act"],
        layer_norm_eps=cfg.get("layer_norm_eps", 1e-5),
        dropout=cfg.get("hidden_dropout", 0.1),
        attention_dropout=cfg.get("attention_dropout", 0.1),
        activation_dropout=cfg.get("activation_dropout", 0.0),
        feature_dropout=cfg.get("feat_proj_dropout", 0.0),
        layerdrop=cfg.get("layerdrop", 0.0),
        mask_embedding=cfg.get("mask_time_prob", 0.05) > 0 or cfg.get("mask_feature_prob", 0.0) > 0,
    )
    if model_type == "wav2vec2-bert":
        in_dim = cfg.get("feature_projection_input_dim", 160)
        if in_dim % 80:
            raise InputError(f"feature_projection_input_dim {in_dim} is not a stack of 80-bin fbank frames")
        return EncoderConfig(
            frontend="fbank_stack",
            num_mel_bins=80,
            stack_stride=in_dim // 80,
            encoder="conformer",
            pos_conv_kernel=0,
            position=POSITION_TYPES[cfg.get("position_embeddings_type")],
            left_max_position=cfg.get("left_max_position_embeddings", 64),
            right_max_position=cfg.get("right_max_position_embeddings", 8),
            rotary_base=cfg.get("rotary_embedding_base", 10000),
            depthwise_kernel=cfg["conv_depthwise_kernel_size"],
            conv_norm="layer_norm",
            causal_conv=True,
            final_layer_norm=False,
            **common,
        ).validate()
    waveform = dict(
        conv_layers=[list(x) for x in zip(cfg["conv_dim"], cfg["conv_kernel"], cfg["conv_stride"])],
        extractor_mode={"group": "group_norm", "layer": "layer_norm"}[cfg.get("feat_extract_norm", "group")],
        conv_bias=cfg.get("conv_bias", False),
        feature_layer_norm=cfg.get("feat_proj_layer_norm", True),
    )
    if model_type == "wav2vec2-conformer":
        return EncoderConfig(
            encoder="conformer",
            pos_conv_kernel=0,
            position=POSITION_TYPES[cfg.get("position_embeddings_type")],
            rotary_base=cfg.get("rotary_embedding_base", 10000),
            depthwise_kernel=cfg["conv_depthwise_kernel_size"],
            conv_norm="batch_norm",
            final_layer_norm=True,
            **waveform,
            **common,
        ).validate()
    if model_type == "data2vec-audio":  # layer-norm CNN always; a stack of num_conv_pos_embeddings convs
        waveform["extractor_mode"] = "layer_norm"
        return EncoderConfig(
            encoder="transformer",
            pos_conv_kernel=cfg["conv_pos_kernel_size"],
            pos_conv_groups=cfg["num_conv_pos_embedding_groups"],
            pos_conv_layers=cfg["num_conv_pos_embeddings"],
            **waveform,
            **common,
        ).validate()
    wavlm = (
        dict(position="gated_bucket", num_buckets=cfg["num_buckets"], max_distance=cfg["max_bucket_distance"])
        if model_type == "wavlm"
        else {}
    )
    return EncoderConfig(
        encoder="transformer",
        layer_norm_first=cfg.get("do_stable_layer_norm", False),
        pos_conv_kernel=cfg["num_conv_pos_embeddings"],
        pos_conv_groups=cfg["num_conv_pos_embedding_groups"],
        **wavlm,
        **waveform,
        **common,
    ).validate()


def load_hf_state(folder: Path) -> Dict[str, torch.Tensor]:
    """Weights of a transformers folder: model.safetensors, pytorch_model.bin, or their sharded index."""
    for index_name, single in (
        ("model.safetensors.index.json", "model.safetensors"),
        ("pytorch_model.bin.index.json", "pytorch_model.bin"),
    ):
        if (folder / single).is_file():
            files = [folder / single]
        elif (folder / index_name).is_file():
            files = [
                folder / f for f in sorted(set(json.loads((folder / index_name).read_text())["weight_map"].values()))
            ]
        else:
            continue
        state = {}
        for f in files:
            state.update(load_safetensors(f) if f.suffix == ".safetensors" else load_checkpoint(f))
        return state
    raise MissingInputError(f"{folder}: no model.safetensors or pytorch_model.bin (or sharded index) found")


def import_huggingface(folder, drop_heads: bool = False) -> SpeechEncoder:
    """Build a :class:`SpeechEncoder` from a transformers folder, every weight accounted for.

    Keys of task heads (CTC ``lm_head``, the wav2vec 2.0 quantizer, classifiers, adapters) fail the
    import unless ``drop_heads``; dropped and ignored keys are listed in ``model.metadata``.
    """
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise MissingInputError(f"{folder}: no config.json (not a transformers model folder)")
    hf_cfg = json.loads((folder / "config.json").read_text())
    config = config_from_hf(hf_cfg)
    pre = folder / "preprocessor_config.json"  # the feature extractor's input normalisation belongs to the model
    if pre.is_file():
        config.normalize_waveform = bool(json.loads(pre.read_text()).get("do_normalize", False))
    state = load_hf_state(folder)
    state = {_strip_prefix(k): v for k, v in state.items()}
    state, heads = split_keys(state, HEAD_PATTERNS)
    if heads and not drop_heads:
        raise NotFoundError(
            f"{folder}: checkpoint has task-head weights outside the encoder: {', '.join(sorted(heads))}; "
            f"pass drop_heads=True (CLI: --drop-heads) to import the encoder without them"
        )
    state, ignored = _take_reference_only(state, config)
    rules = TRANSFORMER_RULES if config.encoder == "transformer" else CONFORMER_RULES
    renamed, unmatched = rename_keys(state, rules)
    if unmatched:
        raise NotFoundError(f"{folder}: unknown checkpoint keys ({len(unmatched)}): {', '.join(unmatched)}")
    model = SpeechEncoder(config)
    load_state_strict(model, renamed, str(folder))
    model.metadata = {
        "source": str(folder),
        "format": "huggingface",
        "model_type": hf_cfg.get("model_type"),
        "dropped_heads": sorted(heads),
        "ignored": ignored,
    }
    for line in ignored:
        log.warning("%s: %s", folder, line)
    return model.eval()


def _strip_prefix(key: str) -> str:
    for prefix in BASE_PREFIXES:
        if key.startswith(prefix):
            return key[len(prefix) :]
    return key


def _take_reference_only(state: Dict[str, torch.Tensor], config: EncoderConfig):
    """Remove weights the reference keeps but never uses or can recompute, saying which and why."""
    notes = []
    if config.encoder == "conformer":
        state, unused = split_keys(state, [r"encoder\.pos_conv_embed\..*"])
        if unused:
            notes.append(
                f"ignored {len(unused)} encoder.pos_conv_embed.* weights: Wav2Vec2ConformerEncoder "
                f"builds this module but its forward never calls it"
            )
    state, derived = split_keys(state, [r"encoder\.embed_positions\.inv_freq"])
    for key, value in derived.items():
        head_dim = config.hidden_size // config.num_heads
        expected = 1.0 / (config.rotary_base ** (torch.arange(0, head_dim, 2).float() / head_dim))
        if value.shape != expected.shape or not torch.allclose(value.float(), expected, rtol=1e-5):
            raise InputError(f"{key}: rotary frequencies differ from base {config.rotary_base}; cannot import")
        notes.append(f"{key}: recomputed (matches base {config.rotary_base})")
    return state, notes
