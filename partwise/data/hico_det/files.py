"""Reading HICO-DET's files: MATLAB files through scipy and JSON through :mod:`partwise.data.safe_json`, both with
the cyclic garbage collector paused while they build their many small objects; a missing or unreadable file is a
one-line :class:`~partwise.errors.InputError` naming it."""
from __future__ import annotations

import contextlib
import gc
import io
import struct
import zlib
from pathlib import Path
from typing import Any, Iterable, Iterator

from partwise.errors import InputError


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building millions of small containers (JSON parsing), which
    would otherwise rescan them all on every generation-2 pass; restores the previous state."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


#: MAT v5 data type of a zlib-compressed element (one variable)
_MI_COMPRESSED = 15


def _mat5_inflated(data: bytes) -> tuple[bytes | None, str | None]:
    """``(file for scipy, problem)`` of a MAT v5 file. scipy's reader trusts the sizes in the element tags: a
    compressed variable whose zlib stream ends early, or whose inner tag declares more bytes than the stream holds,
    makes it read past its buffer (a crash, not an exception). So every element must fit in the file and every
    compressed one must inflate completely to at least what its inner tag declares. As each compressed variable
    is inflated here anyway, the file handed to scipy holds it inflated (the same element, uncompressed): scipy
    does not inflate it a second time. ``(None, None)`` for files of other versions (v4, v7.3/HDF5), left to scipy."""
    endian = {b"IM": "<", b"MI": ">"}.get(data[126:128])
    if len(data) < 128 or endian is None or struct.unpack_from(endian + "H", data, 124)[0] != 0x0100:
        return None, None
    out, pos, number = [data[:128]], 128, 0
    while pos + 8 <= len(data):
        kind, size = struct.unpack_from(endian + "II", data, pos)
        if kind >> 16:  # small data element: type and size share the first word, data in the second
            out.append(data[pos:pos + 8])
            pos += 8
            continue
        end = pos + 8 + size
        if end > len(data):
            return None, f"element {number} declares {size} bytes, the file holds {len(data) - pos - 8}"
        if kind != _MI_COMPRESSED:
            out.append(data[pos:end])
        else:
            try:
                inflater = zlib.decompressobj()
                element = inflater.decompress(data[pos + 8:end])
            except zlib.error as exc:
                return None, f"compressed variable {number}: {exc}"
            if not inflater.eof:
                return None, f"compressed variable {number} is cut short"
            if len(element) < 8 or 8 + struct.unpack_from(endian + "II", element)[1] > len(element):
                return None, f"compressed variable {number} declares more bytes than it holds"
            # the inner element alone: bytes after it would read as another element here (scipy ignores them)
            out.append(element[:8 + struct.unpack_from(endian + "II", element)[1]])
        pos, number = end, number + 1
    out.append(data[pos:])
    return b"".join(out), None


def _loadmat(path: Path, variables: Iterable[str] | None = None) -> dict:
    import scipy.io

    from partwise.io import present_file

    if not present_file(path):
        raise InputError(path, None, "no such file")
    inflated, problem = _mat5_inflated(path.read_bytes())
    if problem is not None:
        raise InputError(path, None, f"not a readable MATLAB file ({problem})")
    try:
        with gc_paused():  # hundreds of thousands of small arrays
            return scipy.io.loadmat(io.BytesIO(inflated) if inflated is not None else str(path), squeeze_me=False,
                                    struct_as_record=True, variable_names=list(variables) if variables else None)
    except Exception as exc:  # scipy raises several types for corrupt files
        raise InputError(path, None, f"not a readable MATLAB file ({type(exc).__name__}: {exc})") from None


def _load_json(path: Path) -> Any:
    from partwise.data import safe_json
    from partwise.io import present_file

    if not present_file(path):
        raise InputError(path, None, "no such file")
    data = safe_json.read_bytes(path)
    with gc_paused():
        return safe_json.loads(data, path, label="invalid JSON")
