"""The person store's manifest (``DIR/manifest.json``, layout in :mod:`partwise.data.store`): reading and checking
it, recovering a store whose swap was interrupted, and the id of a source."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from partwise.errors import InputError
from partwise.io import InterruptedSwapError, recover_dir

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
SHARD_DIR = "persons"


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
