"""One config loader for every command: '# base:' files applied as `config check` applies them, the origin of
each value in --print-config, and the paper's global batch kept on any device count."""

import json

import pytest

from speechssl.cli import main
from speechssl.config import expand_bases, load_config, value_origins
from speechssl.errors import ConfigError
from speechssl.tasks.registry import TASKS
from speechssl.training.fit import accumulation_for

# (task, the file alone, the same config spelled out with its bases, placeholders a run supplies)
LAYERED = [
    (
        "hubert",
        ["pretrain/hubert_base_it2"],
        ["pretrain/hubert_base_it1", "pretrain/hubert_base_it2"],
        ["data.train_labels=[l]"],
    ),
    ("w2v-bert", ["pretrain/w2v_bert_xxl"], ["pretrain/w2v_bert_xl", "pretrain/w2v_bert_xxl"], []),
    (
        "lighthubert",
        ["distill/lighthubert_small_stage2"],
        ["distill/lighthubert_base_stage1", "distill/lighthubert_small_stage1", "distill/lighthubert_small_stage2"],
        ["teacher=t"],
    ),
    (
        "asr",
        ["finetune/asr_librispeech_100h"],
        ["finetune/asr_librispeech_10h", "finetune/asr_librispeech_100h"],
        ["model.upstream=u"],
    ),
]


@pytest.mark.parametrize("task,alone,spelled,placeholders", LAYERED, ids=[c[0] for c in LAYERED])
def test_a_layered_file_alone_is_the_config_it_is_layered_on(task, alone, spelled, placeholders):
    schema = TASKS[task].schema_class()
    assert load_config(schema, alone, placeholders) == load_config(schema, spelled, placeholders)
    # and listing a base again (as the recipe does) reads it once, in its place
    assert load_config(schema, [spelled[0], *alone], placeholders) == load_config(schema, spelled, placeholders)


def test_the_issues_examples_now_build_the_paper_models(capsys):
    assert main(["pretrain", "hubert", "--config", "pretrain/hubert_base_it2", "--dry-run"]) == 0
    batch = json.loads(capsys.readouterr().out)["batch"]
    assert (batch["devices"], batch["num_nodes"], batch["global_seconds"]) == (8, 4, 2800.0)
    assert main(["distill", "lighthubert", "--config", "distill/lighthubert_small_stage1", "--dry-run"]) == 0
    assert (
        main(
            ["finetune", "asr", "--config", "finetune/asr_librispeech_100h", "--dry-run", "model.upstream=hubert_base"]
        )
        == 0
    )


def test_print_config_names_where_each_value_came_from(capsys):
    assert main(["pretrain", "hubert", "--config", "pretrain/hubert_demo", "--print-config", "optim.lr=2e-3"]) == 0
    out = capsys.readouterr().out
    assert "lr: 0.002  # command line" in out
    assert "max_steps: 450  # conf/pretrain/hubert_demo.yaml" in out  # the file asked for
    assert "batch_seconds: 16.0  # conf/pretrain/hubert_mini.yaml" in out  # its base
    origins = value_origins(["pretrain/hubert_demo"])
    assert origins["optim.warmup_steps"] == "conf/pretrain/hubert_demo.yaml" and "optim.betas" not in origins


def test_a_base_loop_is_an_error_naming_the_chain(tmp_path):
    (tmp_path / "a.yaml").write_text("# base: b\noptim: {lr: 1.0}\n")
    (tmp_path / "b.yaml").write_text("# base: a\n")
    with pytest.raises(ConfigError, match=r"'# base:' loop: .*a.yaml -> .*b.yaml -> .*a.yaml"):
        expand_bases([str(tmp_path / "a.yaml")])


def test_global_batch_is_kept_on_any_device_count(capsys):
    assert accumulation_for(2800, 87.5, 32) == 1 and accumulation_for(2800, 87.5, 1) == 32
    with pytest.raises(ConfigError, match=r"data.batch_seconds=84.8485 \(accumulate 11\)"):
        accumulation_for(2800, 87.5, 3)
    assert (
        main(
            [
                "pretrain",
                "hubert",
                "--config",
                "pretrain/hubert_base_it2",
                "--dry-run",
                "trainer.devices=1",
                "trainer.num_nodes=1",
            ]
        )
        == 0
    )
    batch = json.loads(capsys.readouterr().out)["batch"]
    assert (batch["accumulate"], batch["global_seconds"]) == (32, 2800.0)
    assert (
        main(
            [
                "pretrain",
                "hubert",
                "--config",
                "pretrain/hubert_base_it2",
                "--dry-run",
                "trainer.devices=3",
                "trainer.num_nodes=1",
            ]
        )
        == 2
    )  # refused, with the setting that keeps the batch
    assert "data.batch_seconds=84.8485" in capsys.readouterr().err


def test_a_run_trains_with_the_derived_accumulation(tiny_data, mfcc_labels, tmp_path, caplog):
    """One device, a 'paper' batch of 3 micro-batches: Lightning accumulates 3 and the log says so."""
    out = tmp_path / "run"
    with caplog.at_level("INFO"):
        assert (
            main(
                [
                    "pretrain",
                    "hubert",
                    "--config",
                    "pretrain/hubert_tiny",
                    f"data.train={tiny_data / 'dev'}",
                    f"data.train_labels=[{mfcc_labels / 'dev'}]",
                    "data.valid=null",
                    "data.batch_seconds=4",
                    "optim.global_batch_seconds=12",
                    "trainer.max_steps=2",
                    "trainer.val_every_steps=null",
                    f"trainer.out_dir={out}",
                    "trainer.devices=1",
                ]
            )
            == 0
        )
    assert "global batch 12 s per update = 1 device(s) x 4 s x accumulate 3" in caplog.text
    assert json.loads((out / "summary.json").read_text())["steps"] == 2


def test_help_shows_a_default_of_zero(capsys):
    with pytest.raises(SystemExit):
        main(["data", "split-readers", "--help"])
    assert "(default: train)" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["features", "--help"])
    out = capsys.readouterr().out
    assert "(default: 0)" in out  # --rank 0 was hidden before (0 == False)


def test_superb_reads_its_trainer_section_and_the_keys_it_moved_there(tmp_path, caplog):
    """SuperbConfig nests the trainer (issue 41): a task config sets trainer.max_steps, and the old top-level
    spelling of a moved key is read as the new one with a warning naming the file; both at once are refused."""
    from speechssl.tasks.superb.runner import SuperbConfig

    new = load_config(SuperbConfig, ["superb/ks"], ["trainer.seed=3"])
    assert (new.trainer.max_steps, new.trainer.val_every_steps, new.trainer.seed) == (600, 100, 3)
    old = tmp_path / "old.yaml"
    old.write_text("max_steps: 7\nval_every_steps: 7\nprogress: false\n")
    with caplog.at_level("WARNING", logger="speechssl.config"):
        cfg = load_config(SuperbConfig, ["superb/ks", str(old)], ["threads=1"])
    assert (cfg.trainer.max_steps, cfg.trainer.val_every_steps, cfg.trainer.progress_bar, cfg.trainer.threads) == (
        7,
        7,
        False,
        1,
    )
    assert "'max_steps' is now 'trainer.max_steps'" in caplog.text and str(old) in caplog.text
    assert not hasattr(cfg, "max_steps")
    with pytest.raises(ConfigError, match="'seed' and 'trainer.seed' are the same setting"):
        load_config(SuperbConfig, ["superb/ks"], ["seed=1", "trainer.seed=2"])
    origins = value_origins(["superb/ks", str(old)], [], SuperbConfig)
    assert origins["trainer.max_steps"] == str(old) and "max_steps" not in origins
