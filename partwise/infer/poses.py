"""``partwise run``'s poses -> tracks -> parts hand-offs: which frames the pose window samples around a keyframe,
each person's velocity over it (for the tracker), the buffered boxes the tracker matches, and the part boxes from
keypoints; and the pose stage itself (:func:`estimate_poses` -> :class:`KeyframePoses`).

Arrays: boxes ``(N, 4)`` pixels ``[x1, y1, x2, y2]``; keypoint tracks ``(N, W, 17, 3)`` ``[x, y, score]`` over the
window's ``W`` frames; part boxes ``(N, 10, 4)``. See :mod:`partwise.infer.pipeline` for the whole run.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from partwise.infer.inputs import Keyframe
    from partwise.infer.pipeline import RunOptions
    from partwise.infer.run_models import LoadedModel

def buffered_boxes(boxes: np.ndarray, buffer: float) -> np.ndarray:
    """Boxes (N, 4) grown by ``buffer`` times their width (height) on the left and right (top and bottom).

    The tracker matches these "buffered" boxes (the buffered IoU of C-BIoU tracking): at AVA's 1 Hz a walking
    person moves more than a body width between keyframes, so the plain boxes of one person no longer overlap,
    while the buffered ones do; the tracker's velocity prediction still separates people who cross."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    grow = np.concatenate([boxes[:, 2:] - boxes[:, :2]] * 2, axis=1) * buffer
    return boxes + grow * np.array([-1, -1, 1, 1])


#: keypoints scoring at least this much locate a person in the velocity estimate
VELOCITY_MIN_SCORE = 0.3


def window_velocities(tracks: np.ndarray, frame_indices: np.ndarray) -> np.ndarray:
    """``(N, 2)`` pixels per frame of each person over a pose window ``tracks`` ``(N, W, 17, 3)`` sampled at
    ``frame_indices`` ``(W,)``: the mean displacement of the keypoints seen (score >= :data:`VELOCITY_MIN_SCORE`)
    in both the first and the last frame where the person was seen; NaN when it cannot be told."""
    tracks = np.asarray(tracks, np.float64)
    frame_indices = np.asarray(frame_indices, np.float64)
    out = np.full((len(tracks), 2), np.nan)
    for i, track in enumerate(tracks):
        seen = track[:, :, 2] >= VELOCITY_MIN_SCORE
        frames_seen = np.flatnonzero(seen.sum(axis=1) >= 4)
        if len(frames_seen) < 2:
            continue
        first, last = frames_seen[0], frames_seen[-1]
        both = seen[first] & seen[last]
        span = frame_indices[last] - frame_indices[first]
        if both.sum() < 4 or span <= 0:
            continue
        out[i] = (track[last, both, :2] - track[first, both, :2]).mean(axis=0) / span
    return out


def _part_boxes(keypoints: np.ndarray, boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """(N, 10, 4) part boxes by the Activity2Vec rule, clipped to each person's box (a part cannot lie outside
    its person)."""
    from partwise.models.pose_parts import part_boxes_from_keypoints

    parts = part_boxes_from_keypoints(keypoints, boxes, (width, height))
    lo, hi = boxes[:, None, :2], boxes[:, None, 2:]
    parts[..., :2] = np.clip(parts[..., :2], lo, hi)
    parts[..., 2:] = np.clip(parts[..., 2:], lo, hi)
    return parts


def _pose_windows(kf: Keyframe, fps: float, num_frames: int, options: RunOptions) -> tuple[np.ndarray, int]:
    """Frame indices sampled at ``pose_fps`` within ``+-pose_window_s`` of a keyframe, and the keyframe's position."""
    step = max(1, int(round(fps / options.pose_fps)))
    half = int(round(options.pose_window_s * fps / step))
    offsets = np.arange(-half, half + 1) * step
    return np.clip(kf.frame_index + offsets, 0, num_frames - 1), half


#: keyframes whose frames are decoded together (bounds memory: a few dozen frames per keyframe).
PREFETCH_KEYFRAMES = 8


def _frames_needed(keyframes: list[Keyframe], fps: float, n: int, options: RunOptions, model: LoadedModel | None,
                   use_pose: bool, keyframe_image: bool) -> np.ndarray:
    """0-based indices of every frame the pipeline reads for ``keyframes`` (``keyframe_image``: the keyframes
    themselves, for a detector or an image model)."""
    from partwise.data.video import clip_around

    needed = [np.array([kf.frame_index for kf in keyframes], np.int64)] if keyframe_image else []
    for kf in keyframes:
        if use_pose:
            needed.append(_pose_windows(kf, fps, n, options)[0])
        if model is not None and model.family != "activity2vec":
            needed.append(clip_around(kf.frame_index, model.clip.clip_len, model.clip.frame_interval, n))
    return np.concatenate(needed) if needed else np.zeros(0, np.int64)


@dataclass
class KeyframePoses:
    """The pose stage's hand-off for one keyframe's ``N`` persons: ``keypoints`` ``(N, 17, 3)`` at the keyframe
    (None without a pose source), ``kinematic`` (per person ``{part: Kinetics-TPS state}``, empty without pose),
    ``velocities`` ``(N, 2)`` pixels per keyframe step (NaN: unknown; None without pose) for the tracker, and
    ``frames`` (frames the pose read, for the real-time figure)."""

    keypoints: np.ndarray | None
    kinematic: list[dict[str, str]]
    velocities: np.ndarray | None
    frames: int

    @property
    def keypoints_or_zeros(self) -> np.ndarray:
        """``keypoints``, or zero-score keypoints (the part-box rule then falls back to the person box)."""
        return self.keypoints if self.keypoints is not None else np.zeros((len(self.kinematic), 17, 3))


def estimate_poses(pose, frames, kf: Keyframe, boxes: np.ndarray, fps: float, num_frames: int,
                   options: RunOptions, timings) -> KeyframePoses:
    """Pose of the persons in pixel ``boxes`` ``(N, 4)`` over the window around ``kf`` (:func:`_pose_windows`),
    their kinematic part states at the keyframe and their velocities; ``pose`` None: no keypoints, no states.
    ``frames``: :class:`partwise.infer.inputs._Frames`; ``timings``: :class:`partwise.infer.timings.Timings`."""
    from partwise.infer.kinematics import kinematic_states

    if pose is None:
        return KeyframePoses(None, [{} for _ in range(len(boxes))], None, 1)
    indices, centre = _pose_windows(kf, fps, num_frames, options)
    with timings.timing("decode"):
        window = frames.read(indices)
    with timings.timing("pose"):
        if hasattr(pose, "estimate_window"):  # MoveNet: whole frame at the keyframe, crops around it
            tracks = pose.estimate_window(window, boxes, centre)  # N, W, 17, 3
        elif hasattr(pose, "estimate_many"):  # one pass per frame for all people
            tracks = np.stack([pose.estimate_many(f, boxes) for f in window], axis=1)  # N, W, 17, 3
        else:
            tracks = np.stack([np.stack([pose.estimate(f, box) for f in window]) for box in boxes])
    with timings.timing("track"):
        kinematic = [kinematic_states(track, fps / max(1, int(round(fps / options.pose_fps))))[centre]
                     for track in tracks]
        velocities = window_velocities(tracks, indices) * (fps / options.fps)
    return KeyframePoses(tracks[:, centre], kinematic, velocities, len(indices))
