"""The Parquet store: ingest -> DuckDB views, stats, sharding, atomicity, re-ingest.

The formats used here are tiny fake modules registered in ``FORMATS`` (no dependency on the real format readers):
``toy`` is a CSV ``video,time,x1,y1,x2,y2,person_id,actions (space-separated),pasta (;-separated)`` whose split is
the file's stem; ``gen`` produces a generated table of a given size (file content = row count).
"""
from __future__ import annotations

import json
import math
import os
import sys
import types
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from partwise.data import formats, store
from partwise.data.records import PERSON_SCHEMA, RecordBuilder
from partwise.errors import ConfigError, InputError
from partwise.io import atomic_write
from tests.test_io import KILL_CASES, exchange_supported, run_killed

TRAIN = """\
vidA,902,0.1,0.1,0.5,0.9,0,12 80,hand: hold;head: inspect
vidA,902,0.5,0.1,0.9,0.9,1,12,hand: hold
vidA,903,0.1,0.1,0.5,0.9,0,80,hand: hold;head: inspect;hip: sit on
vidB,902,0.2,0.2,0.6,0.8,0,,head: inspect
"""
VAL = "vidC,910,0.1,0.1,0.2,0.2,5,12,\n"


# ------------------------------------------------------------------------------------------------ fake formats

def _parse_toy_line(path: str, number: int, line: str) -> dict:
    fields = line.rstrip("\n").split(",")
    if len(fields) != 9:
        raise InputError(path, number, f"expected 9 comma-separated fields, got {len(fields)}")
    try:
        time_s = float(fields[1])
        box = [float(v) for v in fields[2:6]]
        person = int(fields[6])
        actions = [int(a) for a in fields[7].split()]
    except ValueError as exc:
        raise InputError(path, number, f"not a number: {exc}") from None
    return dict(video_id=fields[0], time_s=time_s, x1=box[0], y1=box[1], x2=box[2], y2=box[3], person_id=person,
                actions=actions, pasta=[p for p in fields[8].split(";") if p])


def toy_read_records(path, *, split=None, progress=False, fail_after=None):
    builder = RecordBuilder()
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if fail_after is not None and number > fail_after:
                raise InputError(path, number, "simulated failure")
            row = _parse_toy_line(str(path), number, line)
            builder.append(dataset="toy", split=split or Path(path).stem, action_vocab="ava80",
                           pasta_vocab="pasta_ava87", source=f"{Path(path).name}:{number}", **row)
    return builder.to_table()


def toy_validate(path):
    problems = []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            try:
                _parse_toy_line(str(path), number, line)
            except InputError as exc:
                problems.append(exc.problem)
    return problems


def toy_write_records(table, path):
    with atomic_write(path) as fh:
        for r in table.to_pylist():
            fields = [r["video_id"], f"{r['time_s']:g}", *(repr(r[k]) for k in ("x1", "y1", "x2", "y2")),
                      str(r["person_id"]), " ".join(map(str, r["actions"])), ";".join(r["pasta"])]
            fh.write(",".join(fields) + "\n")


def gen_read_records(path, *, split=None, progress=False):
    """``n`` generated rows (``n`` = the file's content), 7 persons per keyframe, keyframes spread over 7 videos;
    person k has action 12 if k < 150, 80 if k < 170, else 1."""
    n = int(Path(path).read_text())
    builder = RecordBuilder()
    for k in range(n):
        action = 12 if k < 150 else 80 if k < 170 else 1
        builder.append(dataset="gen", split=split or "train", video_id=f"v{(k // 7) % 7}", time_s=float(902 + k // 7),
                       x1=0.0, y1=0.0, x2=1.0, y2=1.0, person_id=k, actions=[action], action_vocab="ava80")
    return builder.to_table()


def _module(name, **functions):
    module = types.ModuleType(name)
    for key, value in functions.items():
        setattr(module, key, value)
    return module


def register_fake_formats(monkeypatch) -> None:
    """Register ``toy``, ``toy-failing`` (raises at line 3) and ``gen`` in ``FORMATS``."""
    modules = {
        "toy": _module("fake_toy_format", read_records=toy_read_records, validate=toy_validate,
                       write_records=toy_write_records),
        "toy-failing": _module("fake_toy_failing_format",
                               read_records=lambda path, *, split=None, progress=False:
                               toy_read_records(path, split=split, fail_after=2),
                               validate=toy_validate, write_records=toy_write_records),
        "gen": _module("fake_gen_format", read_records=gen_read_records, validate=lambda path: [],
                       write_records=toy_write_records),
    }
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, module.__name__, module)
        monkeypatch.setitem(formats.FORMATS, name, module.__name__)


@pytest.fixture
def toy(monkeypatch, tmp_path):
    register_fake_formats(monkeypatch)
    (tmp_path / "train.csv").write_text(TRAIN)
    (tmp_path / "val.csv").write_text(VAL)
    return tmp_path


def snapshot(directory: Path) -> dict:
    """Every file under ``directory`` (relative path -> bytes)."""
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def leftovers(parent: Path) -> list[str]:
    """Temporary or backup entries beside a store (names starting with a dot)."""
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


# ------------------------------------------------------------------------------------------------------- tests

def test_ingest_then_query_hake_example(toy):
    out = toy / "store"
    entry = store.ingest("toy", toy / "train.csv", out, progress=False)
    assert entry["rows"] == 4 and entry["datasets"] == ["toy"] and entry["splits"] == ["train"]
    assert entry["format"] == "toy" and entry["path"] == str((toy / "train.csv").resolve())

    hits = store.query(out, """
        SELECT video_id, time_s, person_id FROM persons
        WHERE list_contains(pasta, 'hand: hold') AND list_contains(pasta, 'head: inspect')
        ORDER BY video_id, time_s, person_id""")
    assert hits.to_pylist() == [{"video_id": "vidA", "time_s": 902.0, "person_id": 0},
                                {"video_id": "vidA", "time_s": 903.0, "person_id": 0}]

    persons = store.query(out, "SELECT * FROM persons ORDER BY source")
    assert persons.column_names == PERSON_SCHEMA.names
    assert persons.column("actions").to_pylist() == [[12, 80], [12], [80], []]
    assert persons.column("x2").to_pylist() == [0.5, 0.9, 0.5, 0.6]


def test_label_views(toy):
    out = toy / "store"
    store.ingest("toy", toy / "train.csv", out, progress=False)
    pasta = store.query(out, "SELECT source, pasta, part, state FROM pasta_labels ORDER BY source, pasta")
    assert pasta.to_pylist()[:3] == [
        {"source": "train.csv:1", "pasta": "hand: hold", "part": "hand", "state": "hold"},
        {"source": "train.csv:1", "pasta": "head: inspect", "part": "head", "state": "inspect"},
        {"source": "train.csv:2", "pasta": "hand: hold", "part": "hand", "state": "hold"},
    ]
    assert pasta.num_rows == 7  # 2 + 1 + 3 + 1 names
    actions = store.query(out, "SELECT source, action, action_name FROM action_labels ORDER BY source, action")
    assert actions.to_pylist() == [
        {"source": "train.csv:1", "action": 12, "action_name": "stand"},
        {"source": "train.csv:1", "action": 80, "action_name": "watch (a person)"},
        {"source": "train.csv:2", "action": 12, "action_name": "stand"},
        {"source": "train.csv:3", "action": 80, "action_name": "watch (a person)"},
    ]


def test_action_name_null_for_unknown_vocabulary(monkeypatch, tmp_path):
    table = RecordBuilder()
    table.append(dataset="d", video_id="v", actions=[3], action_vocab="my_own_labels", pasta=["no part"])
    monkeypatch.setitem(sys.modules, "fake_one_row", _module("fake_one_row",
                        read_records=lambda path, *, split=None, progress=False: table.to_table()))
    monkeypatch.setitem(formats.FORMATS, "one-row", "fake_one_row")
    (tmp_path / "x").write_text("")
    store.ingest("one-row", tmp_path / "x", tmp_path / "s", progress=False)
    assert store.query(tmp_path / "s", "SELECT action, action_name FROM action_labels").to_pylist() == [
        {"action": 3, "action_name": None}]
    # a name without "part:" keeps the whole name as the state
    assert store.query(tmp_path / "s", "SELECT part, state FROM pasta_labels").to_pylist() == [
        {"part": None, "state": "no part"}]


def test_stats_counted_by_hand(toy):
    out = toy / "store"
    store.ingest("toy", toy / "train.csv", out, progress=False)
    store.ingest("toy", toy / "val.csv", out, progress=False)
    tables = store.stats(out)
    assert tables["splits"].to_pylist() == [
        {"dataset": "toy", "split": "train", "persons": 4, "keyframes": 3, "videos": 2},
        {"dataset": "toy", "split": "val", "persons": 1, "keyframes": 1, "videos": 1},
    ]
    assert [(r["part"], r["state"], r["persons"]) for r in tables["pasta"].to_pylist()] == [
        ("hand", "hold", 3), ("head", "inspect", 3), ("hip", "sit on", 1)]
    assert [(r["action"], r["action_name"], r["persons"]) for r in tables["actions"].to_pylist()] == [
        (12, "stand", 3), (80, "watch (a person)", 2)]

    tail = tables["long_tail"].to_pylist()
    actions = [(r["class_id"], r["examples"], r["share"], r["cumulative_share"]) for r in tail if r["kind"] == "action"]
    assert actions == [(12, 3, pytest.approx(0.6), pytest.approx(0.6)), (80, 2, pytest.approx(0.4), pytest.approx(1.0))]
    pasta = [(r["class"], r["examples"], r["cumulative_share"]) for r in tail if r["kind"] == "pasta"]
    assert pasta == [("hand: hold", 3, pytest.approx(3 / 7)), ("head: inspect", 3, pytest.approx(6 / 7)),
                     ("hip: sit on", 1, pytest.approx(1.0))]

    summary = {r["kind"]: r for r in tables["tail_summary"].to_pylist()}
    assert summary["action"] == {"kind": "action", "dataset": "toy", "vocab": "ava80", "classes": 2, "examples": 5,
                                 "under_10": 2, "under_100": 2, "vocab_size": 80, "unseen": 78}
    assert summary["pasta"]["classes"] == 3 and summary["pasta"]["vocab_size"] == 87
    assert summary["pasta"]["unseen"] == 84


def test_stats_tail_thresholds(toy):
    (toy / "n.txt").write_text("175")  # 150 x action 12, 20 x action 80, 5 x action 1
    out = toy / "store"
    store.ingest("gen", toy / "n.txt", out, progress=False)
    tables = store.stats(out)
    row = tables["tail_summary"].to_pylist()[0]
    assert (row["classes"], row["examples"], row["under_10"], row["under_100"]) == (3, 175, 1, 2)
    tail = tables["long_tail"].to_pylist()
    assert [r["class_id"] for r in tail] == [12, 80, 1]
    assert [r["cumulative_share"] for r in tail] == pytest.approx([150 / 175, 170 / 175, 1.0])
    # 175 persons over 7 videos, 25 keyframes (7 persons per time step)
    assert tables["splits"].to_pylist() == [
        {"dataset": "gen", "split": "train", "persons": 175, "keyframes": 25, "videos": 7}]


def test_sharding(toy):
    (toy / "n.txt").write_text("23")
    out = toy / "store"
    entry = store.ingest("gen", toy / "n.txt", out, progress=True, shard_rows=10)
    assert len(entry["shards"]) == 3
    sizes = [pq.ParquetFile(out / shard).metadata.num_rows for shard in entry["shards"]]
    assert sizes == [10, 10, 3]
    assert pq.ParquetFile(out / entry["shards"][0]).metadata.row_group(0).column(0).compression == "ZSTD"
    assert pq.read_schema(out / entry["shards"][0]).remove_metadata() == PERSON_SCHEMA
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["schema_version"] == store.SCHEMA_VERSION
    assert manifest["sources"][0]["shards"] == entry["shards"]
    got = store.query(out, "SELECT person_id FROM persons ORDER BY person_id").column("person_id").to_pylist()
    assert got == list(range(23))


def test_empty_source_keeps_typed_columns(toy):
    (toy / "n.txt").write_text("0")
    out = toy / "store"
    entry = store.ingest("gen", toy / "n.txt", out, progress=False)
    assert entry["rows"] == 0 and len(entry["shards"]) == 1
    result = store.query(out, "SELECT count(*) AS n, list_concat(NULL, NULL) FROM persons")
    assert result.column("n").to_pylist() == [0]
    assert store.query(out, "SELECT actions FROM persons").schema.field("actions").type == pa.list_(pa.int32())


def test_reingest_replaces_and_sources_accumulate(toy):
    out = toy / "store"
    store.ingest("toy", toy / "train.csv", out, progress=False)
    store.ingest("toy", toy / "val.csv", out, progress=False)
    assert store.query(out, "SELECT count(*) AS n FROM persons").column("n").to_pylist() == [5]
    first = json.loads((out / "manifest.json").read_text())["sources"]
    old_train_shards = first[0]["shards"]

    (toy / "train.csv").write_text("".join(TRAIN.splitlines(keepends=True)[:2]))
    store.ingest("toy", toy / "train.csv", out, progress=False)
    manifest = json.loads((out / "manifest.json").read_text())
    assert [s["path"] for s in manifest["sources"]] == [str((toy / "val.csv").resolve()),
                                                       str((toy / "train.csv").resolve())]
    counts = store.query(out, "SELECT split, count(*) AS n FROM persons GROUP BY split ORDER BY split").to_pylist()
    assert counts == [{"split": "train", "n": 2}, {"split": "val", "n": 1}]
    # the replaced source's shards are gone, nothing else lies in the store
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == sorted(["manifest.json", *manifest["sources"][0]["shards"], *manifest["sources"][1]["shards"]])
    assert manifest["sources"][1]["shards"] == old_train_shards  # same names, new content
    assert leftovers(toy) == []


def test_failed_read_leaves_store_unchanged(toy):
    out = toy / "store"
    store.ingest("toy", toy / "val.csv", out, progress=False)
    before = snapshot(out)
    with pytest.raises(InputError, match=r"train\.csv:line 3: simulated failure"):
        store.ingest("toy-failing", toy / "train.csv", out, progress=False)
    assert snapshot(out) == before
    assert leftovers(toy) == []


def test_failed_read_creates_nothing(toy):
    (toy / "bad.csv").write_text("vidA,902,0.1,0.1,0.5,0.9,0,12,hand: hold\nvidA,oops\n")
    out = toy / "new" / "store"
    with pytest.raises(InputError, match=r"bad\.csv:line 2: expected 9"):
        store.ingest("toy", toy / "bad.csv", out, progress=False)
    assert not (toy / "new").exists()


def test_failure_while_writing_a_new_store_creates_nothing(toy, monkeypatch):
    def failing_writer(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pq, "ParquetWriter", failing_writer)
    with pytest.raises(OSError, match="disk full"):
        store.ingest("toy", toy / "train.csv", toy / "a" / "b" / "store", progress=False)
    assert not (toy / "a").exists() and leftovers(toy) == []


@pytest.mark.parametrize("exception", [OSError("disk full"), KeyboardInterrupt()])
def test_failure_while_writing_leaves_store_unchanged(toy, monkeypatch, exception):
    out = toy / "store"
    store.ingest("toy", toy / "val.csv", out, progress=False)
    before = snapshot(out)
    real_writer = pq.ParquetWriter
    calls = []

    def failing_writer(*args, **kwargs):
        calls.append(args[0])
        if len(calls) == 2:  # the second shard of the new source
            raise exception
        return real_writer(*args, **kwargs)

    monkeypatch.setattr(pq, "ParquetWriter", failing_writer)
    with pytest.raises(type(exception)):
        store.ingest("toy", toy / "train.csv", out, progress=False, shard_rows=2)
    assert len(calls) == 2
    assert snapshot(out) == before
    assert leftovers(toy) == []
    monkeypatch.undo()
    register_fake_formats(monkeypatch)
    assert store.query(out, "SELECT count(*) AS n FROM persons").column("n").to_pylist() == [1]


def test_refuses_a_directory_that_is_not_a_store(toy):
    other = toy / "notes"
    other.mkdir()
    (other / "todo.txt").write_text("keep me")
    with pytest.raises(InputError, match="not a partwise store"):
        store.ingest("toy", toy / "train.csv", other, progress=False)
    assert snapshot(other) == {"todo.txt": b"keep me"}
    (toy / "empty").mkdir()
    store.ingest("toy", toy / "train.csv", toy / "empty", progress=False)  # an empty dir becomes a store
    assert (toy / "empty" / "manifest.json").is_file()


def test_unknown_format_and_missing_path(toy):
    with pytest.raises(ConfigError, match="unknown format 'nope'"):
        store.ingest("nope", toy / "train.csv", toy / "s", progress=False)
    with pytest.raises(InputError, match="missing.csv: no such file"):
        store.ingest("toy", toy / "missing.csv", toy / "s", progress=False)
    assert not (toy / "s").exists()


def test_open_store_errors_name_the_dir(toy):
    missing = toy / "nowhere"
    with pytest.raises(InputError, match=f"{missing}: no such store directory"):
        store.open_store(missing)
    with pytest.raises(InputError, match=f"{toy}: not a partwise store"):
        store.open_store(toy)
    out = toy / "store"
    store.ingest("toy", toy / "train.csv", out, progress=False)
    manifest = json.loads((out / "manifest.json").read_text())
    shard = out / manifest["sources"][0]["shards"][0]
    shard.unlink()
    with pytest.raises(InputError, match=rf"{out}:sources\[0\]\.shards\[0\]: shard file .* is missing"):
        store.open_store(out)
    (out / "manifest.json").write_text("{not json")
    with pytest.raises(InputError, match=rf"{out / 'manifest.json'}:line 1: invalid JSON"):
        store.query(out, "SELECT 1")
    (out / "manifest.json").write_text(json.dumps({"schema_version": 99, "sources": []}))
    with pytest.raises(InputError, match="schema_version: unsupported store version 99"):
        store.stats(out)


def test_sql_errors_are_one_line(toy):
    out = toy / "store"
    store.ingest("toy", toy / "train.csv", out, progress=False)
    with pytest.raises(ConfigError) as info:
        store.query(out, "SELECT nope FROM persons")
    assert "\n" not in str(info.value) and str(info.value).startswith("query: ")
    with pytest.raises(ConfigError, match="query: .*Could not convert"):
        list(store.iter_query(out, "SELECT CAST(video_id AS INTEGER) FROM persons"))


def test_iter_query_streams_batches(toy):
    (toy / "n.txt").write_text("30")
    out = toy / "store"
    store.ingest("gen", toy / "n.txt", out, progress=False, shard_rows=7)
    batches = list(store.iter_query(out, "SELECT person_id FROM persons ORDER BY person_id", batch_rows=8))
    assert all(b.num_rows <= 8 for b in batches)
    assert [v for b in batches for v in b.column(0).to_pylist()] == list(range(30))


def test_store_is_movable(toy):
    out = toy / "store"
    store.ingest("toy", toy / "train.csv", out, progress=False)
    moved = toy / "moved"
    os.rename(out, moved)
    assert store.query(moved, "SELECT count(*) AS n FROM persons").column("n").to_pylist() == [4]
    assert not math.isnan(store.query(moved, "SELECT avg(x1) AS m FROM persons").column("m")[0].as_py())


# --------------------------------------------------------------------------------- interrupted swaps of the store

def _stored_persons(out: Path) -> int:
    return store.query(out, "SELECT count(*) AS n FROM persons").column("n").to_pylist()[0]


def _kill_state(toy: Path) -> Path:
    """A store of train.csv (4 persons) as a kill between the two renames of a swap leaves it: only the backup."""
    out = toy / "store"
    store.ingest("toy", toy / "train.csv", out, progress=False)
    os.rename(out, toy / ".store.old.12345")
    return out


def test_reading_commands_put_back_a_store_left_aside_by_a_kill(toy, capsys):
    from partwise.cli import main

    out = _kill_state(toy)
    assert main(["data", "stats", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["splits"][0]["persons"] == 4
    assert out.is_dir() and leftovers(toy) == []

    os.rename(out, toy / ".store.old.12345")
    assert main(["data", "query", str(out), "SELECT count(*) AS n FROM persons", "--json"]) == 0
    assert capsys.readouterr().out == '{"n": 4}\n' and leftovers(toy) == []

    os.rename(out, toy / ".store.old.12345")
    assert store.read_manifest(out)["sources"][0]["rows"] == 4 and leftovers(toy) == []


def test_ingest_after_a_kill_keeps_the_sources_of_the_store_left_aside(toy, capsys):
    from partwise.cli import main

    out = _kill_state(toy)
    assert main(["data", "ingest", "toy", str(toy / "val.csv"), "--out", str(out), "--no-progress"]) == 0
    assert "(store: 2 sources, 5 persons)" in capsys.readouterr().out
    manifest = store.read_manifest(out)
    assert [s["rows"] for s in manifest["sources"]] == [4, 1]
    assert _stored_persons(out) == 5 and leftovers(toy) == []


def test_several_backups_are_a_one_line_error(toy, capsys):
    from partwise.cli import main

    out = _kill_state(toy)
    (toy / ".store.old.999").mkdir()
    assert main(["data", "stats", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "2 copies beside it (.store.old.12345, .store.old.999)" in err[0]
    with pytest.raises(InputError, match="rename the one to keep to store"):
        store.ingest("toy", toy / "val.csv", out, progress=False)
    assert not out.exists() and leftovers(toy) == [".store.old.12345", ".store.old.999"]


#: run after ``KILL_HARNESS`` (tests/test_io.py): ingest ``VAL`` into ``OUT``, killed at ``STEP``
_KILLED_INGEST = '''
import types
from partwise.data import formats, store
from tests.data import test_store as t

module = types.ModuleType("fake_toy_format")
module.read_records = t.toy_read_records
sys.modules[module.__name__] = module
formats.FORMATS["toy"] = module.__name__
_write_shards = store.write_shards


def write_shards(*args, **kwargs):
    shards = _write_shards(*args, **kwargs)
    checkpoint("while-building")
    return shards


store.write_shards = write_shards
store.ingest("toy", VAL, OUT, progress=False)
'''


@pytest.mark.parametrize("mode,step,expected", KILL_CASES)
def test_kill_during_ingest_at_every_step_of_the_swap(toy, mode, step, expected):
    if mode == "exchange" and not exchange_supported(toy):
        pytest.skip("no atomic directory exchange on this system")
    out = toy / "store"
    store.ingest("toy", toy / "train.csv", out, progress=False)
    script = f"VAL, OUT = {str(toy / 'val.csv')!r}, {str(out)!r}\n" + _KILLED_INGEST
    run_killed(script, mode, step, toy)
    # the next command reads the old store (train: 4 persons) or the new one (train + val: 5 persons)
    assert _stored_persons(out) == (4 if expected == "old" else 5)
    store.ingest("toy", toy / "val.csv", out, progress=False)
    assert _stored_persons(out) == 5
    assert not [name for name in leftovers(toy) if ".old." in name]
