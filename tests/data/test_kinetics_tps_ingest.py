"""Kinetics-TPS ingest: the package layout, streaming in chunks (bounded read-ahead), the thread pool, the nesting
pre-check, and ``partwise data ingest`` writing the store as the chunks come."""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from partwise.data import kinetics_tps as tps
from partwise.data import store
from partwise.data.kinetics_tps import ingest as tps_ingest
from partwise.errors import InputError

PACKAGE = Path(tps.__file__).parent


def frame(k: int) -> dict:
    """A frame with ``k % 3`` humans (so some frames have none), two parts each."""
    return {"humans": [{"number": h + 1, "box": [10 * h, 5, 10 * h + 8 + k % 5, 40],
                        "parts": {"head": {"box": [10 * h, 5, 10 * h + 4, 9], "verb": f"s{k % 7}"},
                                  "left_arm": {"box": [10 * h + 1, 10, 10 * h + 3, 20], "verb": "bend"}}}
                       for h in range(k % 3)]}


@pytest.fixture
def big_tree(tmp_path) -> Path:
    """12 videos of 7 frames in 3 classes (frames 1..7)."""
    root = tmp_path / "Kinetics-TPS"
    k = 0
    for video in range(12):
        vid = f"vid{video:02d}"
        folder = root / "train_annotations" / f"class{video % 3}" / vid / vid
        folder.mkdir(parents=True)
        for index in range(1, 8):
            (folder / f"img_{index:05d}.json").write_text(json.dumps(frame(k)))
            k += 1
    return root


# ---------------------------------------------------------------------------------------------------------------
# Package layout


def _internal_imports(path: Path) -> set[str]:
    """Modules of this package that ``path`` imports at module level (what could make an import circle)."""
    out = set()
    for node in ast.parse(path.read_text()).body:
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            if name.startswith("partwise.data.kinetics_tps."):
                out.add(name.rsplit(".", 1)[1])
    return out


def test_one_module_per_concern_no_circle_none_too_long():
    modules = {p.stem: p for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    assert {"layout", "checks", "ingest", "submission", "lists"} <= set(modules)
    graph = {name: _internal_imports(path) for name, path in modules.items()}
    done: set[str] = set()

    def visit(name: str, stack: list[str]) -> None:
        assert name not in stack, f"import circle: {' -> '.join(stack + [name])}"
        if name in done:
            return
        for dep in graph[name]:
            visit(dep, stack + [name])
        done.add(name)

    for name in graph:
        visit(name, [])
    for path in PACKAGE.glob("*.py"):
        assert len(path.read_text().splitlines()) <= 600, path


def test_every_exported_name_resolves_and_is_lazy():
    for name in tps.__all__ + ["_hoist_shared_objects", "_read_bytes", "_python_chunk", "_parse_lines"]:
        assert getattr(tps, name) is not None
    with pytest.raises(AttributeError):
        tps.no_such_name  # noqa: B018
    # `partwise data ingest` loads neither DuckDB nor the vocabularies, evaluator files or the tree writer
    code = ("import sys; from partwise.data import store; from partwise.data.kinetics_tps import read_records; "
            "print(sorted(m for m in ('duckdb', 'partwise.vocab', 'partwise.data.kinetics_tps.lists', "
            "'partwise.data.kinetics_tps.submission', 'partwise.data.kinetics_tps.tree') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ---------------------------------------------------------------------------------------------------------------
# Streaming


def test_iter_records_streams_chunks_that_add_up_to_read_records(big_tree, monkeypatch):
    whole = tps.read_records(big_tree)
    assert whole.num_rows == sum(k % 3 for k in range(84))
    monkeypatch.setattr(tps_ingest, "FIRST_CHUNK_FILES", 7)
    monkeypatch.setattr(tps_ingest, "FILES_PER_CHUNK", 14)
    tables = list(tps.iter_records(big_tree))
    assert len(tables) == 7  # one video, then pairs of videos
    assert pa.concat_tables(tables).equals(whole)


def test_iter_records_reads_ahead_a_bounded_number_of_chunks(big_tree, monkeypatch):
    monkeypatch.setattr(tps_ingest, "FIRST_CHUNK_FILES", 1)
    monkeypatch.setattr(tps_ingest, "FILES_PER_CHUNK", 1)  # one video per chunk: 12 chunks
    real = tps_ingest.iter_videos
    for threads in (1, 2):
        monkeypatch.setattr(tps_ingest, "parse_threads", lambda threads=threads: threads)
        walked = []

        def counting(*args, walked=walked, **kwargs):
            for video in real(*args, **kwargs):
                walked.append(video.video_id)
                yield video

        monkeypatch.setattr(tps_ingest, "iter_videos", counting)
        stream = tps.iter_records(big_tree)
        next(stream), next(stream)
        # the first chunk alone, then at most two chunks per thread read ahead of the one handed out
        assert len(walked) == (2 if threads == 1 else 1 + 2 * threads), (threads, walked)
        stream.close()


def test_thread_pool_gives_the_same_table(big_tree, monkeypatch):
    whole = tps.read_records(big_tree)
    monkeypatch.setattr(tps_ingest, "FIRST_CHUNK_FILES", 1)
    monkeypatch.setattr(tps_ingest, "FILES_PER_CHUNK", 1)
    monkeypatch.setattr(tps_ingest, "parse_threads", lambda: 3)
    assert tps.read_records(big_tree).equals(whole)


def test_parse_threads_follow_arrow_and_omp(monkeypatch):
    code = "from partwise.data.kinetics_tps import parse_threads; print(parse_threads())"
    for omp, expected in (("1", 1), ("3", 3), ("64", tps_ingest.MAX_THREADS)):
        env = {**os.environ, "OMP_NUM_THREADS": omp}
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
        assert int(out.stdout) == expected


def test_a_bad_file_in_a_later_chunk_is_named(big_tree, monkeypatch):
    bad = big_tree / "train_annotations" / "class2" / "vid11" / "vid11" / "img_00004.json"
    bad.write_text('{"humans": [{"box": [1, 2, 3], "parts": {}}]}')
    monkeypatch.setattr(tps_ingest, "FIRST_CHUNK_FILES", 7)
    monkeypatch.setattr(tps_ingest, "FILES_PER_CHUNK", 7)
    stream = tps.iter_records(big_tree)
    assert next(stream).num_rows > 0  # the earlier chunks come first
    with pytest.raises(InputError, match=r"vid11/img_00004\.json:humans\[0\]\.box: box must have 4 numbers"):
        list(stream)


# ---------------------------------------------------------------------------------------------------------------
# The nesting pre-check before Arrow's parser


def test_deep_nesting_is_refused_before_any_parser_and_many_brackets_are_not(big_tree):
    folder = big_tree / "train_annotations" / "class0" / "vid00" / "vid00"
    # 30 humans of 2 parts: some 150 brackets, but only 6 levels deep -- read as usual
    many = {"humans": [{"box": [0, 0, 1, 1], "parts": {"head": {"box": [0, 0, 1, 1], "verb": "x"},
                                                       "hip": {"box": [0, 0, 1, 1], "verb": "y"}}}] * 30}
    (folder / "img_00001.json").write_text(json.dumps(many))
    table = tps.read_records(big_tree)
    assert table.filter(pa.compute.equal(table.column("video_id"), "vid00")).num_rows > 30
    (folder / "img_00002.json").write_text('{"humans": [], "x": ' + "[" * 70 + "]" * 70 + "}")
    with pytest.raises(InputError, match=r"vid00/img_00002\.json: nested more than 64 levels deep"):
        tps.read_records(big_tree)


def test_nesting_is_counted_within_each_file(big_tree):
    """A file that closes far more brackets than it opens must not hide its neighbour's depth."""
    from partwise.data import safe_json

    with pytest.raises(InputError, match=r"^b: nested more than 64 levels deep"):
        safe_json.check_nesting_many([b"[]" * 65 + b"]" * 200, b"[" * 100], ["a", "b"])
    safe_json.check_nesting_many([b"[]" * 65 + b"]" * 200, b"[" * 64], ["a", "b"])
    folder = big_tree / "train_annotations" / "class0" / "vid00" / "vid00"
    (folder / "img_00001.json").write_text('{"humans": [], "x": "' + "[]" * 65 + "]" * 200 + '"}')
    (folder / "img_00002.json").write_text('{"humans": [], "x": ' + "[" * 70 + "]" * 70 + "}")
    with pytest.raises(InputError, match=r"vid00/img_00002\.json: nested more than 64 levels deep"):
        tps.read_records(big_tree)


def test_read_bytes_opens_by_name_in_the_folder_and_names_the_file_it_cannot_read(big_tree, tmp_path):
    folder = big_tree / "train_annotations" / "class0" / "vid00" / "vid00"
    files = sorted(str(f) for f in folder.iterdir())
    outside = tmp_path / "img_00099.json"
    outside.write_bytes(b'{"humans": []}' + b" " * 70000)  # larger than one read
    expected = [Path(f).read_bytes() for f in files] + [outside.read_bytes()]
    assert tps_ingest._read_bytes([*files, str(outside)], str(folder)) == expected
    assert tps_ingest._read_bytes(files) == expected[:-1]
    (folder / "img_00003.json").unlink()
    (folder / "img_00003.json").mkdir()
    with pytest.raises(InputError, match=r"vid00/img_00003\.json: cannot read"):
        tps_ingest._read_bytes(files, str(folder))


# ---------------------------------------------------------------------------------------------------------------
# The store, written as the chunks come


def _row_groups(store_dir: Path) -> list[list[int]]:
    manifest = json.loads((store_dir / "manifest.json").read_text())
    return [[pq.ParquetFile(store_dir / shard).metadata.row_group(g).num_rows
             for g in range(pq.ParquetFile(store_dir / shard).metadata.num_row_groups)]
            for source in manifest["sources"] for shard in source["shards"]]


def test_streamed_store_has_the_shards_and_row_groups_of_the_whole_table(big_tree, tmp_path, monkeypatch):
    monkeypatch.setattr(tps_ingest, "FIRST_CHUNK_FILES", 3)
    monkeypatch.setattr(tps_ingest, "FILES_PER_CHUNK", 5)
    monkeypatch.setattr(store, "ROW_GROUP_ROWS", 4)
    whole = tps.read_records(big_tree)
    entry = store.ingest("kinetics-tps", big_tree, tmp_path / "streamed", progress=False, shard_rows=10)
    reference = tmp_path / "reference"
    (reference / store.SHARD_DIR).mkdir(parents=True)
    shards = store.write_shards(whole, reference, entry["id"], shard_rows=10)
    assert entry["rows"] == whole.num_rows and entry["shards"] == shards
    assert entry["datasets"] == ["kinetics-tps"] and entry["splits"] == ["train"]
    streamed = pa.concat_tables(pq.read_table(tmp_path / "streamed" / s) for s in entry["shards"])
    assert streamed.equals(whole)
    assert _row_groups(tmp_path / "streamed") == [[pq.ParquetFile(reference / s).metadata.row_group(g).num_rows
                                                   for g in range(pq.ParquetFile(reference / s).metadata
                                                                  .num_row_groups)] for s in shards]
    assert all(groups == [4, 4, 2] for groups in _row_groups(tmp_path / "streamed")[:-1])


def test_streamed_ingest_of_an_empty_split_keeps_one_typed_shard(tmp_path):
    folder = tmp_path / "tps" / "val_annotations" / "c" / "v" / "v"
    folder.mkdir(parents=True)
    (folder / "img_00001.json").write_text('{"humans": []}')
    entry = store.ingest("kinetics-tps", tmp_path / "tps", tmp_path / "out", progress=False)
    assert entry["rows"] == 0 and len(entry["shards"]) == 1 and entry["splits"] == []
    assert pq.read_schema(tmp_path / "out" / entry["shards"][0]).names == store.PERSON_SCHEMA.names


def test_a_bad_file_late_in_the_stream_leaves_the_store_unchanged(big_tree, tmp_path, monkeypatch):
    monkeypatch.setattr(tps_ingest, "FILES_PER_CHUNK", 7)
    monkeypatch.setattr(store, "ROW_GROUP_ROWS", 4)
    out = tmp_path / "store"
    store.ingest("kinetics-tps", big_tree / "train_annotations" / "class0", out, progress=False, shard_rows=5)
    before = sorted((p.relative_to(out), p.read_bytes()) for p in out.rglob("*") if p.is_file())
    (big_tree / "train_annotations" / "class2" / "vid11" / "vid11" / "img_00007.json").write_text("{oops")
    with pytest.raises(InputError, match=r"vid11/img_00007\.json"):
        store.ingest("kinetics-tps", big_tree, out, progress=False, shard_rows=5)
    assert sorted((p.relative_to(out), p.read_bytes()) for p in out.rglob("*") if p.is_file()) == before
    assert [p.name for p in tmp_path.iterdir()] and not [p for p in tmp_path.iterdir() if ".tmp" in p.name
                                                          or ".old." in p.name]
    with pytest.raises(InputError):
        store.ingest("kinetics-tps", big_tree, tmp_path / "new" / "store", progress=False)
    assert not (tmp_path / "new").exists()
