"""Bugs the long fuzz runs found (seeds 1 and 2, issue 13), each reduced to one mutation of the synthetic data and
checked with the fuzz promise (:func:`fuzzer.run_case`: exit 2, one line naming the file, no traceback, nothing
half-written). They live in files other sessions own: xfail(strict=True) with the place and the fix, so that the
fix turns them into failures here until the marker goes."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fuzz import fuzzer


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    return fuzzer.make_dataset(tmp_path_factory.mktemp("found"), 0)


def _json_edit(fn):
    def edit(path: Path) -> None:
        value = json.loads(path.read_bytes())
        fn(value)
        path.write_text(json.dumps(value))  # ensure_ascii: a lone surrogate becomes the escape \ud800
    return edit


def _bytes_edit(fn):
    return lambda path: path.write_bytes(fn(path.read_bytes()))


def _csv_field(line: int, index: int, value: str):
    def edit(path: Path) -> None:
        lines = path.read_text().split("\n")
        fields = lines[line].split(",")
        fields[index] = value
        lines[line] = ",".join(fields)
        path.write_text("\n".join(lines))
    return edit


def _first_tps_frame(synth: Path) -> str:
    folder = synth / fuzzer.FORMAT_DIRS["kinetics-tps"]
    return str(next(p for p in fuzzer._files(folder) if p.name.startswith("img_")).relative_to(folder))


def _first_part(value: dict) -> dict:
    return next(iter(value["humans"][0]["parts"].values()))


def _set_first(key: str, new):
    def fn(value) -> None:
        path = fuzzer._first_path(value, lambda k, v: k == key)
        fuzzer._set(value, path, new)
    return fn


#: name -> (format, file (None: the first Kinetics-TPS frame file), edit, command, place and fix); open ones are
#: xfail(strict=True) until fixed, then move to FIXED
FOUND: dict = {}


#: found and fixed since (the place and the fix as it was asked for, kept for the record): they must pass
FIXED = {
    "label map not UTF-8": (
        "ava", "ava_action_list_v2.2_for_activitynet_2019.pbtxt", _bytes_edit(lambda b: b[:40] + b"\xff" + b[40:]),
        "validate", "partwise/vocab/labelmap.py read_label_map: open(..., encoding='utf-8') raised "
                    "UnicodeDecodeError; now InputError(path, None, 'not UTF-8 text (byte N)')"),
    "Kinetics-TPS verb a lone surrogate": (
        "kinetics-tps", None, _json_edit(lambda v: _first_part(v).__setitem__("verb", "\ud800")), "ingest",
        "partwise/data/kinetics_tps/columns.py _columns_to_arrays: pyarrow raised UnicodeEncodeError; now the slow "
        "path's checks.frame_problems names file and key of a string with no UTF-8 form"),
    "Kinetics-TPS key not UTF-8": (
        "kinetics-tps", None, _bytes_edit(lambda b: b.replace(b'"humans"', b'"hum\xedans"', 1)), "ingest",
        "partwise/data/kinetics_tps/arrow_json.py _arrow_arrays: a field name that is not UTF-8 raised "
        "UnicodeDecodeError from pyarrow's Field.name; now the chunk's bytes are decode-checked first"),
    "HAKE-instance image name without a time, converted to AVA": (
        "hake-instance", "hake-instance-level.json",
        _json_edit(lambda v: v.__setitem__("zzz.jpg", v.pop(next(iter(v))))),
        "convert", "partwise/data/ava/records.py records_to_csv_table (the AVA writer's check): 'cannot write ava "
                   "from hake-instance records: record 0 has no time_s ...' named neither the input file nor the "
                   "image; now it names the record's source (file and key)"),
    "Kinetics-TPS list file a link loop": (
        "kinetics-tps", "list/body_part.txt", lambda path: path.unlink() or path.symlink_to(path.name), "validate",
        "partwise/data/kinetics_tps/problems.py: `if os.path.exists(file)` skipped a list file that is a dangling "
        "link or a link loop (validate said valid); now partwise.io.present_file(file), which refuses them"),
    "Kinetics-TPS list file a dangling link": (
        "kinetics-tps", "list/body_part.txt", lambda path: path.unlink() or path.symlink_to("gone.txt"), "validate",
        "as the link loop"),
    "AVA person id of 20 digits": (
        "ava", "ava_train_v2.2.csv", _csv_field(0, 7, "-12345678901234567890"), "ingest",
        "partwise/data/ava/checks.py _parse_numbers: pyarrow ArrowInvalid on a person id beyond int64; now "
        "'person_id is beyond 64 bits' naming the line, as the other fields do"),
    "HICO-DET category_id a list": (
        "hico-det", "annotations/trainval_hico.json",
        _json_edit(lambda v: v[0]["annotations"][1].__setitem__("category_id", [])), "validate",
        "partwise/data/hico_det/hoi_json.py:47 _json_image_problems: `box.get('category_id') not in coco` "
        "raises TypeError for a list/dict; check isinstance(category_id, int) first"),
}


@pytest.mark.parametrize("name", [pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=entry[4]))
                                  for name, entry in FOUND.items()] + list(FIXED))
def test_found(tmp_path, synth, name):
    fmt, rel, edit, command, _ = {**FOUND, **FIXED}[name]
    if rel is None:
        rel = _first_tps_frame(synth)

    def prepare(case_dir: Path) -> None:
        edit(fuzzer._copy_format(case_dir, synth, fmt) / rel)

    def argv(case_dir: Path) -> list[str]:
        root = case_dir / "in" / fuzzer.FORMAT_DIRS[fmt]
        root = root / "annotations" if fmt == "hico-det" else root
        if command == "validate":
            return ["data", "validate", fmt, str(root)]
        if command == "convert":
            return ["data", "convert", fmt, str(root), "ava", str(case_dir / "out" / "result")]
        return ["data", "ingest", fmt, str(root), "--out", str(case_dir / "out" / "result"), "--no-progress"]

    case = fuzzer.Case(name, argv=argv, prepare=prepare, named=[Path(rel).name], must_fail=True,
                       out="out/result" if command != "validate" else None)
    work = tmp_path / "cases"
    work.mkdir()
    result = fuzzer.run_all([case], work, tmp_path)[0]
    assert not result.failures, fuzzer.describe(result)
