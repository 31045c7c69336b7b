"""``partwise data query`` is read-only: it cannot create, overwrite or read any file outside the store's shards.

Two layers, each tested on its own: the statement check of :func:`partwise.data.store.query` (one read-only query),
and -- the real barrier -- the locked DuckDB configuration of :func:`partwise.data.store.open_store`, attacked here
directly on the connection, with no statement check in between.
"""
from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
from pathlib import Path

import duckdb
import pytest

from partwise.data import store
from partwise.errors import ConfigError
from tests.data.test_data_cli import assert_one_line_error, run_cli
from tests.data.test_store import TRAIN, VAL, register_fake_formats, snapshot

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(monkeypatch, tmp_path):
    """A store of train.csv and val.csv, a file outside it, a working directory; paths for the SQL templates."""
    register_fake_formats(monkeypatch)
    (tmp_path / "train.csv").write_text(TRAIN)
    (tmp_path / "val.csv").write_text(VAL)
    out = tmp_path / "store"
    store.ingest("toy", tmp_path / "train.csv", out, progress=False)
    store.ingest("toy", tmp_path / "val.csv", out, progress=False)
    (tmp_path / "secret.csv").write_text("user,password\nroot,hunter2\n")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    shard = str((out / store.read_manifest(out)["sources"][0]["shards"][0]).resolve())
    return {"tmp": str(tmp_path), "store": str(out), "shard": shard, "url": f"{store.SHARD_PROTOCOL}://{shard}",
            "outside": str(tmp_path / "secret.csv"), "root": tmp_path}


def fill(template: str, env: dict) -> str:
    return template.format(**{k: v for k, v in env.items() if isinstance(v, str)})


#: statements that write, read outside the store, load code or change the configuration
ATTACKS = {
    "copy-to-file": "COPY (SELECT * FROM persons) TO '{tmp}/x.csv'",
    "copy-relative": "COPY (SELECT 1 AS a) TO 'x.csv'",
    "copy-over-manifest": "COPY (SELECT 1 AS a) TO '{store}/manifest.json' (FORMAT json)",
    "copy-over-shard": "COPY (SELECT 1 AS a) TO '{shard}' (FORMAT parquet, USE_TMP_FILE false)",
    "copy-over-shard-url": "COPY (SELECT 1 AS a) TO '{url}' (FORMAT csv, USE_TMP_FILE false)",
    "copy-partitioned": "COPY (SELECT * FROM persons) TO '{tmp}/parts' (FORMAT parquet, PARTITION_BY (split))",
    "attach": "ATTACH '{tmp}/x.db'",
    "attach-in-store": "ATTACH '{store}/x.db' AS x",
    "export-database": "EXPORT DATABASE '{tmp}/export'",
    "import-database": "IMPORT DATABASE '{tmp}'",
    "read-csv-outside": "SELECT * FROM read_csv('{outside}')",
    "read-csv-auto-outside": "SELECT * FROM '{outside}'",
    "read-text": "SELECT * FROM read_text('/etc/passwd')",
    "read-text-manifest": "SELECT * FROM read_text('{store}/manifest.json')",
    "read-blob-manifest": "SELECT * FROM read_blob('{store}/manifest.json')",
    "read-text-through-shard-url": "SELECT * FROM read_text('" + store.SHARD_PROTOCOL + "://{store}/manifest.json')",
    "read-parquet-local-shard": "SELECT count(*) FROM read_parquet('{shard}')",
    "read-parquet-glob": "SELECT count(*) FROM read_parquet('{store}/persons/*.parquet')",
    "glob": "SELECT * FROM glob('{tmp}/*')",
    "sniff-csv": "SELECT * FROM sniff_csv('{outside}')",
    "install": "INSTALL httpfs",
    "load": "LOAD httpfs",
    "enable-external-access": "SET enable_external_access = true",
    "reset-external-access": "RESET enable_external_access",
    "unlock": "SET lock_configuration = false",
    "allowed-directories": "SET allowed_directories = ['/']",
    "pragma-profiling-output": "PRAGMA profiling_output = '{tmp}/profile.json'",
    "pragma-enable-profiling": "PRAGMA enable_profiling = 'json'",
    "log-query-path": "SET log_query_path = '{tmp}/queries.log'",
    "temp-directory": "SET temp_directory = '{tmp}/spill'",
    "persistent-secret": "CREATE PERSISTENT SECRET s (TYPE s3, KEY_ID 'k', SECRET 'v')",
}

#: statements that only change the in-memory database of the connection (refused by the statement check)
IN_MEMORY = {
    "create-table": "CREATE TABLE t AS SELECT * FROM persons",
    "insert": "INSERT INTO vocabularies VALUES ('x', 1, 'y')",
    "drop-view": "DROP VIEW persons",
    "create-macro": "CREATE MACRO m() AS 1",
    "update": "UPDATE vocabularies SET name = 'x'",
    "explain-analyze-insert": "EXPLAIN ANALYZE INSERT INTO vocabularies VALUES ('x', 1, 'y')",
    "explain-analyze-copy": "EXPLAIN ANALYZE COPY (SELECT 1) TO '{tmp}/x.csv'",
    "pivot-without-in": "PIVOT persons ON split USING count(*)",
    "call": "CALL pragma_version()",
    "pragma-read": "PRAGMA show_tables",
    "begin": "BEGIN TRANSACTION",
    "checkpoint": "CHECKPOINT",
    "use": "USE memory",
    "two-statements": "SELECT 1; COPY (SELECT 1 AS a) TO '{tmp}/x.csv'",
    "two-selects": "SELECT 1; SELECT 2",
}


@pytest.mark.parametrize("name", sorted({**ATTACKS, **IN_MEMORY}))
@pytest.mark.parametrize("as_json", [False, True])
def test_query_command_refuses_with_one_line_and_writes_nothing(env, capsys, name, as_json):
    sql = fill({**ATTACKS, **IN_MEMORY}[name], env)
    before = snapshot(env["root"])
    code, stdout, err = run_cli(capsys, "data", "query", env["store"], sql, *(["--json"] if as_json else []))
    assert_one_line_error(code, err, "query: ")
    assert stdout == ""  # nothing read leaks out
    assert snapshot(env["root"]) == before  # no file created anywhere under tmp (cwd included), none changed
    assert not any(p.name.startswith("x.") for p in env["root"].rglob("*"))


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_the_connection_itself_refuses_every_attack(env, name):
    """No statement check here: DuckDB's locked configuration alone stops each attack."""
    sql = fill(ATTACKS[name], env)
    before = snapshot(env["root"])
    con = store.open_store(env["store"])
    try:
        with pytest.raises(duckdb.Error):
            relation = con.sql(sql)
            if relation is not None:
                relation.fetchall()
        # the connection still works, and is still locked
        assert con.sql("SELECT count(*) FROM persons").fetchall() == [(5,)]
        with pytest.raises(duckdb.Error, match="locked"):
            con.execute("SET enable_external_access = true")
    finally:
        con.close()
    assert snapshot(env["root"]) == before


def test_attaching_a_shard_cannot_change_it(env):
    before = snapshot(env["root"])
    con = store.open_store(env["store"])
    try:
        for sql in (f"ATTACH '{env['url']}' AS s", "CREATE TABLE s.t AS SELECT 1 AS a", "CHECKPOINT s"):
            with contextlib.suppress(duckdb.Error):  # DuckDB may attach a Parquet file (read-only) or refuse
                con.execute(sql)
    finally:
        con.close()
    assert snapshot(env["root"]) == before


def test_connection_settings(env):
    con = store.open_store(env["store"])
    try:
        settings = dict(con.sql("SELECT name, value FROM duckdb_settings()").fetchall())
        assert {k: settings[k] for k in ("enable_external_access", "lock_configuration", "autoinstall_known_extensions",
                                         "autoload_known_extensions", "python_enable_replacements",
                                         "enable_progress_bar")} == {
            "enable_external_access": "false", "lock_configuration": "true", "autoinstall_known_extensions": "false",
            "autoload_known_extensions": "false", "python_enable_replacements": "false", "enable_progress_bar": "false"}
        manifest = store.read_manifest(env["store"])
        shards = sorted(f"{store.SHARD_PROTOCOL}://{(Path(env['store']) / shard).resolve()}"
                        for source in manifest["sources"] for shard in source["shards"])
        assert settings["allowed_paths"].count(store.SHARD_PROTOCOL + "://") == len(shards) == 2
        assert all(shard in settings["allowed_paths"] for shard in shards)
        # the only directory DuckDB allows is its own private scratch folder, not the working directory
        scratch = Path(settings["temp_directory"])
        assert settings["allowed_directories"] == f"[{scratch}/]"
        assert scratch.parent.name.startswith("partwise-query-") and scratch.parent.is_dir()
        assert not str(scratch).startswith(str(env["root"]))
    finally:
        con.close()
    del con
    assert not scratch.parent.exists()  # deleted with the connection


README_QUERY = """SELECT video_id, time_s, person_id FROM persons
  WHERE list_contains(pasta, 'hand: hold') AND list_contains(pasta, 'head: inspect')"""


def test_read_only_queries_still_work(env, capsys):
    code, stdout, _ = run_cli(capsys, "data", "query", env["store"], README_QUERY + " ORDER BY time_s", "--json")
    assert code == 0
    assert [json.loads(line) for line in stdout.splitlines()] == [
        {"video_id": "vidA", "time_s": 902.0, "person_id": 0}, {"video_id": "vidA", "time_s": 903.0, "person_id": 0}]
    queries = {
        "SELECT count(*) AS n FROM pasta_labels WHERE part = 'hand'": [{"n": 3}],
        "SELECT action_name FROM action_labels WHERE action = 12 LIMIT 1": [{"action_name": "stand"}],
        "SELECT count(*) AS n FROM vocabularies WHERE vocab = 'ava80'": [{"n": 80}],
        "WITH s AS (SELECT split FROM persons) SELECT count(*) AS n FROM s": [{"n": 5}],
        "FROM persons SELECT count(*) AS n": [{"n": 5}],
        "-- a comment\nSELECT 1 AS n; ": [{"n": 1}],
        "VALUES (1)": [{"col0": 1}],
        "PIVOT (SELECT split FROM persons) ON split IN ('train', 'val') USING count(*)": [{"train": 4, "val": 1}],
        "SELECT count(*) AS n FROM (DESCRIBE persons) WHERE column_name = 'pasta'": [{"n": 1}],
    }
    for sql, rows in queries.items():
        assert store.query(env["store"], sql).to_pylist() == rows, sql
    for sql in ("DESCRIBE persons", "SHOW TABLES", "SUMMARIZE persons", "EXPLAIN SELECT * FROM persons",
                "EXPLAIN ANALYZE SELECT count(*) FROM persons", "SELECT count(*) FROM read_parquet('{url}')"):
        assert store.query(env["store"], fill(sql, env)).num_rows > 0, sql
    code, stdout, _ = run_cli(capsys, "data", "stats", env["store"], "--json")
    assert code == 0 and json.loads(stdout)["splits"][0]["persons"] == 4


def test_python_api_refuses_too(env):
    for function in (store.query, lambda d, sql: list(store.iter_query(d, sql))):
        with pytest.raises(ConfigError, match="read-only: only queries .* not COPY"):
            function(env["store"], fill(ATTACKS["copy-over-manifest"], env))
        with pytest.raises(ConfigError, match="one statement at a time, got 2"):
            function(env["store"], "SELECT 1; SELECT 2")
        with pytest.raises(ConfigError, match="query: empty SQL"):
            function(env["store"], " -- nothing\n")
        with pytest.raises(ConfigError, match="query: Parser Error"):
            function(env["store"], "SELEC 1")


def test_attack_in_a_subprocess_exits_2_without_traceback(env):
    sql = fill(ATTACKS["copy-over-manifest"], env)
    manifest = Path(env["store"], "manifest.json").read_bytes()
    done = subprocess.run([sys.executable, "-m", "partwise", "data", "query", env["store"], sql],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert_one_line_error(done.returncode, done.stderr, "query: the store is read-only")
    assert done.stdout == "" and Path(env["store"], "manifest.json").read_bytes() == manifest


def test_shard_file_positions_are_per_thread(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(bytes(range(256)) * 64)
    handle = store._ShardFile(str(path))
    errors = []

    def reader(offset):
        for _ in range(500):
            handle.seek(offset)
            data = handle.read(64)
            if data != (bytes(range(256)) * 2)[offset % 256:offset % 256 + 64]:
                errors.append(offset)

    threads = [threading.Thread(target=reader, args=(k * 97,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    handle.seek(-10, 2)
    assert handle.read() == (bytes(range(256)) * 64)[-10:] and handle.read(5) == b""
    handle.close()
    assert handle.closed
