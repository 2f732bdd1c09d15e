"""Import fairseq HuBERT / wav2vec 2.0 ``.pt`` checkpoints (pretrained or fine-tuned).

Key names follow fairseq's ``HubertModel`` / ``Wav2Vec2Model`` (``ConvFeatureExtractionModel``,
``TransformerEncoder``); the architecture comes from the ``cfg["model"]`` (or legacy ``args``)
fields fairseq stores in every checkpoint.
"""

import argparse
import ast
import logging
import pickle
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import torch

from ..errors import InputError, MissingInputError, NotFoundError
from ..models.encoder import EncoderConfig, SpeechEncoder
from ..models.registry import Heads, load_state_strict
from ..utils.readers import UnreadableFileError
from ..utils.readers import load_checkpoint as _read_checkpoint
from .keymap import L, rename_keys, split_keys

log = logging.getLogger(__name__)

FINETUNED_PREFIX = "w2v_encoder.w2v_model."
# heads outside the encoder: the wav2vec 2.0 quantizer and projections, a fine-tuned CTC projection
HEAD_PATTERNS = (r"quantizer\..*", r"project_q\..*", r"w2v_encoder\.proj\..*", r"target_glu\..*")

RULES = [
    (r"feature_extractor\.conv_layers\.(\d+)\.0\.(weight|bias)", r"frontend.conv_layers.\1.conv.\2"),
    # GroupNorm sits at index 2 of a conv block; LayerNorm is wrapped as (TransposeLast, LayerNorm, TransposeLast)
    (r"feature_extractor\.conv_layers\.(\d+)\.2(?:\.1)?\.(weight|bias)", r"frontend.conv_layers.\1.layer_norm.\2"),
    (r"layer_norm\.(weight|bias)", r"feature_projection.layer_norm.\1"),
    (r"post_extract_proj\.(weight|bias)", r"feature_projection.projection.\1"),
    (r"mask_emb", r"mask_embedding"),
    (r"encoder\.pos_conv\.0\.weight_g", r"encoder.pos_conv.conv.parametrizations.weight.original0"),
    (r"encoder\.pos_conv\.0\.weight_v", r"encoder.pos_conv.conv.parametrizations.weight.original1"),
    (r"encoder\.pos_conv\.0\.bias", r"encoder.pos_conv.conv.bias"),
    (r"encoder\.layer_norm\.(weight|bias)", r"encoder.layer_norm.\1"),
    (L + r"self_attn\.(q|k|v|out)_proj\.(weight|bias)", r"encoder.layers.\1.self_attn.\2_proj.\3"),
    (L + r"self_attn_layer_norm\.(weight|bias)", r"encoder.layers.\1.self_attn_norm.\2"),
    (L + r"fc(1|2)\.(weight|bias)", r"encoder.layers.\1.ffn.fc\2.\3"),
    (L + r"final_layer_norm\.(weight|bias)", r"encoder.layers.\1.ffn_norm.\2"),
]


DEFAULT_CONV = "[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2"


def parse_conv_spec(spec):
    """fairseq's ``conv_feature_layers`` string (lists of tuples joined by ``+`` and ``*``), without eval."""
    if not isinstance(spec, str):
        return spec

    def value(node):
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple)):
            items = [value(e) for e in node.elts]
            return items if isinstance(node, ast.List) else tuple(items)
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mult)):
            left, right = value(node.left), value(node.right)
            return left + right if isinstance(node.op, ast.Add) else left * right
        raise InputError(f"unsupported conv_feature_layers expression: {spec!r}")

    return value(ast.parse(spec, mode="eval").body)


def model_cfg(ckpt: Dict[str, Any]) -> Dict[str, Any]:
    cfg = ckpt.get("cfg")
    if cfg is not None:
        cfg = dict(cfg)
        model = dict(cfg.get("model") or {})
        if "w2v_args" in model and model["w2v_args"]:  # fine-tuned: the pretrained model's cfg is nested
            model = dict(dict(model["w2v_args"]).get("model") or model)
        return model
    args = ckpt.get("args")
    if args is not None:
        return vars(args) if isinstance(args, argparse.Namespace) else dict(args)
    raise NotFoundError("checkpoint has neither 'cfg' nor 'args': not a fairseq checkpoint")


def config_from_fairseq(m: Dict[str, Any], state: Dict[str, torch.Tensor]) -> EncoderConfig:
    name = m.get("_name") or m.get("arch", "")
    family = "hubert" if "hubert" in str(name) else "wav2vec2"
    if m.get("layer_type", "transformer") != "transformer":
        raise InputError(
            f"fairseq layer_type={m.get('layer_type')!r} is not supported yet (only 'transformer'); "
            f"import the transformers Wav2Vec2ConformerModel conversion instead"
        )
    if m.get("pos_conv_depth", 1) != 1 or m.get("conv_pos_batch_norm", False):
        raise InputError("fairseq pos_conv_depth > 1 / conv_pos_batch_norm (data2vec 2) is not supported")
    conv_layers = [list(x) for x in parse_conv_spec(m.get("conv_feature_layers", DEFAULT_CONV))]
    return EncoderConfig(
        family=family,
        conv_layers=conv_layers,
        extractor_mode="layer_norm" if m.get("extractor_mode", "default") == "layer_norm" else "group_norm",
        conv_bias=bool(m.get("conv_bias", False)),
        hidden_size=m.get("encoder_embed_dim", 768),
        num_layers=m.get("encoder_layers", 12),
        num_heads=m.get("encoder_attention_heads", 12),
        ffn_dim=m.get("encoder_ffn_embed_dim", 3072),
        activation=m.get("activation_fn", "gelu"),
        layer_norm_first=bool(m.get("layer_norm_first", False)),
        pos_conv_kernel=m.get("conv_pos", 128),
        pos_conv_groups=m.get("conv_pos_groups", 16),
        dropout=m.get("dropout", 0.1),
        attention_dropout=m.get("attention_dropout", 0.1),
        activation_dropout=m.get("activation_dropout", 0.0),
        feature_dropout=m.get("dropout_input", 0.0),
        layerdrop=m.get("encoder_layerdrop", 0.0),
        mask_embedding="mask_emb" in state,
    ).validate()


def hubert_heads(state: Dict[str, torch.Tensor]) -> Tuple[Dict[str, torch.Tensor], Optional[Heads]]:
    """HuBERT's pretraining heads (``final_proj``, ``label_embs_concat``) taken out of a fairseq state dict, as
    ``(rest of the state, (spec, heads state))`` for :class:`~speechssl.models.hubert.HubertPretrainModel`."""
    if "label_embs_concat" not in state:
        return state, None
    state = dict(state)
    emb = state.pop("label_embs_concat")
    proj = {k[len("final_proj.") :]: state.pop(k) for k in list(state) if k.startswith("final_proj.")}
    if proj["weight"].shape[0] != emb.shape[1]:
        raise InputError("HuBERT checkpoint with several target sets (untied final_proj) is not supported")
    spec = {"kind": "hubert", "num_classes": [emb.shape[0]], "final_dim": emb.shape[1]}
    return state, (
        spec,
        {"final_proj.weight": proj["weight"], "final_proj.bias": proj["bias"], "label_embeddings": emb},
    )


def load_checkpoint(path: Path, trust: bool = False) -> Dict[str, Any]:
    """``torch.load`` restricted to tensors and plain containers (plus argparse.Namespace), unless ``trust``."""
    if trust:
        return _read_checkpoint(path, weights_only=False)
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return _read_checkpoint(path, weights_only=True)
    except UnreadableFileError as e:
        if not isinstance(e.__cause__, pickle.UnpicklingError):
            raise  # truncated, not a checkpoint at all
        # pickle with arbitrary objects: refuse unless the user vouches for the file
        raise InputError(
            f"{path}: checkpoint holds objects beyond tensors and plain containers "
            f"({str(e.__cause__).splitlines()[0]}); if you trust this file, pass trust=True "
            f"(CLI: --trust-pickle)"
        ) from None


def read_fairseq_checkpoint(path, trust: bool = False) -> Dict[str, Any]:
    """A fairseq ``.pt`` with a ``model`` state dict (clear errors for a missing file or section)."""
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"{path}: no such checkpoint")
    ckpt = load_checkpoint(path, trust)
    if "model" not in ckpt:
        raise NotFoundError(f"{path}: no 'model' state dict in checkpoint")
    return ckpt


def import_fairseq(path, drop_heads: bool = False, trust: bool = False) -> SpeechEncoder:
    """A :class:`SpeechEncoder` from a fairseq checkpoint; every key is mapped, dropped on request, or an error."""
    return encoder_from_fairseq(read_fairseq_checkpoint(path, trust), Path(path), drop_heads)


def encoder_from_fairseq(ckpt: Dict[str, Any], path: Path, drop_heads: bool = False) -> SpeechEncoder:
    """:func:`import_fairseq` on a checkpoint already read (``path`` names it in errors and metadata)."""
    state = dict(ckpt["model"])
    if any(k.startswith(FINETUNED_PREFIX) for k in state):
        state = {k[len(FINETUNED_PREFIX) :] if k.startswith(FINETUNED_PREFIX) else k: v for k, v in state.items()}
    config = config_from_fairseq(model_cfg(ckpt), state)
    state, pretraining_heads = hubert_heads(state)
    state, heads = split_keys(state, HEAD_PATTERNS)
    if config.family == "wav2vec2":  # wav2vec 2.0's final_proj belongs to its contrastive head
        state, more = split_keys(state, [r"final_proj\..*"])
        heads.update(more)
    if heads and not drop_heads:
        raise NotFoundError(
            f"{path}: checkpoint has head weights outside the encoder: {', '.join(sorted(heads))}; "
            f"pass drop_heads=True (CLI: --drop-heads) to import the encoder without them"
        )
    renamed, unmatched = rename_keys(state, RULES)
    if unmatched:
        raise NotFoundError(f"{path}: unknown checkpoint keys ({len(unmatched)}): {', '.join(unmatched)}")
    model = SpeechEncoder(config)
    load_state_strict(model, renamed, str(path))
    model.metadata = {"source": str(path), "format": "fairseq", "dropped_heads": sorted(heads), "ignored": []}
    if pretraining_heads:
        model.pretraining_heads = pretraining_heads
    return model.eval()
