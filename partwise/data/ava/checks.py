"""Problems found while reading: row masks with lazily built reasons, string fields cast to numbers with
every failure recorded, and the value range checks shared by every reader."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from partwise.data.ava.table import AVA_NUM_ACTIONS, MAX_PROBLEMS, MAX_TIMESTAMP
from partwise.errors import InputError, Problem

_FLOAT_RE = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^[+-]?(?i:nan|inf|infinity)$"
_INT_RE = r"^-?\d+$"
_FIELD_NAMES = ("video", "timestamp", "x1", "y1", "x2", "y2", "action", "person_id/score")


class _Checks:
    """Collects (row mask, reason) pairs; reasons are callables of a row index so texts are built lazily."""

    def __init__(self, path: str, line: np.ndarray):
        self.path, self.line = path, line
        self.items: list[tuple[np.ndarray, object]] = []

    def add(self, mask: np.ndarray, reason) -> None:
        if mask.any():
            self.items.append((mask, reason))

    def _text(self, reason, row: int) -> str:
        return reason(row) if callable(reason) else reason

    def first(self) -> InputError | None:
        best = None
        for mask, reason in self.items:
            row = int(np.argmax(mask))
            if best is None or self.line[row] < self.line[best[0]]:
                best = (row, reason)
        if best is None:
            return None
        return InputError(self.path, int(self.line[best[0]]), self._text(best[1], best[0]))

    def problems(self, limit: int = MAX_PROBLEMS) -> list[Problem]:
        found = []
        for order, (mask, reason) in enumerate(self.items):
            rows = np.flatnonzero(mask)
            found.append((self.line[rows], np.full(rows.shape, order), rows))
        if not found:
            return []
        lines = np.concatenate([f[0] for f in found])
        orders = np.concatenate([f[1] for f in found])
        rows = np.concatenate([f[2] for f in found])
        sort = np.lexsort((orders, lines))
        out = [Problem(self.path, int(lines[i]), self._text(self.items[orders[i]][1], int(rows[i]))) for i in sort[:limit]]
        if len(sort) > limit:
            out.append(Problem(self.path, None, f"... and {len(sort) - limit} more problems"))
        return out


def _fits_int64(col: pa.Array) -> np.ndarray:
    """Which strings (of :data:`_INT_RE` form, or null) are integers within int64: compared as digit strings, since
    no wider cast exists to compare numbers. Nulls count as fitting."""
    negative = pc.starts_with(col, "-")
    digits = pc.utf8_ltrim(pc.utf8_ltrim(col, "-"), "0")
    length = pc.utf8_length(digits)
    limit = pc.if_else(negative, pa.scalar("9223372036854775808"), pa.scalar("9223372036854775807"))
    fits = pc.or_(pc.less(length, 19), pc.and_(pc.equal(length, 19), pc.less_equal(digits, limit)))
    return pc.fill_null(fits, True).to_numpy(zero_copy_only=False)


def _parse_numbers(col: pa.Array | None, present: np.ndarray, dtype: str, name: str, checks: _Checks,
                   allow_empty: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Cast string field ``col`` to float64 (NaN fill) or int64 (-1 fill) where ``present``.

    Returns ``(values, valid)``: ``valid`` marks fields that parsed. Empty fields (unless ``allow_empty``),
    non-numeric fields and NaN values are added to ``checks``.
    """
    float_type = dtype == "float"
    n = len(present)
    fill = np.nan if float_type else -1
    if col is None or not present.any():
        return np.full(n, fill, np.float64 if float_type else np.int64), np.zeros(n, bool)
    if not present.all():
        col = pc.if_else(pa.array(present), col, pa.scalar(None, pa.string()))
    empty = pc.fill_null(pc.equal(pc.binary_length(col), 0), False).to_numpy(zero_copy_only=False)
    if empty.any():
        if not allow_empty:
            checks.add(empty, f"empty {name} field")
        col = pc.if_else(pa.array(empty), pa.scalar(None, pa.string()), col)
    bad = np.zeros(n, bool)
    try:
        values = pc.cast(col, pa.float64() if float_type else pa.int64())
    except pa.ArrowInvalid:
        ok = pc.fill_null(pc.match_substring_regex(col, _FLOAT_RE if float_type else _INT_RE), True)
        bad = ~ok.to_numpy(zero_copy_only=False)
        text = col
        expected = "a number" if float_type else "an integer"
        checks.add(bad, lambda row: f"{name} is not {expected}: {text[row].as_py()!r}")
        if not float_type:
            big = ~bad & ~_fits_int64(col)
            checks.add(big, lambda row: f"{name} is beyond 64 bits: {text[row].as_py()!r}")
            ok = pc.and_kleene(ok, pa.array(~big))
            bad |= big
        values = pc.cast(pc.if_else(ok, col, pa.scalar(None, pa.string())), pa.float64() if float_type else pa.int64())
    valid = present & ~empty & ~bad
    if float_type:
        out = np.asarray(values.to_numpy(zero_copy_only=False), np.float64)
        nan = valid & np.isnan(out)
        checks.add(nan, f"{name} is NaN")
        valid &= ~nan
    else:
        out = pc.fill_null(values, -1).to_numpy().astype(np.int64)
    return out, valid


def _check_values(boxes, box_valid, action, action_valid, timestamp, ts_valid, valid_actions,
                  checks: _Checks) -> None:
    """Range checks shared by :func:`read_csv` and :func:`validate_csv` (vectorized masks over parsed fields)."""
    for k, name in enumerate(("x1", "y1", "x2", "y2")):
        col = boxes[:, k]
        checks.add(box_valid[:, k] & ((col < 0) | (col > 1)),
                   lambda row, k=k, name=name: f"{name}={float(boxes[row, k])!r} outside [0, 1]")
    both_x = box_valid[:, 0] & box_valid[:, 2]
    both_y = box_valid[:, 1] & box_valid[:, 3]
    checks.add(both_x & (boxes[:, 2] < boxes[:, 0]), lambda row: f"x2={float(boxes[row, 2])!r} < x1={float(boxes[row, 0])!r}")
    checks.add(both_y & (boxes[:, 3] < boxes[:, 1]), lambda row: f"y2={float(boxes[row, 3])!r} < y1={float(boxes[row, 1])!r}")
    checks.add(ts_valid & np.isinf(timestamp), "timestamp is infinite")
    far = ts_valid & np.isfinite(timestamp) & (np.abs(timestamp) >= MAX_TIMESTAMP)
    checks.add(far, lambda row: f"timestamp {float(timestamp[row])!r} out of range (|t| < {MAX_TIMESTAMP:.0e} s)")
    if valid_actions is None:
        bad = action_valid & ((action < 1) | (action > AVA_NUM_ACTIONS))
        allowed_text = f"1..{AVA_NUM_ACTIONS}"
    else:
        allowed = np.asarray(sorted(int(a) for a in valid_actions), np.int64)
        bad = action_valid & ~np.isin(action, allowed)
        allowed_text = "the given action ids"
    checks.add(bad, lambda row: f"action id {int(action[row])} not in {allowed_text}")
