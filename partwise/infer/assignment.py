"""Linear sum assignment for the small matrices of ``partwise run`` (people x people, at most a few dozen).

The same algorithm as :func:`scipy.optimize.linear_sum_assignment` (Crouse's shortest augmenting path, rows in
order, remaining columns scanned in scipy's order), so the same pairs on ties too. Why not scipy's: importing
``scipy.optimize`` costs 0.5-0.9 s of start-up, a twentieth of a real-time run of a 15 s clip, for matrices this
small pure Python takes well under a millisecond.
"""
from __future__ import annotations

import math

import numpy as np


def linear_sum_assignment(cost, maximize: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, cols)`` int64 of the assignment of least (``maximize``: greatest) total ``cost`` ``(R, C)``; rows
    ascending, ``min(R, C)`` pairs. Raises ``ValueError`` for NaN or an infeasible matrix (as scipy)."""
    cost = np.asarray(cost, dtype=np.float64)
    if cost.ndim != 2:
        raise ValueError(f"expected a matrix, got shape {cost.shape}")
    nr, nc = cost.shape
    if nr == 0 or nc == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    transpose = nc < nr
    c = cost.T if transpose else cost
    if maximize:
        c = -c
    if np.isnan(c).any() or np.isneginf(c).any():
        raise ValueError("matrix contains invalid numeric entries")
    nr, nc = c.shape
    rows_cost = c.tolist()
    u, v = [0.0] * nr, [0.0] * nc
    col4row, row4col = [-1] * nr, [-1] * nc
    path = [-1] * nc
    for cur in range(nr):
        # shortest augmenting path from row `cur`
        shortest = [math.inf] * nc
        in_rows, in_cols = [False] * nr, [False] * nc
        remaining = list(range(nc - 1, -1, -1))  # reversed, as scipy: a constant matrix gives the identity
        min_val, i, sink = 0.0, cur, -1
        while sink == -1:
            in_rows[i] = True
            index, lowest = -1, math.inf
            row, ui = rows_cost[i], u[i]
            for it, j in enumerate(remaining):
                r = min_val + row[j] - ui - v[j]
                if r < shortest[j]:
                    path[j] = i
                    shortest[j] = r
                if shortest[j] < lowest or (shortest[j] == lowest and row4col[j] == -1):
                    lowest, index = shortest[j], it
            min_val = lowest
            if min_val == math.inf:
                raise ValueError("cost matrix is infeasible")
            j = remaining[index]
            if row4col[j] == -1:
                sink = j
            else:
                i = row4col[j]
            in_cols[j] = True
            remaining[index] = remaining[-1]
            remaining.pop()
        # dual update
        u[cur] += min_val
        for r in range(nr):
            if in_rows[r] and r != cur:
                u[r] += min_val - shortest[col4row[r]]
        for j in range(nc):
            if in_cols[j]:
                v[j] -= min_val - shortest[j]
        # augment
        j = sink
        while True:
            i = path[j]
            row4col[j] = i
            col4row[i], j = j, col4row[i]
            if i == cur:
                break
    if transpose:
        order = np.argsort(np.array(col4row), kind="stable")
        return np.array(col4row, np.int64)[order], order.astype(np.int64)
    return np.arange(nr, dtype=np.int64), np.array(col4row, np.int64)
