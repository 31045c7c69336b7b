"""Queries on the person store (rules in :mod:`partwise.data.store`): :func:`open_store`'s read-only, locked-down
DuckDB connection with its views over the shards, :func:`query` / :func:`iter_query` (one read-only statement), the
shard file system that opens only the manifest's shards, and :func:`stats`."""
from __future__ import annotations

import io
import os
import re
import shutil
import tempfile
import threading
import weakref
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import pyarrow as pa

from partwise.data.records import PERSON_SCHEMA
from partwise.data.store_manifest import read_manifest
from partwise.errors import ConfigError, InputError

if TYPE_CHECKING:  # imported where a query runs: ``partwise data ingest`` does not pay for it at start-up
    import duckdb

#: columns that identify a person row in the unnested label views
_ID_COLUMNS = ("dataset", "split", "video_id", "time_s", "frame_index", "person_id",
               "x1", "y1", "x2", "y2", "score", "source")


# ------------------------------------------------------------------------------------------------------------ query

#: URL scheme of the read-only file system through which DuckDB reads the shards (see the module docstring)
SHARD_PROTOCOL = "partwise-shard"

#: DuckDB settings of every store connection, set when it is created (``temp_directory`` is added per connection)
_CONNECT_CONFIG = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "python_enable_replacements": False,
}

#: statement types (DuckDB's parser) that :func:`query` runs; EXPLAIN only of one of the others
_QUERY_TYPES = frozenset({"SELECT", "EXPLAIN"})
_EXPLAIN_PREFIX = re.compile(r"(?:\s|--[^\n]*(?:\n|$)|/\*.*?\*/)*EXPLAIN\s+(?:ANALY[SZ]E\s+)?(?:\([^()]*\)\s*)?",
                             re.IGNORECASE | re.DOTALL)


def open_store(store_dir: str | os.PathLike) -> duckdb.DuckDBPyConnection:
    """A read-only, in-memory DuckDB connection with the views ``persons``, ``pasta_labels``, ``action_labels`` and
    the table ``vocabularies`` over the store ``store_dir`` (see the module docstring). The caller closes it.

    The connection can read the store's shard files and nothing else, and write no file; its configuration is
    locked (see the module docstring).
    """
    import duckdb

    store_dir = Path(store_dir)
    manifest = read_manifest(store_dir)
    files = [str((store_dir / shard).resolve()) for source in manifest["sources"] for shard in source["shards"]]
    urls = [f"{SHARD_PROTOCOL}://{f}" for f in files]
    con = _connect()
    try:
        con.register_filesystem(_shard_filesystem(files))
        con.register("_vocabularies", _vocabulary_table())
        con.execute("CREATE TABLE vocabularies AS SELECT * FROM _vocabularies")
        con.unregister("_vocabularies")
        if urls:
            listing = ", ".join(_sql_string(u) for u in urls)
            con.execute(f"CREATE VIEW persons AS SELECT * FROM read_parquet([{listing}], union_by_name = true)")
        else:  # a store whose sources were all removed by hand: same columns, no rows
            con.register("_empty_persons", PERSON_SCHEMA.empty_table())
            con.execute("CREATE TABLE persons AS SELECT * FROM _empty_persons")
            con.unregister("_empty_persons")
        ids = ", ".join(_ID_COLUMNS)
        con.execute(f"""
            CREATE VIEW pasta_labels AS
            SELECT {ids}, pasta_vocab, name AS pasta,
                   CASE WHEN strpos(name, ':') > 0 THEN trim(name[:strpos(name, ':') - 1]) END AS part,
                   CASE WHEN strpos(name, ':') > 0 THEN trim(name[strpos(name, ':') + 1:]) ELSE name END AS state
            FROM (SELECT {ids}, pasta_vocab, unnest(pasta) AS name FROM persons)
        """)
        con.execute(f"""
            CREATE VIEW action_labels AS
            SELECT a.*, v.name AS action_name
            FROM (SELECT {ids}, action_vocab, unnest(actions) AS action FROM persons) AS a
            LEFT JOIN vocabularies AS v ON v.vocab = a.action_vocab AND v.id = a.action
        """)
    except duckdb.Error as exc:
        con.close()
        raise InputError(store_dir, None, f"cannot read the store: {_first_line(exc)}") from None
    except BaseException:
        con.close()
        raise
    try:
        _lock_down(con, urls)
    except BaseException:
        con.close()
        raise
    return con


def _connect() -> duckdb.DuckDBPyConnection:
    """A new in-memory connection with :data:`_CONNECT_CONFIG` and a private scratch directory for spilling.

    DuckDB allows its ``temp_directory`` even with external access disabled; its default (``.tmp`` in the working
    directory) would open that folder to queries. So it is a fresh ``partwise-query-*`` folder in the system's
    temporary directory (``$TMPDIR``), deleted with the connection; without one, DuckDB does not spill.
    """
    import duckdb

    try:
        scratch = tempfile.mkdtemp(prefix="partwise-query-")
    except OSError:
        scratch = None
    config = {**_CONNECT_CONFIG, "temp_directory": os.path.join(scratch, "spill") if scratch else ""}
    try:
        con = duckdb.connect(config=config)
    except BaseException:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
        raise
    if scratch:
        weakref.finalize(con, shutil.rmtree, scratch, True)
    con.execute("SET enable_progress_bar = false")  # it prints to stdout, in the middle of --json output
    return con


def _lock_down(con: duckdb.DuckDBPyConnection, urls: list[str]) -> None:
    """Allow the connection the shard URLs and nothing else, then lock its configuration (module docstring).

    A DuckDB without these settings (``allowed_paths`` came in 1.2) is refused rather than run without the barrier.
    """
    import duckdb

    statements = [
        f"SET allowed_paths = [{', '.join(_sql_string(u) for u in urls)}]",
        "SET enable_external_access = false",
        "SET lock_configuration = true",
    ]
    for statement in statements:
        try:
            con.execute(statement)
        except duckdb.Error as exc:
            raise ConfigError(f"this DuckDB ({duckdb.__version__}) cannot make a read-only store connection "
                              f"({_first_line(exc)}); install duckdb>=1.2") from None


def query(store_dir: str | os.PathLike, sql: str) -> pa.Table:
    """Run the query ``sql`` over the store's views (see :func:`open_store`); the result as a ``pyarrow.Table``.

    ``sql`` must be one read-only query (module docstring). Anything else, and SQL errors, are :class:`ConfigError`
    (one line).
    """
    import duckdb

    con = open_store(store_dir)
    try:
        relation = _run(con, sql)
        return relation.to_arrow_table() if relation is not None else pa.table({})
    except duckdb.Error as exc:
        raise ConfigError(f"query: {_first_line(exc)}") from None
    finally:
        con.close()


def iter_query(store_dir: str | os.PathLike, sql: str, batch_rows: int = 65_536) -> Iterator[pa.RecordBatch]:
    """Like :func:`query`, streamed as record batches of at most ``batch_rows`` rows (for large outputs)."""
    import duckdb

    con = open_store(store_dir)
    try:
        relation = _run(con, sql)
        if relation is None:
            return
        reader = relation.to_arrow_reader(batch_rows)
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                break
            except OSError as exc:  # an error while streaming (a failing cast...) surfaces through Arrow
                raise ConfigError(f"query: {_first_line(exc)}") from None
            yield batch
    except duckdb.Error as exc:
        raise ConfigError(f"query: {_first_line(exc)}") from None
    finally:
        con.close()


def _run(con: duckdb.DuckDBPyConnection, sql: str):
    """The relation of the one read-only statement ``sql``; :class:`ConfigError` for anything else."""
    statement = _read_only_statement(con, sql)
    return con.sql(statement.query)


def _read_only_statement(con: duckdb.DuckDBPyConnection, sql: str):
    """The single statement of ``sql`` as DuckDB parses it, if it is a query; else :class:`ConfigError`."""
    statements = con.extract_statements(sql)  # a syntax error is a duckdb.ParserException
    if not statements:
        raise ConfigError("query: empty SQL")
    if len(statements) > 1:
        raise ConfigError(f"query: one statement at a time, got {len(statements)}")
    statement = statements[0]
    kind = statement.type.name
    if kind == "EXPLAIN":
        match = _EXPLAIN_PREFIX.match(statement.query)
        inner = con.extract_statements(statement.query[match.end():]) if match else []
        if len(inner) != 1 or inner[0].type.name != "SELECT":
            raise ConfigError("query: EXPLAIN of a read-only query only (SELECT, WITH, FROM, DESCRIBE, SUMMARIZE...)")
    elif kind not in _QUERY_TYPES:
        hint = " (a PIVOT needs an explicit IN (...) list here)" if kind == "MULTI" else ""
        raise ConfigError(f"query: the store is read-only: only queries (SELECT, WITH, FROM, DESCRIBE, SHOW, "
                          f"SUMMARIZE, EXPLAIN) are allowed, not {kind}{hint}")
    return statement


def _shard_filesystem(files: list[str]):
    """An fsspec file system (protocol :data:`SHARD_PROTOCOL`) that opens the local ``files``, only for reading.

    Every other path, and every write, rename or delete, is a ``PermissionError``: even a query that got past every
    other check could not change a shard.
    """
    try:
        from fsspec.spec import AbstractFileSystem
    except ModuleNotFoundError:
        raise ConfigError("querying a store needs the fsspec package (pip install fsspec)") from None

    allowed = frozenset(files)

    def refuse(self, path, *args, **kwargs):
        raise PermissionError(f"{path}: the store is read-only")

    class ShardFileSystem(AbstractFileSystem):
        protocol = SHARD_PROTOCOL
        cachable = False

        def _local(self, path) -> str:
            local = self._strip_protocol(str(path))
            if local not in allowed:
                raise PermissionError(f"{local}: not a shard of this store")
            return local

        def _open(self, path, mode="rb", **kwargs):
            if mode != "rb":
                raise PermissionError(f"{path}: the store is read-only")
            return _ShardFile(self._local(path))

        def info(self, path, **kwargs):
            local = self._local(path)
            st = os.stat(local)
            return {"name": local, "size": st.st_size, "type": "file", "mtime": st.st_mtime}

        def ls(self, path, detail=True, **kwargs):
            info = self.info(path)
            return [info] if detail else [info["name"]]

        def glob(self, path, **kwargs):
            local = self._strip_protocol(str(path))
            return [local] if local in allowed else []

        def modified(self, path):
            return datetime.fromtimestamp(self.info(path)["mtime"], tz=timezone.utc)

        def created(self, path):
            return self.modified(path)

        _rm = rm = rm_file = rmdir = mkdir = makedirs = mv = cp_file = copy = touch = refuse
        put = put_file = pipe = pipe_file = _put_file = refuse

    return ShardFileSystem()


class _ShardFile(io.RawIOBase):
    """A read-only file whose position is per thread.

    DuckDB shares one handle between the threads that scan a file and reads at an offset as ``seek`` then ``read``;
    with one position per thread (and ``os.pread``) those pairs cannot interleave.
    """

    def __init__(self, path: str):
        super().__init__()
        self.name = path
        self._fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))
        self._size = os.fstat(self._fd).st_size
        self._position = threading.local()
        self._lock = threading.Lock()  # only where there is no os.pread

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return getattr(self._position, "value", 0)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self.tell(), os.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError(f"negative seek position {base + offset}")
        self._position.value = base + offset
        return self._position.value

    def read(self, size: int | None = -1) -> bytes:
        position = self.tell()
        if size is None or size < 0:
            size = max(self._size - position, 0)
        chunks = []
        while size > 0:
            chunk = self._pread(size, position)
            if not chunk:
                break
            chunks.append(chunk)
            position += len(chunk)
            size -= len(chunk)
        self._position.value = position
        return b"".join(chunks)

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        memoryview(buffer).cast("B")[:len(data)] = data
        return len(data)

    def _pread(self, size: int, position: int) -> bytes:
        if hasattr(os, "pread"):
            return os.pread(self._fd, size, position)
        with self._lock:
            os.lseek(self._fd, position, os.SEEK_SET)
            return os.read(self._fd, size)

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()


# ------------------------------------------------------------------------------------------------------------ stats

#: (title, SQL) of the tables :func:`stats` returns.
_STATS_SQL: dict[str, str] = {
    # keyframe = distinct (video, time, frame): an image (null time and frame) counts as one keyframe
    "splits": """
        SELECT dataset, split, count(*) AS persons,
               count(DISTINCT (video_id, time_s, frame_index)) AS keyframes,
               count(DISTINCT video_id) AS videos
        FROM persons GROUP BY ALL ORDER BY dataset, split NULLS LAST
    """,
    "pasta": """
        SELECT dataset, pasta_vocab, part, state, count(*) AS persons
        FROM pasta_labels GROUP BY ALL ORDER BY dataset, pasta_vocab, part, persons DESC, state
    """,
    "actions": """
        SELECT dataset, action_vocab, action, any_value(action_name) AS action_name, count(*) AS persons
        FROM action_labels GROUP BY dataset, action_vocab, action ORDER BY dataset, action_vocab, persons DESC, action
    """,
    "long_tail": """
        WITH classes AS (
            SELECT 'action' AS kind, dataset, action_vocab AS vocab, action AS class_id,
                   coalesce(any_value(action_name), CAST(action AS VARCHAR)) AS class, count(*) AS examples
            FROM action_labels GROUP BY dataset, action_vocab, action
            UNION ALL
            SELECT 'pasta', dataset, pasta_vocab, NULL, pasta, count(*) FROM pasta_labels GROUP BY dataset, pasta_vocab, pasta
        )
        SELECT kind, dataset, vocab, class_id, class, examples,
               examples / sum(examples) OVER w_all AS share,
               sum(examples) OVER w_run / sum(examples) OVER w_all AS cumulative_share
        FROM classes
        WINDOW w_all AS (PARTITION BY kind, dataset, vocab),
               w_run AS (PARTITION BY kind, dataset, vocab ORDER BY examples DESC, class
                         ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
        ORDER BY kind, dataset, vocab, examples DESC, class
    """,
    # classes seen in the store; vocab_size/unseen only for shipped vocabularies
    "tail_summary": """
        WITH classes AS (
            SELECT 'action' AS kind, dataset, action_vocab AS vocab, count(*) AS examples
            FROM action_labels GROUP BY dataset, action_vocab, action
            UNION ALL
            SELECT 'pasta', dataset, pasta_vocab, count(*) FROM pasta_labels GROUP BY dataset, pasta_vocab, pasta
        ), sizes AS (SELECT vocab, count(*) AS vocab_size FROM vocabularies GROUP BY vocab)
        SELECT c.kind, c.dataset, c.vocab, count(*) AS classes, sum(c.examples) AS examples,
               count(*) FILTER (WHERE c.examples < 10) AS under_10,
               count(*) FILTER (WHERE c.examples < 100) AS under_100,
               any_value(s.vocab_size) AS vocab_size,
               any_value(s.vocab_size) - count(*) AS unseen
        FROM classes AS c LEFT JOIN sizes AS s ON s.vocab = c.vocab
        GROUP BY c.kind, c.dataset, c.vocab ORDER BY c.kind, c.dataset, c.vocab
    """,
}


def stats(store_dir: str | os.PathLike) -> dict[str, pa.Table]:
    """Summary tables of a store, by name.

    * ``splits``: ``dataset, split, persons, keyframes, videos`` (a keyframe is a distinct ``(video_id, time_s,
      frame_index)``, so an image is one keyframe);
    * ``pasta``: ``dataset, pasta_vocab, part, state, persons`` -- persons with each part state;
    * ``actions``: ``dataset, action_vocab, action, action_name, persons``;
    * ``long_tail``: every action and PaSta class (``kind``) per dataset and vocabulary, most frequent first, with
      ``class_id`` (actions only), ``class`` (the name; the id as text for an unnamed action), ``examples``, ``share`` of the group's examples and ``cumulative_share``;
    * ``tail_summary``: per kind, dataset and vocabulary: ``classes`` seen, ``examples``, ``under_10`` and
      ``under_100`` (seen classes with fewer examples), ``vocab_size`` and ``unseen`` (shipped vocabularies only).
    """
    import duckdb

    con = open_store(store_dir)
    try:
        return {name: con.sql(sql).to_arrow_table() for name, sql in _STATS_SQL.items()}
    except duckdb.Error as exc:  # e.g. a shard damaged after the store was written
        raise InputError(store_dir, None, f"cannot read the store: {_first_line(exc)}") from None
    finally:
        con.close()


# ---------------------------------------------------------------------------------------------------------- helpers

def _vocabulary_table() -> pa.Table:
    """``(vocab, id, name)`` for every shipped vocabulary."""
    from partwise import vocab

    names, ids, labels = [], [], []
    for name in vocab.available():
        v = vocab.load(name)
        names.extend([name] * len(v))
        ids.extend(v.ids)
        labels.extend(v.names)
    return pa.table({"vocab": pa.array(names, pa.string()), "id": pa.array(ids, pa.int32()),
                     "name": pa.array(labels, pa.string())})


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
