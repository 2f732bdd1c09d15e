"""Export any upstream to ONNX: ``wavs [B, T]`` and ``wav_lengths [B]`` in; ``lengths [B]`` and every
hidden state ``hidden_state_<i> [B, T', D]`` out, batch and length dynamic; optional int8 dynamic
quantization of the weights (onnxruntime).

The graph is traced (torch's TorchScript-based exporter): the example batch is padded, so the
padding-aware paths are the ones recorded, and the input checks run in Python before export instead
of inside the graph. The ``export`` extra brings onnx and onnxruntime.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import warnings
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch
from torch import nn

from ..constants import SAMPLE_RATE
from ..errors import InputError, MissingInputError
from ..models.upstream import UpstreamBase, UpstreamOutput
from ..utils.atomic import atomic_path, write_text
from ..utils.readers import reading

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
    lengths = torch.tensor([SAMPLE_RATE, SAMPLE_RATE * 3 // 4])  # padded: record the padding-aware paths
    example[1, lengths[1] :] = 0
    with torch.no_grad():
        num_states = len(graph(example, lengths)) - 1
    names = output_names(num_states)
    dynamic = {
        "wavs": {0: "batch", 1: "samples"},
        "wav_lengths": {0: "batch"},
        "lengths": {0: "batch"},
        **{n: {0: "batch", 1: "frames"} for n in names[1:]},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on shape arithmetic; parity is checked instead
        torch.onnx.export(
            graph,
            (example, lengths),
            str(tmp),
            input_names=["wavs", "wav_lengths"],
            output_names=names,
            dynamic_axes=dynamic,
            opset_version=opset,
            dynamo=False,
            do_constant_folding=True,
        )
    graph.eval()  # the exporter restores the wrapper's training flag on every submodule
    summary = {
        "onnx": str(path),
        "outputs": names,
        "opset": opset,
        "bytes": path.stat().st_size,
        "downsample_rate": int(upstream.downsample_rate),
        "hidden_size": int(upstream.hidden_size),
        "first_frame_samples": _first_frame_samples(upstream),
    }
    if quantize:
        summary["int8"] = str(quantize_int8(path))
        summary["int8_bytes"] = Path(summary["int8"]).stat().st_size
    meta = getattr(upstream, "metadata", None) or {}
    summary["weights"] = meta.get("weights", meta.get("source", ""))
    write_text(path.with_suffix(".json"), json.dumps(summary, indent=1))
    if quantize:
        write_text(
            Path(summary["int8"]).with_suffix(".json"), json.dumps({**summary, "onnx": summary["int8"]}, indent=1)
        )
    return summary


def _first_frame_samples(upstream: nn.Module) -> int:
    """Input samples that give the first output frame; each ``downsample_rate`` more gives one more. Checked
    against the upstream's own ``output_lengths`` over ten seconds of lengths."""
    lengths = torch.arange(0, 10 * SAMPLE_RATE)
    frames = upstream.output_lengths(lengths)
    first = int(lengths[frames > 0][0])
    rate = int(upstream.downsample_rate)
    if not torch.equal(frames.clamp_min(0), _affine_frames(lengths, first, rate)):
        raise InputError(
            "this upstream's frame count is not affine in the input length; OnnxUpstream cannot reproduce it"
        )
    return first


def _affine_frames(lengths: torch.Tensor, first: int, rate: int) -> torch.Tensor:
    return torch.where(
        lengths >= first, torch.div(lengths - first, rate, rounding_mode="floor") + 1, torch.zeros_like(lengths)
    )


def quantize_int8(path) -> Path:
    """Dynamic int8 quantization of the MatMul weights (activations stay float): ``X.onnx -> X.int8.onnx``."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    path = Path(path)
    out = path.with_suffix(".int8.onnx")
    with atomic_path(out) as tmp, _root_logger_kept():
        quantize_dynamic(str(path), str(tmp), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"])
    return out


@contextlib.contextmanager
def _root_logger_kept():
    """onnxruntime's quantizer calls ``logging.warning`` (advice on pre-processing), which gives a process without
    logging set up a root handler for good; here its messages go to DEBUG and the root logger is left as it was."""
    root = logging.getLogger()
    level, placeholder = root.level, logging.NullHandler()
    added = not root.handlers
    if added:
        root.addHandler(placeholder)  # logging.warning() then skips basicConfig()
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)
        if added:
            root.removeHandler(placeholder)


def onnx_session(path, threads: Optional[int] = None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    with reading(path, "ONNX model"):
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_onnx(session, wavs: torch.Tensor, lengths: torch.Tensor) -> List[np.ndarray]:
    """``[lengths, hidden_state_0, ...]`` as numpy arrays."""
    return session.run(None, {"wavs": wavs.float().numpy(), "wav_lengths": lengths.long().numpy()})


class OnnxUpstream(UpstreamBase):
    """An exported graph as an upstream (SUPERB, extraction): ``X.onnx`` beside its ``X.json`` summary.
    Runs on the CPU through onnxruntime; returns float32 torch tensors."""

    def __init__(self, path, threads: Optional[int] = None):
        super().__init__()
        path = Path(path)
        info_file = path.with_suffix(".json")
        if not info_file.is_file():
            raise MissingInputError(f"{info_file}: the summary export_onnx writes beside {path.name} is missing")
        self.info = json.loads(info_file.read_text())
        self.session = onnx_session(path, threads)
        self.metadata = {"source": str(path), "weights": self.info.get("weights", "")}

    @property
    def downsample_rate(self) -> int:
        return int(self.info["downsample_rate"])

    @property
    def num_layers(self) -> int:
        return len(self.info["outputs"]) - 2

    @property
    def hidden_size(self) -> int:
        return int(self.info["hidden_size"])

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return _affine_frames(lengths, int(self.info["first_frame_samples"]), self.downsample_rate)

    def forward(
        self, wavs: torch.Tensor, lengths: Optional[torch.Tensor] = None, *, num_layers: Optional[int] = None
    ) -> UpstreamOutput:
        lengths = self.check_input(wavs, lengths)
        got = run_onnx(self.session, wavs.cpu(), lengths.cpu())
        states = [torch.from_numpy(h) for h in got[1:]]
        if num_layers is not None:
            states = states[: num_layers + 1]
        return UpstreamOutput(hidden_states=states, lengths=torch.from_numpy(got[0]), last_hidden_state=states[-1])


__all__ = ["OnnxUpstream", "export_onnx", "onnx_session", "output_names", "quantize_int8", "run_onnx"]
