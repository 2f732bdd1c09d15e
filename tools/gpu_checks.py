#!/usr/bin/env python
"""The GPU checks, as one prepared script: bf16 training-step throughput and peak memory of the paper
configs (HuBERT Base iteration 1, w2v-BERT XL), and our encoders against transformers' on the same batch
in the same precision (HuBERT Base vs ``HubertModel``, w2v-BERT 2.0 vs ``Wav2Vec2BertModel``).

Each row: median seconds per step over ``--steps`` after two warm-ups, audio seconds per second, and the
peak memory the step allocated (CUDA; on CPU the bytes autograd saves). The batch is the config's per-device
batch (``data.batch_seconds`` of ``--utt-seconds`` utterances), unless ``--batch-seconds`` says otherwise.

    python tools/gpu_checks.py --device cuda                 # on the GPU machine
    python tools/gpu_checks.py --device cpu --tiny           # the smoke run the test suite makes
"""

import argparse
import json
import statistics
import time

import torch

from speechssl.config import load_config


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(step, device, steps: int):
    """(median seconds, peak bytes) of ``step()``."""
    for _ in range(2):
        step()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    times = []
    for _ in range(steps):
        _sync(device)
        t = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - t)
    peak = torch.cuda.max_memory_allocated(device) - base if device.type == "cuda" else _saved_bytes(step)
    return statistics.median(times), peak


def _saved_bytes(step) -> int:
    seen, total = set(), [0]

    def pack(t):
        key = t.untyped_storage().data_ptr()
        if key not in seen:
            seen.add(key)
            total[0] += t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        step()
    return total[0]


def encoder_step(model, wavs, lengths, bf16: bool, hf: bool = False, feats=None):
    def step():
        with torch.autocast(wavs.device.type, dtype=torch.bfloat16, enabled=bf16):
            if hf:
                out = model(input_features=feats) if feats is not None else model(wavs)
                loss = out.last_hidden_state.float().pow(2).mean()
            else:
                out = model(wavs, lengths) if feats is None else model.forward_features(feats, lengths)
                loss = out.last_hidden_state.float().pow(2).mean()
        loss.backward()
        model.zero_grad(set_to_none=True)

    return step


def hubert_pretrain_step(cfg, device, wavs, lengths, bf16: bool):
    """The whole masked-prediction step of the config: encoder, heads, loss, backward."""
    from dataclasses import asdict

    from speechssl.models import build_model
    from speechssl.models.hubert import HubertPretrainModel
    from speechssl.objectives.masked_prediction import align_targets, masked_prediction_sums
    from speechssl.tasks.common import frontend_and_masks
    from speechssl.training.fit import parameter_count

    enc = build_model(cfg.model, **cfg.model_overrides)
    model = HubertPretrainModel.from_encoder(enc, [100], cfg.objective.final_dim).to(device).train()
    labels = [torch.randint(0, 100, (wavs.shape[0], wavs.shape[1] // 160), device=device)]
    batch = {"wavs": wavs, "lengths": lengths, "labels": labels, "seeds": torch.arange(wavs.shape[0], device=device)}

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            feats, frames, valid, mask = frontend_and_masks(model.encoder, batch, cfg.objective, True)
            projected, _ = model(feats, frames, time_mask=mask)
            targets = [align_targets(labels[0], feats.shape[1], 100.0, 50.0)]
            sums = masked_prediction_sums(projected, model.heads.label_embeddings, [100], targets, mask, valid, 0.1)
        (sums["loss_m"] / sums["n_m"].clamp(min=1)).backward()
        model.zero_grad(set_to_none=True)

    return step, parameter_count(model), asdict(cfg.objective)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--utt-seconds", type=float, default=12.5)
    ap.add_argument("--batch-seconds", type=float, default=None, help="default: the config's per-device batch")
    ap.add_argument("--tiny", action="store_true", help="small models and batch (the suite's smoke run)")
    ap.add_argument("--out", default=None, help="also write the rows as JSON here")
    args = ap.parse_args()
    device = torch.device(args.device)
    import transformers as T

    from speechssl.interop.huggingface import import_huggingface
    from speechssl.tasks.hubert import HubertPretrainConfig

    cfg = load_config(HubertPretrainConfig, ["pretrain/hubert_base_it1"])
    tiny = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128)
    if args.tiny:
        cfg.model_overrides = {
            "hidden_size": 64,
            "num_layers": 2,
            "num_heads": 4,
            "ffn_dim": 128,
            "conv_layers": [[32, 10, 5]] + [[32, 3, 2]] * 4 + [[32, 2, 2]] * 2,
        }
    batch_seconds = args.batch_seconds or (4.0 if args.tiny else cfg.data.batch_seconds)
    n = max(1, int(batch_seconds // args.utt_seconds)) if not args.tiny else 2
    utt = args.utt_seconds if not args.tiny else 2.0
    wavs = torch.randn(n, int(16000 * utt), device=device) * 0.1
    lengths = torch.full((n,), wavs.shape[1], device=device)
    rows = []

    def row(name, step, params=None):
        sec, peak = timed(step, device, args.steps)
        rows.append(
            {
                "what": name,
                "seconds": round(sec, 4),
                "audio_s_per_s": round(n * utt / sec, 1),
                "peak_MiB": round(peak / 2**20, 1),
                **({"params_M": round(params / 1e6, 2)} if params else {}),
            }
        )
        print(json.dumps(rows[-1]), flush=True)

    print(
        f"device {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'}); "
        f"batch {n} x {utt:g} s; bf16 autocast"
    )
    step, params, _ = hubert_pretrain_step(cfg, device, wavs, lengths, bf16=True)
    row("HuBERT Base it1 pretraining step (ours)", step, params)
    base = dict(
        layerdrop=0.0,
        mask_time_prob=0.0,
        hidden_dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        feat_proj_dropout=0.0,
    )
    if args.tiny:
        base.update(tiny, conv_dim=(32,) * 7)
    hf = T.HubertModel(T.HubertConfig(**base)).to(device).train()
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        hf.save_pretrained(tmp)
        ours = import_huggingface(tmp).to(device).train()
    row("HuBERT Base encoder fwd+bwd (ours)", encoder_step(ours, wavs, lengths, True))
    row("HuBERT Base encoder fwd+bwd (transformers)", encoder_step(hf, wavs, lengths, True, hf=True))
    bert = dict(
        base,
        **(
            {}
            if args.tiny
            else dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096)
        ),
    )
    bert.pop("conv_dim", None)
    hfb = T.Wav2Vec2BertModel(T.Wav2Vec2BertConfig(**bert)).to(device).train()
    with tempfile.TemporaryDirectory() as tmp:
        hfb.save_pretrained(tmp)
        oursb = import_huggingface(tmp).to(device).train()
    feats, frames = oursb.frontend(wavs, lengths)
    row("w2v-BERT 2.0 encoder fwd+bwd (ours)", encoder_step(oursb, wavs, frames, True, feats=feats))
    row("w2v-BERT 2.0 encoder fwd+bwd (transformers)", encoder_step(hfb, wavs, lengths, True, hf=True, feats=feats))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"device": str(device), "batch": [n, utt], "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
