"""``pretrain``, ``distill`` and ``finetune``: one sub-command per registered task of each group."""

from __future__ import annotations

from ..tasks.registry import tasks_in
from ._args import add_group, add_task_command

GROUPS = {
    "pretrain": (
        "self-supervised pretraining (exports OUT/final, the untrained copy OUT/init)",
        "pretrain/hubert_mini",
        "optim.lr=1e-3 trainer.devices=2",
    ),
    "distill": (
        "distillation from a teacher (exports OUT/final)",
        "distill/lighthubert_mini_stage1",
        "objective.stage=2 init_from=exp/lighthubert/stage1/final",
    ),
    "finetune": (
        "supervised fine-tuning of a pretrained encoder (exports OUT/final)",
        "finetune/asr_mini",
        "model.upstream=exp/hubert_it2/final",
    ),
}


def register(sub) -> None:
    for group, (help_, example_conf, example_overrides) in GROUPS.items():
        g = add_group(sub, group, help_)
        for word, spec in tasks_in(group).items():
            add_task_command(g, word, spec, example_conf, example_overrides)
