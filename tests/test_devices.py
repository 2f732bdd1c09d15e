"""Device plumbing, tested with CPU stand-ins: every stage takes a device, `auto` means a GPU when there is
one, a GPU asked for where there is none is a clear error, faiss without GPU support says so, loader
pinning follows the trainer's device."""

import logging

import pytest
import torch

from speechssl.cli import main
from speechssl.errors import InputError
from speechssl.utils.device import resolve_device


def test_resolve_device(monkeypatch):
    assert resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(InputError, match="device 'nonsense'"):
        resolve_device("nonsense")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(InputError, match="no CUDA device here"):
        resolve_device("cuda:0")


@pytest.mark.parametrize(
    "argv",
    [
        ["extract", "--model", "M", "--data", "D", "--out", "O"],
        ["decode", "--model", "M", "--data", "D", "--out", "O"],
        ["lighthubert", "search", "--supernet", "S", "--data", "D", "--out", "O"],
        ["kmeans", "learn", "--feats", "F", "-k", "2", "--out", "O"],
        ["kmeans", "assign", "--model", "M", "--feats", "F", "--out", "O"],
        ["tts", "eval", "--data", "D", "--out", "O"],
        ["asd", "eval", "--model", "M", "--out", "O"],
    ],
)
def test_every_inference_command_takes_a_device_defaulting_to_auto(argv):
    from speechssl.cli.main import build_parser

    args = build_parser().parse_args(argv)
    assert args.device == "auto"
    assert build_parser().parse_args(argv + ["--device", "cpu"]).device == "cpu"


def test_a_missing_gpu_is_named_by_extract(tmp_path, capsys, monkeypatch):
    from speechssl.models import build_model, save_model

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    save_model(
        build_model(
            "hubert_small", num_layers=1, hidden_size=32, num_heads=2, ffn_dim=32, pos_conv_kernel=16, pos_conv_groups=4
        ),
        tmp_path / "m",
    )
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "wav.scp").write_text("u x.wav\n")
    (tmp_path / "d" / "utt2spk").write_text("u s\n")
    (tmp_path / "d" / "utt2dur").write_text("u 1.0\n")
    assert (
        main(
            [
                "extract",
                "--model",
                str(tmp_path / "m"),
                "--data",
                str(tmp_path / "d"),
                "--out",
                str(tmp_path / "o"),
                "--device",
                "cuda",
            ]
        )
        == 2
    )
    assert "device 'cuda': no CUDA device here" in capsys.readouterr().err


def test_faiss_without_gpus_says_so_and_runs_on_the_cpu(caplog):
    import faiss

    from speechssl.clustering.kmeans import faiss_on_gpu

    if faiss.get_num_gpus() > 0:
        pytest.skip("this faiss has GPUs")
    with caplog.at_level(logging.WARNING):
        assert faiss_on_gpu("cuda") is False
    assert "no GPU support" in caplog.text
    assert faiss_on_gpu("auto") is False and faiss_on_gpu("cpu") is False


def test_loader_options_follow_the_config_and_the_trainer():
    from types import SimpleNamespace

    from speechssl.tasks.audio_data import AudioDataModule
    from speechssl.tasks.common import AudioDataConfig

    dm = AudioDataModule(AudioDataConfig(num_workers=2))
    dm.trainer = SimpleNamespace(strategy=SimpleNamespace(root_device=torch.device("cpu")))
    assert dm.loader_options() == {"num_workers": 2, "pin_memory": False, "persistent_workers": True}
    dm.trainer = SimpleNamespace(strategy=SimpleNamespace(root_device=torch.device("cuda", 0)))
    assert dm.loader_options()["pin_memory"] is True  # a GPU run pins by default
    dm = AudioDataModule(AudioDataConfig(num_workers=0, pin_memory=False))
    dm.trainer = SimpleNamespace(strategy=SimpleNamespace(root_device=torch.device("cuda", 0)))
    assert dm.loader_options() == {"num_workers": 0, "pin_memory": False, "persistent_workers": False}


def test_recipe_sends_inference_jobs_to_gpus_when_it_has_them(tmp_path):
    import subprocess
    from pathlib import Path

    cmd = Path(__file__).resolve().parents[1] / "recipes" / "librispeech" / "cmd.sh"
    script = f"""cmd_backend=slurm; . {cmd}
    utils() {{ :; }}
    for devices in auto 0 4; do if uses_gpus; then echo "$devices gpu"; else echo "$devices cpu"; fi; done"""
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[:3] == ["auto cpu", "0 cpu", "4 gpu"]


def test_export_under_a_sharding_strategy_gathers_the_full_weights():
    """FSDP needs GPUs in Lightning, so the gather path is tested with a stand-in strategy: every rank joins
    the collective, and rank 0 ends up holding the full weights in the module the export reads."""
    from types import SimpleNamespace

    import lightning as L

    from speechssl.training.fit import gather_full_weights

    class Task(L.LightningModule):
        def __init__(self, width: int = 3):
            super().__init__()
            self.save_hyperparameters()
            self.model = torch.nn.Linear(width, width)

    full = Task().state_dict()
    full = {k: torch.full_like(v, 7.0) for k, v in full.items()}
    calls = []

    class FSDPStrategy:  # the name is what marks a sharding strategy
        def lightning_module_state_dict(self):
            calls.append(1)
            return full

    sharded = Task()
    sharded.model = torch.nn.Identity()  # what rank 0 holds of a sharded module: not the weights
    for rank in (1, 0):
        gather_full_weights(SimpleNamespace(strategy=FSDPStrategy(), is_global_zero=rank == 0), sharded)
    assert len(calls) == 2  # a non-zero rank joined the gather too (else FSDP deadlocks)
    assert torch.equal(sharded.model.weight, full["model.weight"])
    ddp = Task()
    before = ddp.model
    gather_full_weights(SimpleNamespace(strategy=SimpleNamespace(), is_global_zero=True), ddp)
    assert ddp.model is before  # nothing to gather under DDP or one device


def test_precision_auto_follows_the_hardware_and_says_what_it_chose(monkeypatch, caplog):
    from speechssl.utils import precision as p

    monkeypatch.delenv(p.ENV, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert p.resolve_precision("bf16-mixed") == "bf16-mixed"  # an explicit choice is kept
    monkeypatch.setattr(p, "cpu_bf16_flags", lambda: [])
    probed = []
    with caplog.at_level(logging.INFO):  # the choice is said at INFO (issue 37: not a warning)
        assert p.resolve_precision("auto", probe=lambda: probed.append(1) or 9.0) == "32-true"
    assert not probed and "without bf16 units" in caplog.text  # no bf16 units: no probe at all
    monkeypatch.setattr(p, "cpu_bf16_flags", lambda: ["amx_bf16"])
    assert p.resolve_precision("auto", probe=lambda: 9.0) == "32-true"  # cached for this process tree
    for speedup, choice in ((2.1, "bf16-mixed"), (1.1, "32-true")):
        monkeypatch.delenv(p.ENV)
        assert p.resolve_precision("auto", probe=lambda s=speedup: s) == choice
    assert p.probe_cpu_bf16_speedup(width=64, tokens=32, repeats=2) > 0
    monkeypatch.delenv(p.ENV)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i: "V100")
    assert p.resolve_precision("auto") == "16-mixed"  # GPUs without bf16: fp16 mixed
