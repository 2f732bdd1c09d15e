"""Issue 40, point 10: the demo's budgets are steps; its wall-clock guards sit far enough above them that a 2-core
CPU without bf16 units trains every step (a cut run no longer reproduces the README's figures)."""

import pytest

from speechssl.config import config_sources

# Seconds per update measured on an AMD EPYC, 2 cores, AVX2 only, float32, with a test run on the other core
# (recipes/librispeech/RESULTS.md, 2026-12-07): the slowest figure seen for each run.
# The demo's CTC and LightHuBERT runs were not timed on such a CPU yet (their guards: 45, 30 and 45 minutes).
MEASURED_S_PER_UPDATE = {"pretrain/hubert_demo": 1.6, "pretrain/hubert_demo_it2": 3.0, "pretrain/w2v_bert_demo": 7.7}


@pytest.mark.parametrize("name", sorted(MEASURED_S_PER_UPDATE))
def test_demo_guards_allow_one_and_a_half_times_the_slowest_measured_update(name):
    merged = {}
    for _, cfg in config_sources([name], []):
        merged.update({k: v for k, v in (cfg.get("trainer") or {}).items()})
    steps, minutes = merged["max_steps"], merged["max_time_minutes"]
    assert minutes * 60 >= 1.5 * MEASURED_S_PER_UPDATE[name] * steps, (name, steps, minutes)
