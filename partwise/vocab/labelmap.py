"""Label-map readers and writers: both pbtxt dialects and the ``id: name`` text list.

Dialects:

* ``item``  -- ``item {\\n  name: "walk"\\n  id: 14\\n}`` (ActivityNet AVA files, HAKE-AVA ``part_state.pbtxt``)
* ``label`` -- ``label {\\n  name: "walk"\\n  label_id: 14\\n  label_type: PERSON_MOVEMENT\\n}`` (AVA release files)
* ``lines`` -- ``14: walk`` one per line (mmaction2's ``ava_label_map.txt``)
"""
from __future__ import annotations

import os
import re

from partwise.errors import InputError
from partwise.io import atomic_write

_FIELD = re.compile(r'^\s*(name|id|label_id|label_type|display_name)\s*:\s*(.*?)\s*$')


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def read_label_map(path: str | os.PathLike, with_types: bool = False):
    """Read a label map of any dialect. Returns ``{id: name}`` in file order (``{id: (name, label_type)}`` if
    ``with_types``). Raises :class:`InputError` naming the file and line for malformed entries."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise InputError(path, None, f"cannot read label map: {exc.strerror}") from None
    try:
        # decoded whole (not through a text stream, which decodes in chunks) so the byte offset is the file's
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(path, None, f"not UTF-8 text (byte {exc.start})") from None
    lines = text.splitlines()
    out: dict[int, object] = {}
    if not any(line.strip().endswith("{") for line in lines):
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            key, sep, name = line.partition(":")
            if not sep or not key.strip().isdigit():
                raise InputError(path, number, f"expected 'id: name', got {line.strip()!r}")
            class_id = int(key)
            if class_id in out:
                raise InputError(path, number, f"duplicate id {class_id}")
            out[class_id] = (name.strip(), None) if with_types else name.strip()
        if not out:
            raise InputError(path, None, "empty label map")
        return out
    current: dict[str, str] | None = None
    start = 0
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.endswith("{"):
            if current is not None:
                raise InputError(path, number, "nested block")
            current, start = {}, number
            continue
        if stripped == "}":
            if current is None:
                raise InputError(path, number, "'}' without an open block")
            raw_id = current.get("id", current.get("label_id"))
            if "name" not in current or raw_id is None:
                raise InputError(path, start, "block without name and id")
            try:
                class_id = int(raw_id)
            except ValueError:
                raise InputError(path, start, f"id is not an integer: {raw_id!r}") from None
            if class_id in out:
                raise InputError(path, start, f"duplicate id {class_id}")
            name = _unquote(current["name"])
            out[class_id] = (name, current.get("label_type")) if with_types else name
            current = None
            continue
        match = _FIELD.match(line)
        if current is None or not match:
            raise InputError(path, number, f"unexpected line {stripped!r}")
        current[match.group(1)] = match.group(2)
    if current is not None:
        raise InputError(path, start, "block not closed")
    if not out:
        raise InputError(path, None, "empty label map")
    return out


def format_label_map(mapping: dict, dialect: str = "item") -> str:
    """Text of a label map. ``mapping`` is ``{id: name}`` or, for the ``label`` dialect, ``{id: (name, type)}``."""
    chunks = []
    for class_id, value in mapping.items():
        name, label_type = (value if isinstance(value, tuple) else (value, None))
        if dialect == "item":
            chunks.append(f'item {{\n  name: "{name}"\n  id: {int(class_id)}\n}}\n')
        elif dialect == "label":
            body = f'label {{\n  name: "{name}"\n  label_id: {int(class_id)}\n'
            if label_type:
                body += f"  label_type: {label_type}\n"
            chunks.append(body + "}\n")
        elif dialect == "lines":
            chunks.append(f"{int(class_id)}: {name}\n")
        else:
            raise ValueError(f"unknown label-map dialect {dialect!r} (item, label, lines)")
    return "".join(chunks)


def write_label_map(mapping: dict, path: str | os.PathLike, dialect: str = "item") -> None:
    """Write a label map atomically in the given dialect (``item``, ``label`` or ``lines``)."""
    text = format_label_map(mapping, dialect)
    with atomic_write(path) as fh:
        fh.write(text)
