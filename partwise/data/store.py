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

:func:`open_store` gives an in-memory DuckDB connection with the views

* ``persons`` -- every shard, all PERSON_SCHEMA columns;
* ``pasta_labels`` -- one row per person and PaSta name, with ``part`` and ``state`` split out of ``"part: state"``;
* ``action_labels`` -- one row per person and action id, with ``action_name`` from the vocabulary named in
  ``action_vocab`` when it is a shipped one (:func:`partwise.vocab.available`), null otherwise;
* ``vocabularies`` -- ``(vocab, id, name)`` for every shipped vocabulary.

Example: every HAKE person whose hand holds something while the head inspects::

    SELECT video_id, time_s, person_id FROM persons
    WHERE list_contains(pasta, 'hand: hold') AND list_contains(pasta, 'head: inspect')
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from partwise.data import formats
from partwise.data.records import PERSON_SCHEMA, conform
from partwise.errors import ConfigError, InputError
from partwise.io import atomic_dir, atomic_write

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
        table = conform(gio.read_joint(str(with_pasta), str(path), split=split, progress=progress))
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
    return table


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
    from tqdm import tqdm

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

def open_store(store_dir: str | os.PathLike) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the views ``persons``, ``pasta_labels``, ``action_labels`` and the table
    ``vocabularies`` over the store ``store_dir`` (see the module docstring). The caller closes it."""
    store_dir = Path(store_dir)
    manifest = read_manifest(store_dir)
    files = [str((store_dir / shard).resolve()) for source in manifest["sources"] for shard in source["shards"]]
    con = duckdb.connect()
    try:
        con.register("_vocabularies", _vocabulary_table())
        con.execute("CREATE TABLE vocabularies AS SELECT * FROM _vocabularies")
        con.unregister("_vocabularies")
        if files:
            listing = ", ".join(_sql_string(f) for f in files)
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
    return con


def query(store_dir: str | os.PathLike, sql: str) -> pa.Table:
    """Run ``sql`` over the store's views (see :func:`open_store`); the result as a ``pyarrow.Table``.

    A statement without rows (``CREATE ...``) gives an empty table. SQL errors are :class:`ConfigError` (one line).
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
    if not sql.strip():
        raise ConfigError("query: empty SQL")
    return con.sql(sql)


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


__all__ = ["MANIFEST", "SCHEMA_VERSION", "SHARD_ROWS", "ingest", "iter_query", "open_store", "query",
           "read_manifest", "read_source", "source_id", "stats", "write_shards"]
