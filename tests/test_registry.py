"""The task registry is the one list of trainable tasks: the CLI's training commands and `config check`
are built from it, and every entry resolves to a schema, a run function and a dry-run description."""

import dataclasses

import pytest

from speechssl.cli import build_parser, main
from speechssl.errors import InputError
from speechssl.tasks.registry import TASKS, get_task, task_for_conf, tasks_in


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_entry_resolves(name):
    spec = TASKS[name]
    assert dataclasses.is_dataclass(spec.schema_class())
    assert callable(spec.run_function())
    assert spec.conf, f"{name}: no conf/ files named for config check"


def test_cli_training_commands_come_from_the_registry(capsys):
    parser = build_parser()
    groups = {a.dest: a for a in parser._subparsers._group_actions}["command"].choices
    for group in ("pretrain", "distill", "finetune"):
        words = set(groups[group]._subparsers._group_actions[0].choices)
        assert words == set(tasks_in(group)), group
    assert {"train-vocoder", "train-acoustic"} <= set(groups["tts"]._subparsers._group_actions[0].choices)
    assert main(["pretrain", "w2v-bert", "--config", "pretrain/w2v_bert_tiny", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert '"task": "w2v-bert"' in out and '"encoder":' in out


def test_conf_files_map_to_their_task():
    assert task_for_conf("pretrain/hubert_mini.yaml").name == "hubert"
    assert task_for_conf("pretrain/w2v_bert_xl.yaml").name == "w2v-bert"
    assert task_for_conf("superb/ks.yaml").name == "superb"
    assert task_for_conf("misc/stray.yaml") is None
    with pytest.raises(InputError, match="unknown task 'hubrt'"):
        get_task("hubrt")
