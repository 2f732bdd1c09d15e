"""The typed files between stages (utils/artifacts.py): written with their schema, read back typed, and a file of
another schema, without a field or not JSON is one error naming it; the recipe's report leaves such a file out."""

import json
import logging

import pytest

from speechssl.errors import MissingInputError, SpeechSSLError
from speechssl.report import collect_superb
from speechssl.utils.artifacts import DecodeResult, RunSummary, SuperbResult

RESULT = {"task": "ks", "upstream": "fbank", "metric": "accuracy", "value": 87.5, "higher_is_better": True}


def test_written_with_the_schema_and_read_back(tmp_path):
    f = SuperbResult.write(tmp_path / "result.json", RESULT)
    assert json.loads(f.read_text())["schema"] == SuperbResult.SCHEMA
    r = SuperbResult.read(tmp_path)  # the folder holding it
    assert r.value == 87.5 and r["task"] == "ks" and r.get("dev") is None
    RunSummary.write(tmp_path, {"steps": 3})
    assert RunSummary.read(tmp_path / "summary.json")["steps"] == 3
    DecodeResult.write(tmp_path / "results.json", {"utterances": 2, "per": {"rate": 50.0}})
    assert DecodeResult.read(tmp_path).get("wer") is None


def test_files_from_before_the_schema_read_as_schema_1(tmp_path):
    (tmp_path / "result.json").write_text(json.dumps(RESULT))
    assert SuperbResult.read(tmp_path / "result.json").value == 87.5


@pytest.mark.parametrize(
    "content, message",
    [
        (json.dumps({**RESULT, "schema": 7}), r"SUPERB result of schema 7; this speechssl reads schema 1 \(made again"),
        (json.dumps({"task": "ks", "upstream": "fbank"}), "SUPERB result without metric, value; not a file"),
        ("[1, 2]", "must be a JSON object"),
        ('{"task": "ks", ', "result.json"),
    ],
)
def test_a_wrong_file_is_one_error_naming_it(tmp_path, content, message):
    (tmp_path / "result.json").write_text(content)
    with pytest.raises(SpeechSSLError, match=message) as e:
        SuperbResult.read(tmp_path / "result.json")
    assert str(tmp_path / "result.json") in str(e.value)


def test_missing_file_and_writer_side_check(tmp_path):
    with pytest.raises(MissingInputError, match=r"summary.json: missing \(written by a training command"):
        RunSummary.read(tmp_path)
    with pytest.raises(ValueError, match="SUPERB result written without value"):
        SuperbResult.write(tmp_path, {k: v for k, v in RESULT.items() if k != "value"})


def test_report_leaves_a_result_of_another_schema_out_and_says_so(tmp_path, caplog):
    good, bad = tmp_path / "superb" / "fbank" / "ks", tmp_path / "superb" / "fbank" / "sid"
    good.mkdir(parents=True)
    bad.mkdir(parents=True)
    SuperbResult.write(good, RESULT)
    (bad / "result.json").write_text(json.dumps({**RESULT, "task": "sid", "schema": 2}))
    with caplog.at_level(logging.WARNING):
        table = collect_superb(tmp_path)
    assert list(table["fbank"]) == ["ks"]
    assert "sid/result.json: SUPERB result of schema 2" in caplog.text and "left out of the results" in caplog.text


# --- the exported model folder, the non-upstream export spec and the label set (issue 41, typed artifacts) ---


def _tiny_folder(tmp_path):
    from speechssl.models import build_model, save_model

    return save_model(build_model("hubert_small", num_layers=1), tmp_path / "m", metadata={"by": "test"})


def test_exported_folder_carries_its_schema_and_reads_typed(tmp_path):
    import yaml

    from speechssl.models import load_model
    from speechssl.models.folder import SCHEMA, FolderConfig

    folder = _tiny_folder(tmp_path)
    written = yaml.safe_load((folder / "config.yaml").read_text())
    assert written["schema"] == SCHEMA and written["model"]["num_layers"] == 1
    conf = FolderConfig.read(folder)
    assert conf.model["num_layers"] == 1 and conf.metadata == {"by": "test"} and conf.heads is None
    del written["schema"]  # a folder exported before the field existed
    (folder / "config.yaml").write_text(yaml.safe_dump(written))
    assert load_model(folder).metadata == {"by": "test"}


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda c: {**c, "schema": 9}, r"config.yaml: exported folder of schema 9; this speechssl reads schema 1"),
        (lambda c: {k: v for k, v in c.items() if k != "model"}, r"config.yaml: no 'model' section"),
        (lambda c: {**c, "metadata": [1, 2]}, r"config.yaml: 'metadata' must be a mapping, got list"),
    ],
)
def test_a_wrong_exported_folder_is_one_error_naming_its_config(tmp_path, edit, message):
    import yaml

    from speechssl.models import load_model

    folder = _tiny_folder(tmp_path)
    (folder / "config.yaml").write_text(yaml.safe_dump(edit(yaml.safe_load((folder / "config.yaml").read_text()))))
    with pytest.raises(SpeechSSLError, match=message) as e:
        load_model(folder)
    assert str(folder) in str(e.value)


def test_export_spec_of_another_schema_or_kind_is_one_error(tmp_path):
    import torch
    import yaml

    from speechssl.training.export import load_export, read_export_spec, save_export

    @__import__("dataclasses").dataclass
    class Cfg:
        dim: int = 3

    save_export(torch.nn.Linear(3, 3), tmp_path, "vocoder", {"vec2mel": {"dim": 3}, "layer": 2})
    spec = read_export_spec(tmp_path, "vocoder")
    assert spec["schema"] == 1 and spec["layer"] == 2
    model, _ = load_export(tmp_path, "vocoder", "vec2mel", Cfg, lambda c: torch.nn.Linear(c.dim, c.dim), spec=spec)
    assert not model.training
    with pytest.raises(SpeechSSLError, match=r"vocoder.yaml: no 'vec2wav' section \(not a vec2wav export\)"):
        load_export(tmp_path, "vocoder", "vec2wav", Cfg, lambda c: torch.nn.Linear(c.dim, c.dim))
    (tmp_path / "vocoder.yaml").write_text(yaml.safe_dump({**spec, "schema": 3}))
    with pytest.raises(SpeechSSLError, match=r"vocoder.yaml: vocoder export of schema 3; this speechssl reads schema"):
        read_export_spec(tmp_path, "vocoder")
    with pytest.raises(MissingInputError, match=r"no acoustic.yaml \(not an exported acoustic folder\)"):
        read_export_spec(tmp_path, "acoustic")


def test_label_set_written_and_read_back_typed(tmp_path):
    import numpy as np

    from speechssl.clustering.label_set import read_label_set, write_label_set
    from speechssl.clustering.spec import KMeansSpec

    spec = KMeansSpec(k=5, dim=2, frame_rate=50.0, source={"frame_rate": 50.0})
    write_label_set(tmp_path / "km", {"b": [4, 0, 1], "a": np.array([2, 2])}, spec)
    assert (tmp_path / "km" / "labels.txt").read_text() == "a 2 2\nb 4 0 1\n"  # sorted by utterance
    ls = read_label_set(tmp_path / "km", keep=["b"])
    assert ls.rate == 50.0 and ls.num_classes == 5 and list(ls.labels) == ["b"]
    assert ls.labels["b"].tolist() == [4, 0, 1]
    with pytest.raises(SpeechSSLError, match=r"km2: utterance a has label 5 outside 0..4"):
        write_label_set(tmp_path / "km2", {"a": [5]}, spec)
    assert not (tmp_path / "km2").exists()  # refused before anything is written
    (tmp_path / "km" / "kmeans.json").write_text(json.dumps({**spec.to_dict(), "schema": 4}))
    with pytest.raises(SpeechSSLError, match=r"km/kmeans.json: k-means spec of schema 4"):
        read_label_set(tmp_path / "km")


def test_feature_folder_spec_is_typed_and_a_rerun_with_other_settings_is_refused(tmp_path):
    from speechssl.pipelines.extract import extraction_hop
    from speechssl.pipelines.outputs import claim_output
    from speechssl.utils.artifacts import FeatureSpec

    out = tmp_path / "feats"
    claim_output(out, {"model": "m", "layers": [4], "frame_rate": 50.0, "nshard": 1}, "an extraction")
    spec = FeatureSpec.read(out)
    assert spec["schema"] == 1 and spec.layers == [4] and spec.nshard == 1 and extraction_hop(out) == 320
    claim_output(out, {"model": "m", "layers": [4], "frame_rate": 50.0, "nshard": 1}, "an extraction")  # same: kept
    with pytest.raises(SpeechSSLError, match=r"feats holds an extraction made with other settings \(layers: \[4\]"):
        claim_output(out, {"model": "m", "layers": [6], "frame_rate": 50.0, "nshard": 1}, "an extraction")
    (out / "spec.json").write_text(json.dumps({"frame_rate": 50.0}))
    with pytest.raises(SpeechSSLError, match=r"feats/spec.json: feature folder spec without nshard"):
        extraction_hop(out)
