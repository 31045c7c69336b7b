"""The dataset formats ``partwise data`` knows, as a plain dict from CLI name to module.

Every format module provides

* ``read_records(path, *, split=None, progress=False) -> pyarrow.Table`` -- the canonical person table
  (:data:`partwise.data.records.PERSON_SCHEMA`); raises :class:`partwise.errors.InputError` on the first problem.
  ``path`` is the annotation folder as the dataset distributes it, or one of its files.
* ``validate(path) -> list[Problem]`` -- every problem found (file, line or key, reason); empty when valid.
* ``write_records(table, path) -> None`` -- write the format from canonical records where the information exists
  (used by ``partwise data convert`` and by the synthetic generator); atomic.
"""
from __future__ import annotations

import importlib
from types import ModuleType

#: CLI format name -> module path.
FORMATS: dict[str, str] = {
    "ava": "partwise.data.ava",
    "ava-kinetics": "partwise.data.ava_kinetics",
    "hake-ava": "partwise.data.hake_ava",
    "gio": "partwise.data.gio",
    "kinetics-tps": "partwise.data.kinetics_tps",
    "hake-image": "partwise.data.hake_image",
    "hake-instance": "partwise.data.hake_instance",
    "hico-det": "partwise.data.hico_det",
}


def get_format(name: str) -> ModuleType:
    """The module implementing format ``name``; ``KeyError`` with the known names otherwise."""
    try:
        module_path = FORMATS[name]
    except KeyError:
        raise KeyError(f"unknown format {name!r}; known: {', '.join(FORMATS)}") from None
    return importlib.import_module(module_path)
