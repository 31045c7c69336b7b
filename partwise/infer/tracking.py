"""Person tracking across keyframes: IoU with a constant-velocity prediction, solved by Hungarian assignment.

Each track predicts its next box by adding its smoothed per-step velocity (so two people who cross keep their
identities: at the crossing the predicted boxes still point the right way), the cost is ``1 - IoU(predicted,
detection)``, pairs with IoU below ``iou_threshold`` are never matched. Tracks and detections left over are then
matched the same way on the tracks' last boxes (no motion): a person who stops or turns back (a walker reversing
between two 1 Hz keyframes) is far from the predicted box but still near the last one. Unmatched detections start new
tracks, and a track unseen for more than ``max_age`` steps ends. Boxes are ``[x1, y1, x2, y2]`` (any consistent unit).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from partwise.infer.assignment import linear_sum_assignment


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(A, 4) x (B, 4) -> (A, B) IoU, continuous coordinates (no +1)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


@dataclass
class Track:
    track_id: int
    box: np.ndarray
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4))
    age: int = 0  # steps since last matched
    hits: int = 1

    def predicted(self) -> np.ndarray:
        return self.box + self.velocity * (self.age + 1)


class IoUTracker:
    """``update(boxes (N, 4)) -> track ids (N,)`` once per keyframe, in time order."""

    def __init__(self, iou_threshold: float = 0.2, max_age: int = 2, velocity_smoothing: float = 0.5,
                 use_motion: bool = True):
        self.use_motion = use_motion
        self.iou_threshold = iou_threshold
        self.max_age = max_age
        self.smoothing = velocity_smoothing
        self.tracks: list[Track] = []
        self._next_id = 1

    def update(self, boxes: np.ndarray, velocities: np.ndarray | None = None) -> np.ndarray:
        """Track ids for this step's ``boxes``. ``velocities`` ``(N, 2)`` (optional; NaN where unknown): each
        person's own motion per step, measured around this step (from the pose window): it becomes the track's
        velocity, so a new track already predicts where its person goes and a walker is not lost between 1 Hz
        keyframes."""
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        measured = None
        if velocities is not None:
            v = np.asarray(velocities, dtype=np.float64).reshape(-1, 2)
            measured = np.concatenate([v, v], axis=1)
        ids = np.zeros(len(boxes), dtype=np.int64)
        matched_tracks: set[int] = set()
        stages = (True, False) if self.use_motion else (False,)
        for with_motion in stages:
            free_tracks = [i for i in range(len(self.tracks)) if i not in matched_tracks]
            free_boxes = np.flatnonzero(ids == 0)
            if not free_tracks or not len(free_boxes):
                break
            reference = np.stack([self.tracks[i].predicted() if with_motion else self.tracks[i].box
                                  for i in free_tracks])
            iou = iou_matrix(reference, boxes[free_boxes])
            rows, cols = linear_sum_assignment(1.0 - iou)
            for r, c in zip(rows, cols):
                if iou[r, c] < self.iou_threshold:
                    continue
                track, box_index = self.tracks[free_tracks[r]], free_boxes[c]
                step = (boxes[box_index] - track.box) / (track.age + 1)
                if measured is not None and np.isfinite(measured[box_index]).all():
                    track.velocity = measured[box_index]
                else:
                    track.velocity = self.smoothing * track.velocity + (1 - self.smoothing) * step \
                        if track.hits > 1 else step
                track.box, track.age, track.hits = boxes[box_index], 0, track.hits + 1
                ids[box_index] = track.track_id
                matched_tracks.add(free_tracks[r])
        for index, track in enumerate(self.tracks):
            if index not in matched_tracks:
                track.age += 1
        self.tracks = [t for t in self.tracks if t.age <= self.max_age]
        for c in np.flatnonzero(ids == 0):
            track = Track(self._next_id, boxes[c])
            if measured is not None and np.isfinite(measured[c]).all():
                track.velocity = measured[c]
            self.tracks.append(track)
            ids[c] = self._next_id
            self._next_id += 1
        return ids


def track_sequence(frames: list[np.ndarray], **kwargs) -> list[np.ndarray]:
    """Track ids for a list of per-keyframe box arrays."""
    tracker = IoUTracker(**kwargs)
    return [tracker.update(boxes) for boxes in frames]


def track_keyframe(tracker: IoUTracker, boxes: np.ndarray, velocities: np.ndarray | None,
                   track_buffer: float) -> np.ndarray:
    """The tracking stage for one keyframe: track ids ``(N,)`` of the persons in pixel ``boxes`` ``(N, 4)``,
    matched on boxes grown by ``track_buffer`` box sizes per side
    (:func:`partwise.infer.poses.buffered_boxes`), new tracks taking ``velocities`` ``(N, 2)`` (or None)."""
    from partwise.infer.poses import buffered_boxes

    return tracker.update(buffered_boxes(boxes, track_buffer), velocities)
