"""Issue 41, point 2: one masking config, checked in one place, shared by the three masked objectives."""

import pytest
import torch

from speechssl.config import ConfigError, load_config
from speechssl.nn.masking import MaskingConfig, seeded_span_masks
from speechssl.objectives.distillation import DistillObjectiveConfig
from speechssl.tasks.hubert import HubertObjectiveConfig, HubertPretrainConfig
from speechssl.tasks.w2v_bert import W2vBertObjectiveConfig


@pytest.mark.parametrize("section", [HubertObjectiveConfig, W2vBertObjectiveConfig, DistillObjectiveConfig])
def test_every_masked_objective_takes_its_masking_from_one_config(section):
    assert issubclass(section, MaskingConfig)
    for bad, message in (
        (dict(mask_mode="bogus"), "objective.mask_mode='bogus'; expected one of"),
        (dict(mask_prob=1.5), r"objective.mask_prob=1.5: must be in \[0, 1\]"),
        (dict(mask_length=0), "objective.mask_length=0: must be >= 1"),
        (dict(min_masks=-1), "objective.min_masks=-1: must be >= 0"),
    ):
        with pytest.raises(ConfigError, match=message):
            section(**bad).check_masking()
    section().check_masking()  # the defaults are legal


def test_papers_defaults_and_draw_is_the_seeded_masks():
    assert (HubertObjectiveConfig().mask_prob, HubertObjectiveConfig().mask_mode) == (0.8, "fraction")
    assert (W2vBertObjectiveConfig().mask_prob, W2vBertObjectiveConfig().mask_mode) == (0.065, "start_prob")
    cfg = W2vBertObjectiveConfig()
    frames, seeds = torch.tensor([200, 150]), torch.tensor([3, 4])
    assert torch.equal(cfg.draw(frames, 200, seeds), seeded_span_masks(frames, 200, seeds, 0.065, 10, 2, "start_prob"))


def test_a_pretraining_config_refuses_a_bad_mask_naming_the_key():
    with pytest.raises(ConfigError, match="objective.mask_mode='spans'"):  # load_config validates
        load_config(HubertPretrainConfig, [], ["objective.mask_mode=spans", "data.train_labels=[x]"])
