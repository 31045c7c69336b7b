"""The AVA CSV table (:class:`AvaCsv`), AVA's keyframe constants and the keyframe frame index.

numpy only, so that evaluation can hold rows without importing pyarrow."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: AVA keyframe constants (SlowFast ``ava_helper``; mmaction2 ``AVADataset``).
AVA_FPS = 30
AVA_TIMESTAMP_START = 900
AVA_VALID_TIMESTAMPS = range(902, 1799)
AVA_NUM_ACTIONS = 80
AVA_ID_LENGTH = 11
#: How many problems :func:`validate_csv` lists before one final "... and N more" problem.
MAX_PROBLEMS = 200
#: Largest timestamp magnitude (seconds, some 30,000 years): keyframes are keyed by whole microseconds in int64.
MAX_TIMESTAMP = 1e12


@dataclass
class AvaCsv:
    """An AVA CSV as columns; row i is line ``line[i]`` of ``path``.

    ``videos`` are the distinct video ids in first-seen order and ``video_codes`` (N,) int32 index into it.
    ``timestamp`` (N,) float64 seconds; ``boxes`` (N, 4) float64 normalized x1, y1, x2, y2 (NaN on 2-column
    keyframe rows); ``action`` (N,) int32 (-1 on 2-column rows and empty action fields); ``person_id`` (N,) int64
    (-1 when absent); ``score`` (N,) float64 (NaN when absent); ``n_columns`` (N,) int8 fields on the line
    (2, 7 or 8); ``line`` (N,) int64 1-based line numbers. ``kind`` says how an 8th column was read: ``"gt"``
    (person id) or ``"det"`` (score).

    ``formats`` records how numbers were written so :func:`write_csv` reproduces the file byte for byte (see
    :func:`write_csv`); keys ``ts_ava`` and ``ts_other`` (timestamps of rows whose video id has / has not 11
    characters), ``box`` and ``score``; values ``(width, decimals)`` (integer part zero-padded to ``width``,
    fixed ``decimals``) or ``None`` for the shortest representation. Missing keys get AVA's defaults.
    """

    path: str
    videos: list[str]
    video_codes: np.ndarray
    timestamp: np.ndarray
    boxes: np.ndarray
    action: np.ndarray
    person_id: np.ndarray
    score: np.ndarray
    n_columns: np.ndarray
    line: np.ndarray
    kind: str = "gt"
    formats: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.video_codes.shape[0])

    @property
    def video_ids(self) -> np.ndarray:
        """(N,) object array of each row's video id."""
        return np.asarray(self.videos, dtype=object)[self.video_codes] if len(self.videos) else np.empty(0, object)

    def select(self, mask_or_index: np.ndarray) -> "AvaCsv":
        """The rows picked by a boolean mask or an index array (videos list unchanged)."""
        return AvaCsv(self.path, list(self.videos), self.video_codes[mask_or_index], self.timestamp[mask_or_index],
                      self.boxes[mask_or_index], self.action[mask_or_index], self.person_id[mask_or_index],
                      self.score[mask_or_index], self.n_columns[mask_or_index], self.line[mask_or_index],
                      self.kind, {key: value[mask_or_index] if isinstance(value, np.ndarray) else value
                                  for key, value in self.formats.items()})


def keyframe_index(timestamp: np.ndarray | float, fps: int = AVA_FPS, start: float = AVA_TIMESTAMP_START):
    """Frame number of an AVA keyframe: ``(t - 900) * 30`` (SlowFast ``sec_to_frame``); int64 for arrays."""
    if np.ndim(timestamp):
        with np.errstate(invalid="ignore"):  # out of int64 range: records.check_values reports the time_s
            return np.rint((np.asarray(timestamp, np.float64) - start) * fps).astype(np.int64)
    return int(round((float(timestamp) - start) * fps))


def _empty_table(path: str) -> AvaCsv:
    return AvaCsv(path, [], np.empty(0, np.int32), np.empty(0), np.empty((0, 4)), np.empty(0, np.int32),
                  np.empty(0, np.int64), np.empty(0), np.empty(0, np.int8), np.empty(0, np.int64))
