"""Dense proposals ``.pkl``: ``{"video,ts04d": float64 (N, 5)}``, read with the restricted unpickler."""
from __future__ import annotations

import os

import numpy as np

from partwise.errors import InputError
from partwise.io import atomic_write


def read_proposals(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a dense proposals ``.pkl``: ``{"video,ts04d": float64 (N, 5) [x1, y1, x2, y2, score]}`` (normalized).

    Uses the restricted unpickler (:mod:`partwise.data.safe_pickle`); raises :class:`InputError` naming the file
    and key for a value that is not an (N, 5) numeric array or a key that is not ``"video,timestamp"``."""
    from partwise.data import safe_pickle

    path = os.fspath(path)
    data = safe_pickle.load(path)
    if not isinstance(data, dict):
        raise InputError(path, None, f"expected a dict of proposals, got {type(data).__name__}")
    out: dict[str, np.ndarray] = {}
    for key, value in data.items():
        if not isinstance(key, str) or key.count(",") != 1:
            raise InputError(path, repr(key), "proposal key must be 'video,timestamp'")
        try:
            array = np.asarray(value)
        except ValueError:  # ragged rows
            raise InputError(path, key, "expected a numeric (N, 5) array, got rows of different lengths") from None
        if array.dtype.kind not in "fiu" or array.ndim != 2 or array.shape[1] != 5:
            raise InputError(path, key, f"expected a numeric (N, 5) array, got {array.dtype} {array.shape}")
        array = array.astype(np.float64, copy=False)
        if not np.isfinite(array).all():
            raise InputError(path, key, "NaN or infinite box coordinate or score")
        out[key] = array
    return out


def write_proposals(proposals: dict[str, np.ndarray], path: str | os.PathLike) -> None:
    """Write proposals as a pickled ``{key: float64 (N, 5)}`` dict (protocol 4, readable by mmaction2), atomically."""
    import pickle

    clean = {}
    for key, value in proposals.items():
        array = np.asarray(value, np.float64)
        if array.ndim != 2 or array.shape[1] != 5:
            raise ValueError(f"proposals[{key!r}]: expected (N, 5), got {array.shape}")
        clean[str(key)] = array
    with atomic_write(path, "wb") as fh:
        pickle.dump(clean, fh, protocol=4)
