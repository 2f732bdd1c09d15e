"""Export any upstream to ONNX: ``wavs [B, T]`` and ``wav_lengths [B]`` in; ``lengths [B]`` and every
hidden state ``hidden_state_<i> [B, T', D]`` out, batch and length dynamic; optional int8 dynamic
quantization of the weights (onnxruntime).

The graph is traced (torch's TorchScript-based exporter): the example batch is padded, so the
padding-aware paths are the ones recorded, and the input checks run in Python before export instead
of inside the graph. The ``export`` extra brings onnx and onnxruntime.
"""
from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch
from torch import nn

from ..constants import SAMPLE_RATE
from ..errors import InputError
from ..utils.atomic import atomic_path

OPSET = 17


class _Graph(nn.Module):
    """The upstream without its Python-side checks: what ONNX records."""

    def __init__(self, upstream: nn.Module):
        super().__init__()
        self.upstream = upstream

    def forward(self, wavs: torch.Tensor, lengths: torch.Tensor):
        up = self.upstream
        if getattr(up, "config", None) is not None and up.config.normalize_waveform:
            from ..models.encoder import normalize_waveform
            wavs = normalize_waveform(wavs, lengths)
        if hasattr(up, "forward_features"):
            feats, frames = up.frontend(wavs, lengths)
            out = up.forward_features(feats, frames)
        else:
            out = up(wavs, lengths)
        return (out.lengths, *out.hidden_states)


def output_names(num_hidden_states: int) -> List[str]:
    return ["lengths"] + [f"hidden_state_{i}" for i in range(num_hidden_states)]


def export_onnx(upstream: nn.Module, path, quantize: bool = False, opset: int = OPSET) -> Dict:
    """Write ``path`` (and ``path`` with ``.int8.onnx`` when ``quantize``); returns a summary."""
    if importlib.util.find_spec("onnx") is None:
        raise ImportError("ONNX export needs onnx and onnxruntime: pip install 'speechssl[export]'")
    path = Path(path)
    if path.suffix != ".onnx":
        raise InputError(f"{path}: the ONNX file name must end in .onnx")
    graph = _Graph(upstream.eval()).eval()
    example = torch.randn(2, SAMPLE_RATE) * 0.1
    lengths = torch.tensor([SAMPLE_RATE, SAMPLE_RATE * 3 // 4])   # padded: record the padding-aware paths
    example[1, lengths[1]:] = 0
    with torch.no_grad():
        num_states = len(graph(example, lengths)) - 1
    names = output_names(num_states)
    dynamic = {"wavs": {0: "batch", 1: "samples"}, "wav_lengths": {0: "batch"}, "lengths": {0: "batch"},
               **{n: {0: "batch", 1: "frames"} for n in names[1:]}}
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on shape arithmetic; parity is checked instead
        torch.onnx.export(graph, (example, lengths), str(tmp), input_names=["wavs", "wav_lengths"],
                          output_names=names, dynamic_axes=dynamic, opset_version=opset, dynamo=False,
                          do_constant_folding=True)
    graph.eval()  # the exporter restores the wrapper's training flag on every submodule
    summary = {"onnx": str(path), "outputs": names, "opset": opset, "bytes": path.stat().st_size}
    if quantize:
        summary["int8"] = str(quantize_int8(path))
        summary["int8_bytes"] = Path(summary["int8"]).stat().st_size
    meta = getattr(upstream, "metadata", None) or {}
    summary["weights"] = meta.get("weights", meta.get("source", ""))
    path.with_suffix(".json").write_text(json.dumps(summary, indent=1))
    return summary


def quantize_int8(path) -> Path:
    """Dynamic int8 quantization of the MatMul weights (activations stay float): ``X.onnx -> X.int8.onnx``."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    path = Path(path)
    out = path.with_suffix(".int8.onnx")
    with atomic_path(out) as tmp:
        quantize_dynamic(str(path), str(tmp), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"])
    return out


def onnx_session(path, threads: Optional[int] = None):
    import onnxruntime as ort
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_onnx(session, wavs: torch.Tensor, lengths: torch.Tensor) -> List[np.ndarray]:
    """``[lengths, hidden_state_0, ...]`` as numpy arrays."""
    return session.run(None, {"wavs": wavs.float().numpy(), "wav_lengths": lengths.long().numpy()})


__all__ = ["export_onnx", "onnx_session", "output_names", "quantize_int8", "run_onnx"]
