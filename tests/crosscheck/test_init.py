"""A fresh HuBERT Base / wav2vec 2.0 Base against fairseq's at construction: every parameter's mean and standard
deviation (fairseq's scheme: Kaiming-normal CNN, BERT's N(0, 0.02) Transformer linears, zero biases, the
positional convolution's own normal, uniform mask and label embeddings)."""

import pytest
import torch

from .conftest import reference


def fairseq_base(kind):
    reference("fairseq")
    if kind == "hubert":
        from fairseq.models.hubert.hubert import HubertConfig, HubertModel
        from fairseq.tasks.hubert_pretraining import HubertPretrainingConfig

        cfg = HubertConfig(label_rate=50.0)
        return HubertModel(cfg, HubertPretrainingConfig(data="unused", labels=["km"]), [list(range(500))])
    from fairseq.models.wav2vec.wav2vec2 import Wav2Vec2Config, Wav2Vec2Model

    return Wav2Vec2Model(Wav2Vec2Config())


@pytest.mark.parametrize("kind", ["hubert", "wav2vec2"])
def test_every_parameter_starts_with_fairseqs_statistics(kind):
    from speechssl.models import build_model

    from .test_hubert_objective import fairseq_names

    torch.manual_seed(0)
    theirs = fairseq_base(kind)
    torch.manual_seed(1)
    ours = dict(build_model(f"{kind}_base").named_parameters())
    state = {k: v for k, v in theirs.state_dict().items()}
    names = {k: v[len("encoder.") :] for k, v in fairseq_names(state).items() if v.startswith("encoder.")}
    compared, report = 0, []
    for fs_name, p in theirs.named_parameters():
        if fs_name not in names:
            continue  # heads: checked in the objective tests
        q = ours[names[fs_name]].detach().float()
        p = p.detach().float()
        assert q.shape == p.shape, fs_name
        compared += 1
        if p.numel() < 1000 or p.std() == 0:  # norms, biases and the like: equal constants or tiny samples
            if p.std() == 0:
                assert torch.equal(q, p), fs_name
            continue
        report.append((fs_name, float(q.std()), float(p.std())))
        assert abs(float(q.std()) / float(p.std()) - 1) < 0.10, (fs_name, float(q.std()), float(p.std()))
        assert abs(float(q.mean()) - float(p.mean())) < 0.1 * float(p.std()) + 1e-3, fs_name
    assert compared == len(names), (compared, len(names))
