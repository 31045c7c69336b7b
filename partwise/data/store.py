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

This module writes (:func:`ingest`, the shards); the manifest is read in :mod:`partwise.data.store_manifest` and
queries run in :mod:`partwise.data.store_query`; every name is importable from here.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from partwise.data import formats
from partwise.data.records import PERSON_SCHEMA, check_values, conform
# the manifest and the query side (one module each), importable from here as before
from partwise.data.store_manifest import (MANIFEST, SCHEMA_VERSION, SHARD_DIR, _empty_manifest, _recover,
                                          read_manifest, source_id)
from partwise.data.store_query import SHARD_PROTOCOL, iter_query, open_store, query, stats
from partwise.data.store_query import _connect, _lock_down, _read_only_statement, _ShardFile  # noqa: F401  (view)
from partwise.errors import ConfigError, InputError
from partwise.io import atomic_dir, atomic_write

#: rows per Parquet shard
SHARD_ROWS = 250_000
#: rows per Parquet row group (and per progress-bar step while writing)
ROW_GROUP_ROWS = 65_536


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
    stream = None
    if with_pasta is None:
        if hasattr(load_format(format_name), "iter_records"):
            stream = iter_source(format_name, path, split=split, progress=progress)
        else:
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
        "datasets": [] if stream else _distinct(table, "dataset"),
        "splits": [] if stream else _distinct(table, "split"),
        "rows": 0 if stream else table.num_rows,
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
            if stream is None:
                entry["shards"] = write_shards(table, tmp, entry["id"], shard_rows=shard_rows, progress=progress)
            else:
                entry.update(write_shard_stream(stream, tmp, entry["id"], shard_rows=shard_rows))
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


def iter_source(format_name: str, path: str | os.PathLike, *, split: str | None = None,
                progress: bool = False) -> Iterator[pa.Table]:
    """:func:`read_source` as a stream of checked tables, for a format module with ``iter_records`` (same
    arguments as ``read_records``, yielding tables in order). The format and the path are checked at the call."""
    module = load_format(format_name)
    if not Path(path).exists():
        raise InputError(path, None, "no such file or directory")

    def checked() -> Iterator[pa.Table]:
        for table in module.iter_records(str(path), split=split, progress=progress):
            if table.schema != PERSON_SCHEMA:
                table = conform(table)
            yield check_values(table, str(path))

    return checked()


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


def write_shard_stream(tables: Iterable[pa.Table], store_dir: Path, source: str, *,
                       shard_rows: int = SHARD_ROWS) -> dict:
    """:func:`write_shards` for tables that arrive one after another: the same shards and row groups, written as
    the rows come, so memory holds at most one row group besides the table being read. Returns ``shards``,
    ``rows``, ``datasets`` and ``splits`` for the manifest entry."""
    shards: list[str] = []
    datasets: set = set()
    splits: set = set()
    rows = in_shard = 0
    pending: list[pa.Table] = []
    pending_rows = 0
    writer = None

    def write(group: pa.Table) -> None:
        nonlocal writer, in_shard
        if writer is None:
            relative = f"{SHARD_DIR}/{source}-{len(shards):05d}.parquet"
            writer = pq.ParquetWriter(store_dir / relative, PERSON_SCHEMA, compression="zstd")
            shards.append(relative)
        writer.write_table(group, row_group_size=ROW_GROUP_ROWS)
        in_shard += group.num_rows
        if in_shard == shard_rows:
            writer.close()
            writer, in_shard = None, 0

    try:
        for table in tables:
            rows += table.num_rows
            datasets.update(table.column("dataset").unique().to_pylist())
            splits.update(table.column("split").unique().to_pylist())
            pending.append(table)
            pending_rows += table.num_rows
            while pending_rows >= (size := min(ROW_GROUP_ROWS, shard_rows - in_shard)):
                buffered = pa.concat_tables(pending)
                write(buffered.slice(0, size))
                pending, pending_rows = [buffered.slice(size)], pending_rows - size
        if pending_rows or not shards:
            write(pa.concat_tables(pending) if pending else PERSON_SCHEMA.empty_table())
    finally:
        if writer is not None:
            writer.close()
    return {"datasets": sorted(v for v in datasets if v is not None),
            "splits": sorted(v for v in splits if v is not None), "rows": rows, "shards": shards}


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


__all__ = ["MANIFEST", "SCHEMA_VERSION", "SHARD_PROTOCOL", "SHARD_ROWS", "ingest", "iter_query", "open_store",
           "query", "read_manifest", "read_source", "source_id", "stats", "write_shards"]
