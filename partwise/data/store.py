"""The person store: canonical records of any number of annotation sources as Parquet shards, queried with DuckDB.

Layout of a store directory ``DIR``::

    DIR/manifest.json                         what is in the store (below)
    DIR/persons/<source-id>-<00000>.parquet   person shards, at most SHARD_ROWS rows each, zstd-compressed

Every shard holds rows of :data:`partwise.data.records.PERSON_SCHEMA` -- one person at one keyframe (or in one
image), with the columns documented in :mod:`partwise.data.records` (``dataset, split, video_id, time_s,
frame_index, width, height, x1..y2`` normalized, ``px1..py2`` pixels, ``person_id, score, actions`` (the dataset's
own integer ids), ``action_vocab, pasta`` (``"part: state"`` names), ``pasta_vocab, part_boxes, objects,
video_label, source``). A source with no rows still gets one (empty) shard, so every source's columns are typed.

``manifest.json``::

    {"schema_version": 1,
     "sources": [{"id": "ava-3f2a9c01d4", "format": "ava", "path": "/abs/path/ava_train_v2.2.csv",
                  "datasets": ["ava"], "splits": ["train"], "rows": 12345,
                  "shards": ["persons/ava-3f2a9c01d4-00000.parquet"], "ingested_at": "2026-01-01T00:00:00Z"}]}

A source is identified by its format and its absolute path; ingesting the same pair again replaces its shards,
ingesting another pair adds to the store (datasets are meant to be queried together). Every ingest builds the new
store in a temporary directory beside ``DIR`` (existing shards are hard-linked, not copied) and swaps it in with
:func:`partwise.io.atomic_dir`: a failed or interrupted ingest leaves the store as it was. One writer at a time.
Where the swap needs two renames (no atomic exchange on that file system) and was killed between them, the next
command that opens the store (:func:`read_manifest`, :func:`open_store`, :func:`ingest`) renames the old store back
(:func:`partwise.io.recover_dir`).

:func:`open_store` gives a read-only, in-memory DuckDB connection with the views

* ``persons`` -- every shard, all PERSON_SCHEMA columns;
* ``pasta_labels`` -- one row per person and PaSta name, with ``part`` and ``state`` split out of ``"part: state"``;
* ``action_labels`` -- one row per person and action id, with ``action_name`` from the vocabulary named in
  ``action_vocab`` when it is a shipped one (:func:`partwise.vocab.available`), null otherwise;
* ``vocabularies`` -- ``(vocab, id, name)`` for every shipped vocabulary.

Example: every HAKE person whose hand holds something while the head inspects::

    SELECT video_id, time_s, person_id FROM persons
    WHERE list_contains(pasta, 'hand: hold') AND list_contains(pasta, 'head: inspect')

Queries are read-only and see no file but the store's shards (SQL may come from anyone who can pass arguments to
``partwise data query``). The barrier is DuckDB's own configuration, set once the views exist and then locked:

* the shards are read through a file system of this module (URLs ``partwise-shard:///abs/path``) that opens only the
  manifest's shard files and only for reading, so ``COPY ... TO`` a shard fails as well;
* ``allowed_paths`` lists exactly those URLs and ``enable_external_access=false`` refuses every other path: no
  ``COPY``/``EXPORT``/``ATTACH`` of files, no ``read_csv``/``read_text``/``glob`` elsewhere (manifest.json included);
* no extension installs or loads (``autoinstall/autoload_known_extensions=false``; ``INSTALL``/``LOAD`` are refused
  by the external-access setting), no scans of Python variables (``python_enable_replacements=false``);
* ``lock_configuration=true``: no ``SET``/``RESET``/``PRAGMA`` can undo any of this (nor set a profiling or log file).

On top of that :func:`query` and :func:`iter_query` run one statement only, and only a query (``SELECT``, ``WITH``,
``FROM``, ``VALUES``, ``DESCRIBE``, ``SHOW``, ``SUMMARIZE``, ``PIVOT ... IN (...)``, ``EXPLAIN`` of those), as
DuckDB's own parser classifies it; anything else is a one-line :class:`ConfigError`. DuckDB spills large
intermediate results to a private ``partwise-query-*`` folder in the system's temporary directory (``$TMPDIR``),
deleted with the connection (DuckDB always allows its own temporary directory, so it must not be a user's folder).
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import tempfile
import threading
import weakref
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from partwise.data import formats
from partwise.data.records import PERSON_SCHEMA, check_values, conform
from partwise.errors import ConfigError, InputError
from partwise.io import InterruptedSwapError, atomic_dir, atomic_write, recover_dir

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
SHARD_DIR = "persons"
#: rows per Parquet shard
SHARD_ROWS = 250_000
#: rows per Parquet row group (and per progress-bar step while writing)
ROW_GROUP_ROWS = 65_536

#: columns that identify a person row in the unnested label views
_ID_COLUMNS = ("dataset", "split", "video_id", "time_s", "frame_index", "person_id",
               "x1", "y1", "x2", "y2", "score", "source")


# --------------------------------------------------------------------------------------------------------- manifest

def _empty_manifest() -> dict:
    return {"schema_version": SCHEMA_VERSION, "sources": []}


def read_manifest(store_dir: str | os.PathLike) -> dict:
    """The parsed ``manifest.json`` of a store; :class:`InputError` naming the dir when it is missing or invalid."""
    store_dir = Path(store_dir)
    path = store_dir / MANIFEST
    _recover(store_dir)
    if not store_dir.is_dir():
        raise InputError(store_dir, None, "no such store directory (create one with `partwise data ingest`)")
    if not path.is_file():
        raise InputError(store_dir, None, f"not a partwise store: no {MANIFEST} (create one with `partwise data ingest`)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(path, getattr(exc, "lineno", None), f"invalid JSON: {exc}") from None
    if not isinstance(manifest, dict):
        raise InputError(path, None, "expected a JSON object")
    version = manifest.get("schema_version")
    if version != SCHEMA_VERSION:
        raise InputError(path, "schema_version", f"unsupported store version {version!r} (this partwise reads {SCHEMA_VERSION})")
    sources = manifest.get("sources")
    if not isinstance(sources, list):
        raise InputError(path, "sources", "expected a list")
    for k, source in enumerate(sources):
        if not isinstance(source, dict):
            raise InputError(path, f"sources[{k}]", "expected an object")
        for key, kind in (("id", str), ("format", str), ("path", str), ("rows", int), ("shards", list)):
            if not isinstance(source.get(key), kind):
                raise InputError(path, f"sources[{k}].{key}", f"missing or not a {kind.__name__}")
        for j, shard in enumerate(source["shards"]):
            if not isinstance(shard, str) or Path(shard).is_absolute() or ".." in Path(shard).parts:
                raise InputError(path, f"sources[{k}].shards[{j}]", "expected a path relative to the store")
            if not (store_dir / shard).is_file():
                raise InputError(store_dir, f"sources[{k}].shards[{j}]", f"shard file {shard} is missing")
    return manifest


def _recover(store_dir: Path) -> None:
    """Put back a store whose swap was killed between its two renames (:func:`partwise.io.recover_dir`)."""
    try:
        recover_dir(store_dir)
    except InterruptedSwapError as exc:
        raise InputError(None, None, str(exc)) from None
    except OSError as exc:
        raise InputError(store_dir, None, f"missing, and the copy left by an interrupted ingest could not be renamed "
                                          f"back: {exc.strerror or exc}") from None


def source_id(format_name: str, path: str | os.PathLike) -> str:
    """Stable id of a source: the format name and a hash of the absolute path (``"ava-3f2a9c01d4"``)."""
    digest = hashlib.sha1(str(Path(path).resolve()).encode("utf-8")).hexdigest()[:10]
    return f"{format_name}-{digest}"


# ----------------------------------------------------------------------------------------------------------- ingest

def ingest(format_name: str, path: str | os.PathLike, out_dir: str | os.PathLike, *, split: str | None = None,
           progress: bool = True, shard_rows: int = SHARD_ROWS, with_pasta: str | os.PathLike | None = None) -> dict:
    """Read ``path`` with format ``format_name`` and add it to the store ``out_dir`` (created if needed).

    ``with_pasta`` (format ``gio`` only): a HAKE-AVA PaSta folder or file; the source is then the joint view of
    both (:func:`partwise.data.gio.read_joint`: PaSta persons with the GIO objects attached, dataset
    ``hake-ava+gio``).

    Returns the manifest entry of the source (``rows``, ``datasets``, ``splits``, ``shards``...). Re-ingesting the
    same format and path replaces that source. Nothing is written unless reading succeeded, and the store is
    replaced atomically (see the module docstring). Raises :class:`InputError` for a bad input or a directory that
    is not a store, :class:`ConfigError` for an unknown format.
    """
    if shard_rows < 1:
        raise ValueError("shard_rows must be positive")
    out_dir = Path(out_dir)
    manifest = _existing_manifest(out_dir)
    if with_pasta is None:
        table = read_source(format_name, path, split=split, progress=progress)
        entry_format, entry_id = format_name, source_id(format_name, path)
    else:
        if format_name != "gio":
            raise ConfigError(f"--with-pasta joins HAKE-AVA PaSta to GIO objects: the format must be gio, not {format_name!r}")
        from partwise.data import gio

        for source in (path, with_pasta):
            if not Path(source).exists():
                raise InputError(source, None, "no such file or directory")
        table = check_values(conform(gio.read_joint(str(with_pasta), str(path), split=split, progress=progress)))
        entry_format = "gio+hake-ava"
        entry_id = source_id(entry_format, f"{Path(path).resolve()}|{Path(with_pasta).resolve()}")
    entry = {
        "id": entry_id,
        "format": entry_format,
        "path": str(Path(path).resolve()),
        "datasets": _distinct(table, "dataset"),
        "splits": _distinct(table, "split"),
        "rows": table.num_rows,
        "shards": [],
        "ingested_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    kept = [s for s in manifest["sources"] if s["id"] != entry["id"]]
    replaced = {shard for s in manifest["sources"] if s["id"] == entry["id"] for shard in s["shards"]}
    created = _missing_ancestors(out_dir)
    try:
        with atomic_dir(out_dir, overwrite=True) as tmp:
            if out_dir.is_dir():
                _link_tree(out_dir, tmp, skip={MANIFEST, *replaced})
            (tmp / SHARD_DIR).mkdir(exist_ok=True)
            entry["shards"] = write_shards(table, tmp, entry["id"], shard_rows=shard_rows, progress=progress)
            new_manifest = {"schema_version": SCHEMA_VERSION, "sources": [*kept, entry]}
            with atomic_write(tmp / MANIFEST) as fh:
                json.dump(new_manifest, fh, indent=1)
                fh.write("\n")
    except BaseException:
        for directory in created:  # parents made for a store that never came to be
            with contextlib.suppress(OSError):
                directory.rmdir()
        raise
    return entry


def _missing_ancestors(path: Path) -> list[Path]:
    """Ancestors of ``path`` that do not exist yet, deepest first."""
    return [parent for parent in path.absolute().parents if not parent.exists()]


def read_source(format_name: str, path: str | os.PathLike, *, split: str | None = None,
                progress: bool = False) -> pa.Table:
    """``read_records`` of format ``format_name``, checked: missing path and unknown format are one-line errors."""
    module = load_format(format_name)
    if not Path(path).exists():
        raise InputError(path, None, "no such file or directory")
    table = module.read_records(str(path), split=split, progress=progress)
    if not isinstance(table, pa.Table):
        raise TypeError(f"{module.__name__}.read_records returned {type(table).__name__}, not a pyarrow.Table")
    if table.schema != PERSON_SCHEMA:
        table = conform(table)
    return check_values(table, str(path))


def load_format(format_name: str):
    """The module of a format named on the command line; :class:`ConfigError` listing the known ones otherwise."""
    try:
        return formats.get_format(format_name)
    except KeyError as exc:
        raise ConfigError(exc.args[0]) from None
    except ModuleNotFoundError as exc:
        if exc.name == formats.FORMATS.get(format_name):
            raise ConfigError(f"format {format_name!r} is not available in this installation") from None
        raise


def write_shards(table: pa.Table, store_dir: Path, source: str, *, shard_rows: int = SHARD_ROWS,
                 progress: bool = False) -> list[str]:
    """Write ``table`` as ``persons/<source>-NNNNN.parquet`` shards under ``store_dir``; their relative paths.

    An empty table still gets one shard (so the source's columns keep their types).
    """
    from partwise.progress import bar as tqdm

    shards = []
    starts = range(0, max(table.num_rows, 1), shard_rows)
    with tqdm(total=table.num_rows, unit="person", desc="writing", disable=not progress, leave=False) as bar:
        for number, start in enumerate(starts):
            relative = f"{SHARD_DIR}/{source}-{number:05d}.parquet"
            chunk = table.slice(start, shard_rows)
            with pq.ParquetWriter(store_dir / relative, PERSON_SCHEMA, compression="zstd") as writer:
                if chunk.num_rows == 0:
                    writer.write_table(chunk)
                for offset in range(0, chunk.num_rows, ROW_GROUP_ROWS):
                    group = chunk.slice(offset, ROW_GROUP_ROWS)
                    writer.write_table(group, row_group_size=ROW_GROUP_ROWS)
                    bar.update(group.num_rows)
            shards.append(relative)
    return shards


def _existing_manifest(out_dir: Path) -> dict:
    """The manifest of ``out_dir`` if it is a store, an empty one if it is absent or an empty dir; else an error."""
    _recover(out_dir)  # before deciding the store is absent: an interrupted swap may have left it aside
    if not out_dir.exists():
        return _empty_manifest()
    if not out_dir.is_dir():
        raise InputError(out_dir, None, "exists and is not a directory")
    if not (out_dir / MANIFEST).exists() and not any(out_dir.iterdir()):
        return _empty_manifest()
    if not (out_dir / MANIFEST).exists():
        raise InputError(out_dir, None, f"exists, is not empty and is not a partwise store (no {MANIFEST})")
    return read_manifest(out_dir)


def _link_tree(src: Path, dst: Path, skip: set[str]) -> None:
    """Hard-link (copy where links fail) every file of ``src`` into ``dst`` except the relative paths in ``skip``."""
    for root, dirs, files in os.walk(src):
        rel_root = Path(root).relative_to(src)
        (dst / rel_root).mkdir(parents=True, exist_ok=True)
        for name in files:
            rel = (rel_root / name).as_posix()
            if rel in skip:
                continue
            try:
                os.link(Path(root) / name, dst / rel)
            except OSError:
                shutil.copy2(Path(root) / name, dst / rel)


def _distinct(table: pa.Table, column: str) -> list[str]:
    values = table.column(column).unique().to_pylist()
    return sorted(v for v in values if v is not None)


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


__all__ = ["MANIFEST", "SCHEMA_VERSION", "SHARD_PROTOCOL", "SHARD_ROWS", "ingest", "iter_query", "open_store",
           "query", "read_manifest", "read_source", "source_id", "stats", "write_shards"]
