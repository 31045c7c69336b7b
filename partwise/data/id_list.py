"""Id lists: text files with one number per line (V-COCO's ``vcoco_{split}.ids``, a HICO-DET rare-class list).

Each non-blank line's first field is read as ``np.loadtxt`` reads it (``3``, ``3.0`` and ``3e0`` are all 3), so a
file the originals load loads here; a field that is not a finite integer, or an id outside the allowed range, is a
one-line :class:`~partwise.errors.InputError` naming the file and the line.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

from partwise.errors import InputError


def read_id_list(path: str | os.PathLike, noun: str = "id", *, low: int | None = None,
                 high: int | None = None) -> list[int]:
    """The ids of ``path`` in file order (duplicates kept). ``noun`` names an id in the errors, read after "an"
    (``"image id"``: ``not an image id: 'x'``); ``low``/``high``: the inclusive range ids must lie in."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, None, "no such file")
    ids = []
    for line_no, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            value = float(line.split()[0])
        except ValueError:
            raise InputError(path, line_no, f"not an {noun}: {line.strip()!r}") from None
        if not math.isfinite(value) or value != int(value):
            raise InputError(path, line_no, f"not an integer {noun}: {line.strip()!r}")
        ids.append(int(value))
        if (low is not None and ids[-1] < low) or (high is not None and ids[-1] > high):
            raise InputError(path, line_no, f"{noun} {ids[-1]} outside {'' if low is None else low}.."
                                            f"{'' if high is None else high}")
    return ids
