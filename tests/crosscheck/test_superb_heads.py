"""SUPERB's KS / SID head beside s3prl 0.4.18's: its ``Featurizer`` (softmax weights from zeros) and the
``speech_commands`` / ``voxceleb1`` experts' model (256-d projection, ``UtteranceLevel`` mean pooling, linear,
cross entropy) against :class:`speechssl.downstream.heads.SuperbModel` with ``MeanPoolLinear``, the same weights
and hidden states: the same loss and the same gradients. The whole-run comparison (s3prl's ``run_downstream``
beside ``speechssl superb``, 3 seeds each) is ``tools/refs/superb_vs_s3prl.py``; docs/crosscheck.md has its figures."""

import importlib.util
from pathlib import Path

import torch

from .conftest import reference

BENCH = Path(__file__).resolve().parents[2] / "tools" / "refs" / "bench_superb_head_vs_s3prl.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_superb_head_vs_s3prl", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_featurizer_and_head_equal_s3prl_loss_and_gradients():
    reference("s3prl")
    from speechssl.downstream.heads import MeanPoolLinear, SuperbModel

    bench = _bench()
    torch.manual_seed(0)
    num_states, batch, dim, classes, rate = 5, 6, 48, 12, 320
    samples = torch.tensor([16000, 15000, 12800, 11000, 9600, 16000])
    wavs = [torch.zeros(int(n)) for n in samples]
    frames = int(samples.max()) // rate
    states = [torch.randn(batch, frames, dim) for _ in range(num_states)]
    lengths = torch.tensor([min(frames, round(int(n) / rate)) for n in samples])  # s3prl's cut of each utterance
    labels = torch.randint(0, classes, (batch,))
    _, expert, featurizer = bench.s3prl_step_fn(states, wavs, labels, classes)

    ours = SuperbModel(num_states, False, MeanPoolLinear(dim, classes, 256))
    assert torch.equal(ours.featurizer.weights, torch.zeros(num_states))  # s3prl's init: softmax of zeros
    ours.head.project.load_state_dict(expert.projector.state_dict())
    ours.head.out.load_state_dict(expert.model.post_net.linear.state_dict())
    loss = torch.nn.functional.cross_entropy(ours(torch.stack(states), lengths), labels)
    loss.backward()

    records = {"loss": [], "acc": [], "filename": [], "predict": [], "truth": []}
    theirs = type(expert).forward(
        expert, "train", featurizer(wavs, {"hidden_states": states}), labels.tolist(), ["u"] * batch, records
    )
    theirs.backward()
    assert abs(loss.item() - theirs.item()) <= 1e-6 * abs(theirs.item()), (loss.item(), theirs.item())
    pairs = {
        "featurizer weights": (ours.featurizer.weights.grad, featurizer.weights.grad),
        "projection": (ours.head.project.weight.grad, expert.projector.weight.grad),
        "classifier": (ours.head.out.weight.grad, expert.model.post_net.linear.weight.grad),
    }
    for name, (a, b) in pairs.items():
        assert (a - b).abs().max() <= 1e-5 * b.abs().max(), name
