"""A restricted unpickler for the pickle files AVA-style datasets ship (dense proposals ``.pkl``).

Unpickling executes code named by the file, so a malicious ``.pkl`` can run anything. :func:`load` only lets a
file build plain containers (dict, list, tuple, set, str, bytes, int, float, bool, None) and numpy arrays, dtypes
and scalars -- under both numpy module spellings, ``numpy.core`` (numpy < 2) and ``numpy._core`` (numpy >= 2) --
plus ``_codecs.encode``, which protocol-2 pickles use for byte strings. Any other global raises
:class:`~partwise.errors.InputError` naming the file and the global, before anything is called.
"""
from __future__ import annotations

import io
import os
import pickle
from typing import Any

import numpy as np

from partwise.errors import InputError

_BUILTINS = {"dict", "list", "tuple", "set", "frozenset", "str", "bytes", "bytearray", "int", "float", "bool",
             "complex"}

#: (module, name) pairs a file may reference.
ALLOWED_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    {("builtins", name) for name in _BUILTINS}
    | {("__builtin__", name) for name in _BUILTINS | {"unicode", "long"}}
    | {("collections", "OrderedDict"), ("_codecs", "encode")}
    | {(f"{core}.multiarray", name) for core in ("numpy.core", "numpy._core") for name in ("_reconstruct", "scalar")}
    | {(f"{core}.numeric", "_frombuffer") for core in ("numpy.core", "numpy._core")}
    | {("numpy", "ndarray"), ("numpy", "dtype")}
)

_NUMPY_CORE = getattr(np, "_core", None)


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose ``find_class`` only resolves :data:`ALLOWED_GLOBALS`."""

    def __init__(self, file, source: str):
        super().__init__(file, encoding="latin1")
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED_GLOBALS:
            raise InputError(self.source, None, f"refusing to unpickle forbidden global {module}.{name}")
        if module in ("builtins", "__builtin__"):
            return {"unicode": str, "long": int}.get(name) or getattr(__import__("builtins"), name)
        if module == "collections":
            import collections
            return collections.OrderedDict
        if module == "_codecs":
            import _codecs
            return _codecs.encode
        if module == "numpy":
            return getattr(np, name)
        submodule = module.split(".")[-1]
        # numpy >= 2 keeps these in numpy._core; numpy < 2 in numpy.core -- resolve either spelling locally
        core = _NUMPY_CORE if _NUMPY_CORE is not None else np.core
        return getattr(getattr(core, submodule), name)


def loads(data: bytes, source: str = "<bytes>") -> Any:
    """Unpickle ``data`` with :class:`RestrictedUnpickler`; ``source`` names the input in errors."""
    try:
        return RestrictedUnpickler(io.BytesIO(data), source).load()
    except InputError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            UnicodeDecodeError, MemoryError) as exc:
        raise InputError(source, None, f"not a valid pickle file: {type(exc).__name__}: {exc}") from None


def load(path: str | os.PathLike) -> Any:
    """Unpickle the file at ``path`` with :class:`RestrictedUnpickler`."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise InputError(path, None, f"cannot read file: {exc.strerror or exc}") from None
    return loads(data, path)
