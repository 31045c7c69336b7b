"""The one JSON/YAML loading helper for user files: nesting limit first, then the parser; errors as one line.

Deeply nested input (``[[[[...`` 100 000 levels) makes Python's parsers raise ``RecursionError`` and can crash
pyarrow's JSON reader (a segmentation fault). :func:`check_nesting` therefore runs on the raw bytes *before* any
parser sees them -- the fast paths (:mod:`partwise.data.kinetics_tps`'s batched decoder and ``pyarrow.json``)
included -- and rejects more than :data:`MAX_DEPTH` levels of ``[``/``{`` with an :class:`InputError` naming the
file. :func:`loads` / :func:`load` add UTF-8 decoding, empty-file and syntax errors with the line.
"""
from __future__ import annotations

import json
import os
import re
from typing import Any, Iterable

import numpy as np

from partwise.errors import InputError

#: deepest ``[``/``{`` nesting accepted in a user's JSON or YAML file (the datasets' files nest fewer than 10 levels)
MAX_DEPTH = 64

_OPEN = np.zeros(256, np.int8)
_OPEN[[ord("["), ord("{")]] = 1
_OPEN[[ord("]"), ord("}")]] = -1


def nesting_depth(data: bytes | str) -> int:
    """Upper bound of the bracket nesting of ``data`` (brackets inside strings count too: never an underestimate)."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    if not data:
        return 0
    steps = _OPEN[np.frombuffer(data, np.uint8)]
    if not steps.any():
        return 0
    return int(np.cumsum(steps, dtype=np.int64).max())


def check_nesting(data: bytes | str, path: str | os.PathLike | None, max_depth: int = MAX_DEPTH) -> None:
    """:class:`InputError` naming ``path`` when ``data`` nests deeper than ``max_depth``."""
    if nesting_depth(data) > max_depth:
        raise InputError(path, None, f"nested more than {max_depth} levels deep")


def check_nesting_many(blobs: list[bytes], paths: Iterable[str], max_depth: int = MAX_DEPTH) -> None:
    """:func:`check_nesting` for many files at once: one pass over all bytes, the depth counted within each file
    (a file that closes more than it opens must not hide its neighbour's depth); :class:`InputError` naming the
    first file too deep."""
    paths = list(paths)
    lengths = np.fromiter(map(len, blobs), np.int64, len(blobs))
    if not lengths.any():
        return
    steps = _OPEN[np.frombuffer(b"".join(blobs), np.uint8)]
    if not steps.any():
        return
    depth = np.cumsum(steps, dtype=np.int64)
    full = np.flatnonzero(lengths)
    starts = (np.cumsum(lengths) - lengths)[full]
    before = np.where(starts > 0, depth[np.maximum(starts - 1, 0)], 0)
    deepest = np.maximum.reduceat(depth, starts) - before
    over = np.flatnonzero(deepest > max_depth)
    if len(over):
        raise InputError(paths[int(full[over[0]])], None, f"nested more than {max_depth} levels deep")


def loads(data: bytes | str, path: str | os.PathLike | None, *, label: str = "bad JSON", check_text: bool = True,
          **kwargs: Any) -> Any:
    """Parse JSON ``data`` read from ``path``; :class:`InputError` (with the line) for every problem, and (unless
    ``check_text`` is off: a caller that checks its strings itself) naming the key of a string with no UTF-8 form
    (:func:`lone_surrogate`), which no table or file could hold."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(path, None, f"not UTF-8 text (byte {exc.start})") from None
    else:
        text = data
    if not text.strip():
        raise InputError(path, None, "empty file")
    check_nesting(text, path)
    try:
        value = json.loads(text, **kwargs)
    except json.JSONDecodeError as exc:
        raise InputError(path, exc.lineno, f"{label}: {exc.msg} (column {exc.colno})") from None
    except RecursionError:  # pragma: no cover - check_nesting keeps the depth far below the limit
        raise InputError(path, None, "nested too deeply") from None
    if check_text and _SURROGATE_ESCAPE.search(text):  # rare: only then walk the value
        found = lone_surrogate(value)
        if found is not None:
            raise InputError(path, found[0] or None, found[1])
    return value


#: a JSON escape of a UTF-16 surrogate (``\ud800``); paired ones decode to one character, a lone one has no UTF-8
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def text_problem(value: str) -> str | None:
    """Why a string cannot be stored as UTF-8 text (JSON's ``"\\ud800"`` escape gives a lone surrogate), or None."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"not valid Unicode text (lone surrogate {value[exc.start]!r} at character {exc.start})"
    return None


def lone_surrogate(value: Any) -> tuple[str, str] | None:
    """``(key path, reason)`` of the first string of a parsed JSON value, key or value, in document order, that has
    no UTF-8 form (key paths as ``humans[0].parts.head.verb``; a bad key as ``parts.'\\ud800'``), or None."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            reason = text_problem(item)
            if reason is not None:
                return where, reason
        elif isinstance(item, dict):
            children = []
            for key, child in item.items():
                if isinstance(key, str) and text_problem(key) is not None:
                    return f"{where}.{key!a}".lstrip("."), f"key {text_problem(key)}"
                children.append((child, f"{where}.{key}".lstrip(".")))
            stack.extend(reversed(children))
        elif isinstance(item, list):
            stack.extend(reversed([(child, f"{where}[{i}]") for i, child in enumerate(item)]))
    return None


def read_bytes(path: str | os.PathLike) -> bytes:
    """A user's file's bytes; :class:`InputError` naming it when it is missing, a directory, a loop, unreadable."""
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise InputError(path, None, f"cannot read: {exc.strerror or exc}") from None


def load(path: str | os.PathLike, **kwargs: Any) -> Any:
    """:func:`loads` of the file ``path``."""
    return loads(read_bytes(path), os.fspath(path), **kwargs)


def _unique_key_loader():
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping (plain YAML keeps the last one silently:
    a config with ``lr`` set twice would train with whichever came last)."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            seen = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                    seen.add(key)
                except TypeError:  # an unhashable key: the base class reports it
                    continue
                if duplicate:
                    raise InputError(None, key_node.start_mark.line + 1, f"key {key!r} given twice")
            return super().construct_mapping(node, deep)

    return UniqueKeyLoader


def load_yaml_text(text: str, path: str | os.PathLike) -> Any:
    """``yaml.safe_load`` behind the same nesting limit, refusing duplicate keys; :class:`InputError` naming the file
    (and line)."""
    import yaml

    check_nesting(text, path)
    try:
        return yaml.load(text, Loader=_unique_key_loader())  # noqa: S506 -- a SafeLoader subclass
    except InputError as exc:  # raised by the loader without the file's name
        raise InputError(path, exc.problem.where, exc.problem.reason) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise InputError(path, mark.line + 1 if mark else None, "invalid YAML") from None
    except RecursionError:
        raise InputError(path, None, "nested too deeply") from None
