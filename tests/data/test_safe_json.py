"""The one JSON loader for user files: strings that no table or file can hold (JSON's lone-surrogate escapes) are
errors naming the file and the key path, in every format that reads JSON."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from partwise.cli import main as cli_main
from partwise.data import safe_json
from partwise.errors import InputError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.mark.parametrize("text, where, reason", [
    ('{"a": [1, {"b": "x\\ud800"}]}', "a[1].b", "not valid Unicode text (lone surrogate '\\ud800' at character 1)"),
    ('{"ok": "\\ud83d\\ude00", "k\\udc00": 1}', "'k\\udc00'", "key not valid Unicode text"),
    ('["fine", "\\uDBFF"]', "[1]", "lone surrogate '\\udbff' at character 0"),
])
def test_a_lone_surrogate_names_its_key(text, where, reason):
    with pytest.raises(InputError) as err:
        safe_json.loads(text, "f.json")
    assert err.value.problem.path == "f.json" and err.value.problem.where == where and reason in str(err.value)


def test_paired_surrogates_and_plain_text_load():
    assert safe_json.loads('{"e": "\\ud83d\\ude00", "t": "\\\\ud800 is text"}', "f.json") == {
        "e": "\U0001F600", "t": "\\ud800 is text"}
    assert safe_json.loads('"\\ud800"', "f.json", check_text=False) == "\ud800"  # a caller that checks itself


def _run(capsys, *argv):
    code = cli_main(list(argv))
    return code, capsys.readouterr().err.strip()


def test_hake_instance_image_name_and_hico_file_name(tmp_path, capsys):
    """These reached the Parquet writer as a UnicodeEncodeError traceback."""
    data = json.loads((FIXTURES / "hake" / "hico-det-training-set-instance-level.json").read_text())
    first = next(iter(data))
    data["\ud800.jpg"] = data.pop(first)
    hake = tmp_path / "hake.json"
    hake.write_text(json.dumps(data))  # ensure_ascii: the surrogate is written as the escape \ud800
    code, err = _run(capsys, "data", "ingest", "hake-instance", str(hake), "--out", str(tmp_path / "out1"),
                     "--no-progress")
    assert code == 2 and f"{hake}:'\\ud800.jpg': key not valid Unicode text" in err and "\n" not in err
    assert not (tmp_path / "out1").exists()

    hico = tmp_path / "annotations"
    hico.mkdir()
    images = [{"file_name": "\ud800", "annotations": [], "hoi_annotation": []}]
    (hico / "test_hico.json").write_text(json.dumps(images))
    code, err = _run(capsys, "data", "ingest", "hico-det", str(hico), "--out", str(tmp_path / "out2"), "--no-progress")
    assert code == 2 and f"{hico / 'test_hico.json'}:[0].file_name: not valid Unicode text" in err
    assert not (tmp_path / "out2").exists()
