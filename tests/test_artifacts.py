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
