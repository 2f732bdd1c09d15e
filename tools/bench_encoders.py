#!/usr/bin/env python
"""Our encoders against the transformers implementation of the same config, in one process.

For HuBERT-base (Transformer) and a wav2vec2-conformer (relative positions): the same weights
(imported from the transformers model), the same padded batch, forward (inference mode) and
forward + backward, timed alternately over repeats; the median ratio is printed. Memory: on CUDA the
peak allocated; on CPU the bytes autograd saves for backward (the activation memory a training step
holds), counted with saved-tensor hooks.

    python tools/bench_encoders.py [--batch 4] [--seconds 4] [--repeats 5] [--device cpu] [--precision bf16]
"""

import argparse
import statistics
import tempfile
import time

import torch


def hf_models():
    import transformers as T

    base = dict(
        hidden_size=768,
        num_hidden_layers=12,
        num_attention_heads=12,
        intermediate_size=3072,
        layerdrop=0.0,
        mask_time_prob=0.0,
        hidden_dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        feat_proj_dropout=0.0,
    )
    yield "HuBERT-base", T.HubertModel(T.HubertConfig(**base))
    yield (
        "Conformer (rel_pos, 12 x 768)",
        T.Wav2Vec2ConformerModel(
            T.Wav2Vec2ConformerConfig(
                **base, position_embeddings_type="relative", hidden_act="swish", conv_depthwise_kernel_size=31
            )
        ),
    )


def saved_bytes(fn):
    """Bytes of tensors autograd saves during ``fn()`` (storage counted once)."""
    seen, total = set(), [0]

    def pack(t):
        key = (t.untyped_storage().data_ptr(), t.device)
        if key not in seen:
            seen.add(key)
            total[0] += t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return out, total[0]


def run(name, hf, args):
    from speechssl.interop import import_huggingface
    from speechssl.utils.timing import cpu_name

    device = torch.device(args.device)
    with tempfile.TemporaryDirectory() as d:
        hf.save_pretrained(d)
        ours = import_huggingface(d)
    ours.frontend.masked_group_norm = False  # the same arithmetic as the reference
    hf, ours = hf.to(device), ours.to(device)
    n = int(args.seconds * 16000)
    lengths = torch.tensor([n - i * n // (2 * args.batch) for i in range(args.batch)])
    wavs = torch.randn(args.batch, n) * (torch.arange(n)[None] < lengths[:, None])
    wavs, lengths = wavs.to(device), lengths.to(device)
    mask = (torch.arange(n, device=device)[None] < lengths[:, None]).long()

    bf16 = args.precision == "bf16"

    def fwd_hf():  # equal precision: both under the same autocast (bf16) or none (fp32)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            return hf(wavs, attention_mask=mask).last_hidden_state

    def fwd_ours():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            return ours(wavs, lengths).last_hidden_state

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    results = {}
    for mode in ("forward", "forward+backward"):
        times = {"transformers": [], "speechssl": []}
        mem = {}
        for model in (hf, ours):
            model.train(mode != "forward")
            for m in model.modules():  # train mode for autograd, but no dropout / layerdrop randomness
                if isinstance(m, torch.nn.Dropout):
                    m.p = 0.0
        for r in range(args.repeats + 1):
            for label, model, fn in (("transformers", hf, fwd_hf), ("speechssl", ours, fwd_ours)):
                model.zero_grad(set_to_none=True)
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats()
                sync()
                t0 = time.perf_counter()
                if mode == "forward":
                    with torch.inference_mode():
                        fn()
                    nbytes = None
                else:
                    out, nbytes = saved_bytes(fn)
                    out.float().pow(2).mean().backward()
                sync()
                if r > 0:  # first round warms up
                    times[label].append(time.perf_counter() - t0)
                if device.type == "cuda":
                    mem[label] = torch.cuda.max_memory_allocated()
                elif nbytes is not None:
                    mem[label] = nbytes
        t_hf, t_ours = statistics.median(times["transformers"]), statistics.median(times["speechssl"])
        audio = float(lengths.sum()) / 16000
        results[mode] = (audio / t_hf, audio / t_ours, t_hf / t_ours, mem.get("transformers"), mem.get("speechssl"))
    print(
        f"\n{name}: batch {args.batch} x {args.seconds:.0f} s (padded), {args.device} ({cpu_name()}), "
        f"{args.precision}, "
        f"{torch.get_num_threads()} threads"
    )
    print(
        "| mode | transformers (s audio/s) | speechssl (s audio/s) | speed ratio | memory transformers | "
        "memory speechssl |"
    )
    print("|---|---|---|---|---|---|")
    for mode, (a, b, ratio, m_hf, m_ours) in results.items():

        def fmt(x):
            return f"{x / 2**20:.0f} MiB" if x else "-"

        print(f"| {mode} | {a:.1f} | {b:.1f} | {ratio:.2f}x | {fmt(m_hf)} | {fmt(m_ours)} |")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"], help="bf16: autocast for both models")
    p.add_argument("--only", default=None, help="substring of the model name to run")
    args = p.parse_args()
    torch.manual_seed(0)
    for name, hf in hf_models():
        if args.only and args.only.lower() not in name.lower():
            continue
        run(name, hf, args)


if __name__ == "__main__":
    main()
