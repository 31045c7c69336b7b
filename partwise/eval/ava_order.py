"""Keyframe ids and the orders the AVA tools process rows in: joint keyframe ids over several row sets,
first-appearance ranks, score orders inside keyframes and the official per-keyframe heap cap."""
from __future__ import annotations

import numpy as np



def _timestamp_keys(timestamp: np.ndarray, mode: str) -> np.ndarray:
    """Integer keyframe time: microseconds (``"us"``, the official ``"%.6f"`` key) or ``int(ts)`` (``"int"``)."""
    if mode == "us":
        return np.rint(timestamp * 1e6).astype(np.int64)
    return np.trunc(timestamp).astype(np.int64)


def _run_starts(values: np.ndarray) -> np.ndarray:
    """(n,) bool: True where a run of equal consecutive values starts."""
    flags = np.ones(values.shape[0], dtype=bool)
    if values.shape[0] > 1:
        np.not_equal(values[1:], values[:-1], out=flags[1:])
    return flags


def _positions_in_runs(values: np.ndarray) -> np.ndarray:
    """(n,) int64: position of each element inside its run of equal consecutive values (0, 1, 2, ...)."""
    n = values.shape[0]
    starts = np.flatnonzero(_run_starts(values))
    return np.arange(n, dtype=np.int64) - np.repeat(starts, np.diff(np.append(starts, n)))


class _Keyframes:
    """Joint keyframe ids for several row sets: ``ids[i]`` (n_i,) int64 in 0..count-1, equal iff same video and
    same timestamp key. Rows of one keyframe usually come together, so the ids are found on runs, not rows."""

    def __init__(self, sources: list[tuple[list, np.ndarray, np.ndarray]], mode: str):
        names = sorted({str(v) for videos, _, _ in sources for v in videos})
        lookup = np.asarray(names, dtype=object)
        # the key functions are monotone, so the extreme keys are the keys of the extreme timestamps; one source's
        # full-length temporaries at a time
        ends = [_timestamp_keys(np.asarray([t.min(), t.max()], np.float64), mode) for _, _, t in sources if t.size]
        lo = min((int(e[0]) for e in ends), default=0)
        hi = max((int(e[1]) for e in ends), default=0)
        span = hi - lo + 1
        # one int64 key per (video, time) when the product fits (readers keep |t| < 1e12 s); else (video, time) pairs
        paired = span * max(len(names), 1) >= 2**62
        run_keys, run_lengths = [], []
        for videos, video_codes, timestamp in sources:
            remap = (np.searchsorted(lookup, np.asarray([str(v) for v in videos], dtype=object)).astype(np.int64)
                     if len(videos) else np.empty(0, np.int64))
            k = _timestamp_keys(timestamp, mode)
            k -= lo
            code = remap[video_codes] if len(video_codes) else np.zeros(k.shape[0], np.int64)
            if paired:
                starts = np.flatnonzero(_run_starts(k) | _run_starts(code))
                run_keys.append(np.stack([code[starts], k[starts]], axis=1))
            else:
                k += code * span
                starts = np.flatnonzero(_run_starts(k))
                run_keys.append(k[starts])
            run_lengths.append(np.diff(np.append(starts, k.shape[0])))
            del k, code
        uniq, inverse = np.unique(np.concatenate(run_keys), return_inverse=True, axis=0 if paired else None)
        inverse = inverse.reshape(-1)
        self.count = int(uniq.shape[0])
        self.ids, offset = [], 0
        for rk, lengths in zip(run_keys, run_lengths):
            self.ids.append(np.repeat(inverse[offset:offset + rk.shape[0]].astype(np.int64), lengths))
            offset += rk.shape[0]


def _first_appearance_order(kf: np.ndarray, count: int) -> np.ndarray:
    """(count,) int64: rank of each keyframe id by its first row in ``kf`` (rows in file order); ``count`` for
    keyframes that do not occur."""
    order = np.full(count + 1, count, dtype=np.int64)
    starts = np.flatnonzero(_run_starts(kf))
    uniq, first = np.unique(kf[starts], return_index=True)
    order[uniq[np.argsort(first, kind="stable")]] = np.arange(uniq.shape[0])
    return order


def _stable_argsort_small(values: np.ndarray) -> np.ndarray:
    """Stable argsort; radix sort when the values fit in int16."""
    if values.size and values.min() >= -32768 and values.max() < 32768:
        return np.argsort(values.astype(np.int16), kind="stable")
    return np.argsort(values, kind="stable")


def _order_by_group(group: np.ndarray) -> np.ndarray:
    """Stable order by ``group`` (skipped when already sorted, as in a file written keyframe by keyframe)."""
    if group.size < 2 or bool(np.all(group[1:] >= group[:-1])):
        return np.arange(group.shape[0])
    return np.argsort(group, kind="stable")


def _order_by_group_then_score(group: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Order rows by (group ascending, score descending, input position): one stable float sort of a composite
    key, verified, with ``np.lexsort`` as the fallback when the composite merges distinct scores out of order."""
    n = group.shape[0]
    if n < 2:
        return np.arange(n)
    lo, hi = float(score.min()), float(score.max())
    if hi == lo:
        return _order_by_group(group)
    if not np.isfinite(hi - lo):
        return np.lexsort((-score, group))
    composite = group.astype(np.float64)
    composite *= 4.0
    composite += (hi - score) * (2.0 / (hi - lo))
    order = np.argsort(composite, kind="stable")
    del composite
    # verified in slices so that the checks' temporaries stay small (peak memory on AVA-val-sized input)
    step = 1 << 20
    for a in range(0, n - 1, step):
        sl = order[a:min(a + step + 1, n)]
        g, s = group[sl], score[sl]
        same = g[1:] == g[:-1]
        if np.any(g[1:] < g[:-1]) or np.any(same & (s[1:] > s[:-1])):
            return np.lexsort((-score, group))
    return order


def _heap_top_k(kf: np.ndarray, score: np.ndarray, rank: np.ndarray, row: np.ndarray, action: np.ndarray,
                boxes: np.ndarray, k: int) -> np.ndarray:
    """Which detections the official per-keyframe min-heap of capacity ``k`` keeps, as a (n,) bool mask.

    Rows are sorted by (keyframe, score descending, file order); ``rank`` is the position inside the keyframe,
    ``row`` the file position. The heap keeps everything above the k-th score s*. Entries scoring exactly s* are
    all admitted until k entries >= s* have arrived (moment T); after T an s* entry is refused (not strictly
    greater) and each later entry above s* evicts the smallest remaining s* entry in tuple order
    (class, y1, x1, y2, x2). Only keyframes whose k-th and (k+1)-th scores tie need this; the rest keep rank < k.
    """
    keep = rank < k
    edge = np.flatnonzero(rank == k)
    tied = edge[score[edge] == score[edge - 1]]
    if tied.size == 0:
        return keep
    starts = tied - k
    ends = np.searchsorted(kf, kf[tied], side="right")
    lengths = ends - starts
    boundary = np.repeat(np.arange(tied.shape[0]), lengths)
    idx = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths) + np.arange(lengths.sum())
    s_star = score[tied - 1][boundary]
    # arrival (file) order inside each boundary keyframe
    arrival = np.lexsort((row[idx], boundary))
    idx, boundary, s_star = idx[arrival], boundary[arrival], s_star[arrival]
    sc = score[idx]
    above, at = sc > s_star, sc == s_star
    at_least = above | at
    group_start = np.flatnonzero(_run_starts(boundary))
    cum = np.cumsum(at_least)
    offset = np.repeat(cum[group_start] - at_least[group_start], np.diff(np.append(group_start, idx.shape[0])))
    arrived_before = cum - at_least - offset          # entries >= s* that arrived before this one
    by_t = arrived_before < k                         # arrives no later than T
    above_total = np.bincount(boundary, weights=above, minlength=tied.shape[0])
    above_by_t = np.bincount(boundary, weights=above & by_t, minlength=tied.shape[0])
    evictions = (above_total - above_by_t).astype(np.int64)
    candidates = np.flatnonzero(at & by_t)
    cand_rows = row[idx[candidates]]
    b = boxes[cand_rows]
    smallest_first = np.lexsort((b[:, 2], b[:, 3], b[:, 0], b[:, 1], action[cand_rows], boundary[candidates]))
    candidates = candidates[smallest_first]
    evicted = _positions_in_runs(boundary[candidates]) < evictions[boundary[candidates]]
    kept_at = np.zeros(idx.shape[0], dtype=bool)
    kept_at[candidates[~evicted]] = True
    keep[idx] = above | kept_at
    return keep
