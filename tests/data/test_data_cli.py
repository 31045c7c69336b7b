"""``partwise data ...``: ingest/query/stats/validate/convert/frames and their error contract (one line, exit 2).

The fake formats ``toy``/``toy-failing``/``gen`` come from ``tests/data/test_store.py``; ``jsonl`` below is a second
fake format for ``convert``, ``no-boxes`` one whose writer cannot represent the records.
"""
from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import pytest

from partwise.cli import main
from partwise.data import formats
from partwise.data.records import RecordBuilder
from partwise.errors import InputError
from partwise.io import atomic_write
from tests.data.test_store import TRAIN, VAL, leftovers, register_fake_formats, snapshot

REPO = Path(__file__).resolve().parents[2]


def jsonl_read_records(path, *, split=None, progress=False):
    builder = RecordBuilder()
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(path, number, f"invalid JSON: {exc.msg}") from None
            x1, y1, x2, y2 = row["box"]
            builder.append(dataset="jsonl", split=split, video_id=row["video"], time_s=row["t"], x1=x1, y1=y1,
                           x2=x2, y2=y2, person_id=row["id"], actions=row["actions"], action_vocab="ava80",
                           pasta=row["pasta"], pasta_vocab="pasta_ava87")
    return builder.to_table()


def jsonl_write_records(table, path):
    with atomic_write(path) as fh:
        for r in table.to_pylist():
            fh.write(json.dumps({"video": r["video_id"], "t": r["time_s"], "box": [r["x1"], r["y1"], r["x2"], r["y2"]],
                                 "id": r["person_id"], "actions": r["actions"], "pasta": r["pasta"]}) + "\n")


def no_boxes_write_records(table, path):
    raise ValueError("this format stores pixel boxes and the records have no frame size")


@pytest.fixture
def toy(monkeypatch, tmp_path):
    register_fake_formats(monkeypatch)
    for name, functions in {
        "jsonl": dict(read_records=jsonl_read_records, validate=lambda path: [], write_records=jsonl_write_records),
        "no-boxes": dict(read_records=jsonl_read_records, validate=lambda path: [],
                         write_records=no_boxes_write_records),
    }.items():
        module = types.ModuleType(f"fake_{name.replace('-', '_')}_format")
        for key, value in functions.items():
            setattr(module, key, value)
        monkeypatch.setitem(sys.modules, module.__name__, module)
        monkeypatch.setitem(formats.FORMATS, name, module.__name__)
    (tmp_path / "train.csv").write_text(TRAIN)
    (tmp_path / "val.csv").write_text(VAL)
    return tmp_path


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("partwise: error: ")
    for fragment in fragments:
        assert fragment in lines[0]
    assert "Traceback" not in err


# ---------------------------------------------------------------------------------------------------- ingest/query

def test_ingest_summary_and_query_json(toy, capsys):
    out = toy / "store"
    code, stdout, _ = run_cli(capsys, "data", "ingest", "toy", toy / "train.csv", "--out", out, "--no-progress")
    assert code == 0
    assert stdout.splitlines() == [f"ingested 4 persons (toy; splits train) from {toy / 'train.csv'} into {out} "
                                   f"(store: 1 sources, 4 persons)"]
    code, stdout, _ = run_cli(capsys, "data", "ingest", "toy", toy / "val.csv", "--out", out, "--no-progress")
    assert code == 0 and "(store: 2 sources, 5 persons)" in stdout

    code, stdout, err = run_cli(capsys, "data", "query", out, """
        SELECT video_id, time_s, actions, pasta, score, 'nan'::DOUBLE AS not_a_number, part_boxes,
               {'a': 1, 'b': [x1, 'inf'::DOUBLE]} AS nested
        FROM persons ORDER BY source""", "--json")
    assert code == 0 and err == ""
    rows = [json.loads(line) for line in stdout.splitlines()]
    assert len(rows) == 5
    assert rows[0] == {"video_id": "vidA", "time_s": 902.0, "actions": [12, 80], "pasta": ["hand: hold", "head: inspect"],
                       "score": None, "not_a_number": None, "part_boxes": [], "nested": {"a": 1, "b": [0.1, None]}}
    assert [r["actions"] for r in rows] == [[12, 80], [12], [80], [], [12]]
    assert "NaN" not in stdout and "Infinity" not in stdout


def test_query_json_hake_example_and_empty_result(toy, capsys):
    out = toy / "store"
    run_cli(capsys, "data", "ingest", "toy", toy / "train.csv", "--out", out, "--no-progress")
    code, stdout, _ = run_cli(capsys, "data", "query", out, "SELECT DISTINCT video_id, time_s FROM pasta_labels "
                              "WHERE pasta = 'head: inspect' ORDER BY ALL", "--json")
    assert code == 0
    assert [json.loads(line) for line in stdout.splitlines()] == [
        {"video_id": "vidA", "time_s": 902.0}, {"video_id": "vidA", "time_s": 903.0},
        {"video_id": "vidB", "time_s": 902.0}]
    code, stdout, _ = run_cli(capsys, "data", "query", out, "SELECT * FROM persons WHERE false", "--json")
    assert code == 0 and stdout == ""


def test_query_json_other_types(toy, capsys):
    out = toy / "store"
    run_cli(capsys, "data", "ingest", "toy", toy / "val.csv", "--out", out, "--no-progress")
    code, stdout, _ = run_cli(capsys, "data", "query", out, """
        SELECT TIMESTAMP '2020-01-02 03:04:05' AS ts, DATE '2020-01-02' AS day, 'caf\u00e9' AS text,
               '\\x01\\xFF'::BLOB AS raw, 1.25::DECIMAL(5, 2) AS dec, CAST(NULL AS INTEGER[]) AS none,
               [1.5, 'nan'::DOUBLE, '-inf'::DOUBLE] AS floats, MAP {'k': 2} AS mapping
        FROM persons""", "--json")
    assert code == 0
    assert stdout.isascii() and len(stdout.splitlines()) == 1
    assert json.loads(stdout) == {"ts": "2020-01-02T03:04:05", "day": "2020-01-02", "text": "caf\u00e9",
                                  "raw": "Af8=", "dec": 1.25, "none": None, "floats": [1.5, None, None],
                                  "mapping": [["k", 2]]}


def test_query_readable_table(toy, capsys):
    out = toy / "store"
    run_cli(capsys, "data", "ingest", "toy", toy / "train.csv", "--out", out, "--no-progress")
    code, stdout, _ = run_cli(capsys, "data", "query", out,
                              "SELECT video_id, count(*) AS n, list(person_id ORDER BY person_id) AS ids "
                              "FROM persons GROUP BY video_id ORDER BY video_id")
    assert code == 0
    lines = stdout.splitlines()
    assert lines[0].split() == ["video_id", "n", "ids"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert lines[2].split() == ["vidA", "3", "[0,", "0,", "1]"]
    assert lines[3].split() == ["vidB", "1", "[0]"]
    assert lines[4] == "(2 rows)"


def test_query_errors(toy, capsys):
    out = toy / "store"
    run_cli(capsys, "data", "ingest", "toy", toy / "train.csv", "--out", out, "--no-progress")
    code, stdout, err = run_cli(capsys, "data", "query", out, "SELECT no_such_column FROM persons", "--json")
    assert_one_line_error(code, err, "query: ", "no_such_column")
    assert stdout == ""
    code, _, err = run_cli(capsys, "data", "query", out, "SELECT 1 AS a, 2 AS a", "--json")
    assert_one_line_error(code, err, "repeated column name(s) a")
    code, _, err = run_cli(capsys, "data", "query", toy / "nowhere", "SELECT 1")
    assert_one_line_error(code, err, str(toy / "nowhere"), "no such store directory")


def test_stats_readable_and_json(toy, capsys):
    out = toy / "store"
    run_cli(capsys, "data", "ingest", "toy", toy / "train.csv", "--out", out, "--no-progress")
    run_cli(capsys, "data", "ingest", "toy", toy / "val.csv", "--out", out, "--no-progress")
    code, stdout, _ = run_cli(capsys, "data", "stats", out)
    assert code == 0
    lines = [line.split() for line in stdout.splitlines()]
    assert ["toy", "train", "4", "3", "2"] in lines and ["toy", "val", "1", "1", "1"] in lines
    assert ["toy", "pasta_ava87", "hand", "hold", "3"] in lines
    assert ["toy", "ava80", "12", "stand", "3"] in lines
    assert ["action", "toy", "ava80", "2", "5", "2", "2", "80", "78"] in lines
    code, stdout, _ = run_cli(capsys, "data", "stats", out, "--json")
    tables = json.loads(stdout)
    assert set(tables) == {"splits", "pasta", "actions", "long_tail", "tail_summary"}
    assert tables["splits"][0] == {"dataset": "toy", "split": "train", "persons": 4, "keyframes": 3, "videos": 2}


# ---------------------------------------------------------------------------------------------- validate/convert

def test_validate_exit_codes(toy, capsys):
    code, stdout, _ = run_cli(capsys, "data", "validate", "toy", toy / "train.csv")
    assert code == 0 and stdout.strip() == f"OK: {toy / 'train.csv'} is valid toy"
    bad = toy / "bad.csv"
    bad.write_text(TRAIN + "vidX,oops\nvidY,903,a,0,1,1,0,,\n" + VAL)
    code, stdout, err = run_cli(capsys, "data", "validate", "toy", bad)
    assert code == 2
    assert stdout.splitlines() == [f"{bad}:line 5: expected 9 comma-separated fields, got 2",
                                   f"{bad}:line 6: not a number: could not convert string to float: 'a'"]
    assert err.strip() == f"partwise: 2 problems in {bad}"
    code, _, err = run_cli(capsys, "data", "validate", "toy", toy / "missing.csv")
    assert_one_line_error(code, err, "missing.csv: no such file or directory")


def test_convert_between_two_formats(toy, capsys):
    jsonl = toy / "out" / "train.jsonl"
    code, stdout, _ = run_cli(capsys, "data", "convert", "toy", toy / "train.csv", "jsonl", jsonl)
    assert code == 0 and stdout.startswith("converted 4 persons from toy")
    first = json.loads(jsonl.read_text().splitlines()[0])
    assert first == {"video": "vidA", "t": 902.0, "box": [0.1, 0.1, 0.5, 0.9], "id": 0, "actions": [12, 80],
                     "pasta": ["hand: hold", "head: inspect"]}
    back = toy / "back.csv"
    code, _, _ = run_cli(capsys, "data", "convert", "jsonl", jsonl, "toy", back)
    assert code == 0
    assert back.read_text() == TRAIN

    code, _, err = run_cli(capsys, "data", "convert", "jsonl", jsonl, "no-boxes", toy / "x")
    assert_one_line_error(code, err, "cannot write no-boxes from jsonl records: this format stores pixel boxes")
    assert not (toy / "x").exists()


# --------------------------------------------------------------------------------------------------------- frames

def test_frames_calls_extract_frames(toy, capsys, monkeypatch):
    calls = []

    def extract_frames(video_path, out_dir, **kwargs):
        calls.append((video_path, out_dir, kwargs))
        return 42

    fake = types.ModuleType("partwise.data.video")
    fake.extract_frames = extract_frames
    monkeypatch.setitem(sys.modules, "partwise.data.video", fake)
    video = toy / "clip.mp4"
    video.write_bytes(b"not decoded by the fake")
    code, stdout, _ = run_cli(capsys, "data", "frames", video, toy / "frames", "--fps", "30", "--start", "1.5",
                              "--end", "4", "--no-progress")
    assert code == 0 and stdout.strip() == f"wrote 42 frames to {toy / 'frames'}"
    assert calls == [(str(video), str(toy / "frames"), dict(fps=30.0, start=1.5, end=4.0, name_template="img_{:05d}.jpg",
                                                            start_index=1, progress=False))]
    code, _, err = run_cli(capsys, "data", "frames", video, toy / "f", "--start", "4", "--end", "2")
    assert_one_line_error(code, err, "--end (2.0) must be after --start (4.0)")
    code, _, err = run_cli(capsys, "data", "frames", toy / "none.mp4", toy / "f")
    assert_one_line_error(code, err, "none.mp4: no such video file")
    assert len(calls) == 1


# --------------------------------------------------------------------------------------------------------- errors

def test_bad_input_is_one_line_and_writes_nothing(toy, capsys):
    out = toy / "new_store"
    (toy / "bad.csv").write_text(TRAIN + "vidX,oops\n")
    code, stdout, err = run_cli(capsys, "data", "ingest", "toy", toy / "bad.csv", "--out", out, "--no-progress")
    assert_one_line_error(code, err, f"{toy / 'bad.csv'}:line 5: expected 9 comma-separated fields")
    assert stdout == "" and not out.exists()

    code, _, err = run_cli(capsys, "data", "ingest", "nope", toy / "train.csv", "--out", out)
    assert_one_line_error(code, err, "unknown format 'nope'")
    code, _, err = run_cli(capsys, "data", "ingest", "toy", toy / "missing.csv", "--out", out)
    assert_one_line_error(code, err, "missing.csv: no such file or directory")
    assert not out.exists()

    run_cli(capsys, "data", "ingest", "toy", toy / "val.csv", "--out", out, "--no-progress")
    before = snapshot(out)
    code, _, err = run_cli(capsys, "data", "ingest", "toy-failing", toy / "train.csv", "--out", out, "--no-progress")
    assert_one_line_error(code, err, "train.csv:line 3: simulated failure")
    assert snapshot(out) == before and leftovers(toy) == []


def _subprocess(*argv, cwd):
    return subprocess.run([sys.executable, "-m", "partwise", *map(str, argv)], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


def test_subprocess_errors_exit_2_without_traceback(tmp_path):
    out = tmp_path / "store"
    (tmp_path / "a.csv").write_text("x\n")
    done = _subprocess("data", "ingest", "no-such-format", tmp_path / "a.csv", "--out", out, cwd=tmp_path)
    assert_one_line_error(done.returncode, done.stderr, "unknown format 'no-such-format'; known: ava,")
    assert done.stdout == "" and not out.exists()
    done = _subprocess("data", "query", out, "SELECT 1", "--json", cwd=tmp_path)
    assert_one_line_error(done.returncode, done.stderr, f"{out}: no such store directory")
    assert done.stdout == ""


# ----------------------------------------------------------------------------------------- real formats, end to end

HAKE_AVA_TRAIN = """\
AAAAAAAAAA1,902,0.077,0.151,0.283,0.811,12,1,-1,-1,0,0,-1,1
AAAAAAAAAA1,902,0.077,0.151,0.283,0.811,80,1,-1,-1,-1,-1,-1,-1
AAAAAAAAAA1,902,0.500,0.100,0.900,0.900,12,2,-1,-1,-1,0,-1,-1
AAAAAAAAAA1,903,0.077,0.151,0.283,0.811,12,1,-1,-1,-1,0_1,-1,1
BBBBBBBBBB2,910,0.200,0.200,0.600,0.800,14,3,-1,-1,-1,-1,-1,1
"""


def test_end_to_end_hake_ava_in_a_subprocess(tmp_path, capsys):
    """The HAKE example on the real ``hake-ava`` reader: local PaSta indices (hand 0 = hold, head 1 = inspect, hip 0 =
    sit on in ``pasta_ava87``); rows of one (video, sec, box) are one person with the union of labels."""
    pytest.importorskip("partwise.data.hake_ava")
    annotations = tmp_path / "hake_ava_annotations"
    annotations.mkdir()
    (annotations / "video_pasta_train.csv").write_text(HAKE_AVA_TRAIN)
    out = tmp_path / "store"
    done = _subprocess("data", "ingest", "hake-ava", annotations, "--out", out, "--no-progress", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ingested 4 persons (hake-ava; splits train)")

    done = _subprocess("data", "query", out, "SELECT video_id, time_s, person_id, actions FROM persons "
                       "WHERE list_contains(pasta, 'hand: hold') AND list_contains(pasta, 'head: inspect') "
                       "ORDER BY time_s", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert [json.loads(line) for line in done.stdout.splitlines()] == [
        {"video_id": "AAAAAAAAAA1", "time_s": 902.0, "person_id": 1, "actions": [12, 80]},
        {"video_id": "AAAAAAAAAA1", "time_s": 903.0, "person_id": 1, "actions": [12]}]

    code, stdout, _ = run_cli(capsys, "data", "stats", out, "--json")
    tables = json.loads(stdout)
    assert tables["splits"] == [{"dataset": "hake-ava", "split": "train", "persons": 4, "keyframes": 3, "videos": 2}]
    pasta = {(r["part"], r["state"]): r["persons"] for r in tables["pasta"]}
    assert pasta[("hand", "hold")] == 3 and pasta[("head", "inspect")] == 3 and pasta[("hip", "sit on")] == 1
    actions = {r["action"]: (r["action_name"], r["persons"]) for r in tables["actions"]}
    assert actions == {12: ("stand", 3), 80: ("watch (a person)", 1), 14: ("walk", 1)}

    bad = annotations / "video_pasta_val.csv"
    bad.write_text("AAAAAAAAAA1,902,0.1,0.1,0.2,0.2,12,1\n")
    before = snapshot(out)
    code, _, err = run_cli(capsys, "data", "ingest", "hake-ava", bad, "--out", out, "--no-progress")
    assert_one_line_error(code, err, str(bad))
    assert snapshot(out) == before


def test_end_to_end_ava_fixture(tmp_path, fixtures_dir, capsys):
    """The real ``ava`` reader on the AVA GT fixture, checked against counts made here with the csv module: one person
    per (video, second, box), keyframes per (video, second), persons per action."""
    pytest.importorskip("partwise.data.ava")
    gt = fixtures_dir / "ava_eval_small" / "gt.csv"
    if not gt.is_file():
        pytest.skip("tests/fixtures/ava_eval_small/gt.csv is absent")
    import csv
    from collections import defaultdict

    persons: dict[tuple, set] = defaultdict(set)
    with open(gt, newline="") as fh:
        for video, second, x1, y1, x2, y2, action, _person in csv.reader(fh):
            persons[(video, int(second), float(x1), float(y1), float(x2), float(y2))].add(int(action))
    per_action: dict[int, int] = defaultdict(int)
    for actions in persons.values():
        for action in actions:
            per_action[action] += 1

    out = tmp_path / "store"
    done = _subprocess("data", "ingest", "ava", gt, "--out", out, "--split", "val", "--no-progress", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"ingested {len(persons)} persons (ava; splits val)")

    code, stdout, _ = run_cli(capsys, "data", "stats", out, "--json")
    tables = json.loads(stdout)
    assert tables["splits"] == [{"dataset": "ava", "split": "val", "persons": len(persons),
                                 "keyframes": len({key[:2] for key in persons}),
                                 "videos": len({key[0] for key in persons})}]
    assert {r["action"]: r["persons"] for r in tables["actions"]} == per_action
    summary = tables["tail_summary"][0]
    assert summary["under_10"] == sum(1 for n in per_action.values() if n < 10)
    assert summary["unseen"] == 80 - len(per_action)

    two = max(persons.items(), key=lambda item: len(item[1]))[1]
    a, b = sorted(two)[:2]
    expected = sum(1 for actions in persons.values() if a in actions and b in actions)
    code, stdout, _ = run_cli(capsys, "data", "query", out, f"SELECT count(*) AS n FROM persons "
                              f"WHERE list_contains(actions, {a}) AND list_contains(actions, {b})", "--json")
    assert json.loads(stdout) == {"n": expected} and expected >= 1

    converted = tmp_path / "converted.csv"
    code, _, _ = run_cli(capsys, "data", "convert", "ava", gt, "ava", converted)
    assert code == 0
    assert run_cli(capsys, "data", "validate", "ava", converted)[0] == 0
    broken = tmp_path / "broken.csv"
    broken.write_text(gt.read_text().replace(",0.611,", ",zz,", 1))
    code, stdout, _ = run_cli(capsys, "data", "validate", "ava", broken)
    assert code == 2 and stdout.startswith(f"{broken}:line 1:")


def test_frames_with_a_real_video(tmp_path, capsys):
    """20 frames at 10 fps; keeping 5 fps over [0.5 s, 1.5 s) gives 5 files numbered from 1."""
    video_module = pytest.importorskip("partwise.data.video")
    import numpy as np

    frames = np.zeros((20, 32, 32, 3), np.uint8)
    frames[:, :, :, 0] = np.arange(20, dtype=np.uint8)[:, None, None] * 12
    video = tmp_path / "clip.mp4"
    video_module.write_video(video, frames, 10)
    out = tmp_path / "frames"
    code, stdout, _ = run_cli(capsys, "data", "frames", video, out, "--fps", "5", "--start", "0.5", "--end", "1.5",
                              "--no-progress")
    assert code == 0
    written = sorted(p.name for p in out.iterdir())
    assert stdout.strip() == f"wrote {len(written)} frames to {out}"
    assert written == [f"img_{k:05d}.jpg" for k in range(1, 6)]
    code, _, err = run_cli(capsys, "data", "frames", video, out, "--no-progress")
    assert_one_line_error(code, err, str(out), "not empty")
    code, _, _ = run_cli(capsys, "data", "frames", video, out, "--overwrite", "--no-progress")
    assert code == 0 and len(list(out.iterdir())) == 20


def test_ingest_gio_with_pasta_stores_the_joint_view(tmp_path, capsys):
    import json as _json
    from pathlib import Path as _Path

    from partwise.cli import main as _main

    fixtures = _Path(__file__).parent.parent / "fixtures" / "hake"
    store_dir = tmp_path / "joint"
    assert _main(["data", "ingest", "gio", str(fixtures / "DIO"), "--out", str(store_dir), "--no-progress",
                  "--with-pasta", str(fixtures / "hake_ava_annotations")]) == 0
    capsys.readouterr()
    assert _main(["data", "query", str(store_dir), "SELECT dataset, len(pasta) AS n_pasta, len(objects) AS n_objects "
                  "FROM persons ORDER BY n_objects DESC", "--json"]) == 0
    rows = [_json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows and {r["dataset"] for r in rows} == {"hake-ava+gio"} and rows[0]["n_objects"] > 0
    assert all(r["n_pasta"] > 0 for r in rows if r["n_objects"] > 0)
    # the option belongs to gio only
    assert _main(["data", "ingest", "ava", str(fixtures / "DIO"), "--out", str(tmp_path / "x"),
                  "--with-pasta", str(fixtures / "hake_ava_annotations")]) == 2
    assert "format must be gio" in capsys.readouterr().err
