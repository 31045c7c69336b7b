"""``partwise run``'s people stage: the persons at each keyframe, from the first source given -- a box file
(``--boxes``), a person detector (``--detector``, batched over a group of keyframes) or the pose source's own
person finder (MoveNet MultiPose by default).

Hand-off: :class:`KeyframePeople` (pixel boxes and scores). See :mod:`partwise.infer.pipeline` for the whole run.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from partwise.infer.inputs import Keyframe, _Frames, select_boxes
from partwise.infer.timings import Timings

if TYPE_CHECKING:
    from partwise.infer.pipeline import RunOptions
    from partwise.infer.run_models import LoadedDetector


@dataclass
class KeyframePeople:
    """The persons at one keyframe: ``boxes`` ``(N, 4)`` float64 pixels ``[x1, y1, x2, y2]``, ``scores`` ``(N,)``."""

    boxes: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.boxes)


class PeopleSource:
    """Persons per keyframe from ``video_boxes`` (``{timestamp: (N, 5)}`` normalized boxes and scores, this video's
    part of :func:`partwise.infer.inputs.load_boxes`), else ``detector``, else ``pose`` (``detect_all``)."""

    def __init__(self, options: "RunOptions", width: int, height: int, video_boxes: dict | None = None,
                 detector: "LoadedDetector | None" = None, pose: Any = None):
        self.options = options
        self.video_boxes, self.detector, self.pose = video_boxes, detector, pose
        self.scale = np.array([width, height, width, height], np.float64)
        self._detections: dict[int, np.ndarray] = {}

    def start_group(self, first: int, group: list[Keyframe], frames: _Frames, timings: Timings) -> None:
        """Called with each group of keyframes (``first``: the index of ``group[0]``) after its frames are
        prefetched: the detector runs on the group's keyframes in one batch."""
        if self.video_boxes is not None or self.detector is None:
            return
        options = self.options
        with timings.timing("decode"):
            batch = frames.read(np.array([g.frame_index for g in group]))
        with timings.timing("detect"):
            found = self.detector.detect(self.detector.model, batch, score_threshold=options.detector_threshold,
                                         nms_iou=options.detector_nms_iou, max_people=options.max_people)
        self._detections = {first + j: np.asarray(d, np.float64).reshape(-1, 5) for j, d in enumerate(found)}

    def at(self, k: int, kf: Keyframe, frames: _Frames, timings: Timings) -> KeyframePeople:
        """The persons at keyframe ``k`` (``kf``)."""
        options = self.options
        if self.video_boxes is not None:
            chosen = select_boxes(self.video_boxes.get(kf.time_s, np.zeros((0, 5))), options.box_threshold,
                                  options.nms_iou, options.max_people)
            return KeyframePeople(chosen[:, :4] * self.scale, chosen[:, 4])
        if self.detector is not None:
            found = self._detections.get(k, np.zeros((0, 5)))
            return KeyframePeople(np.clip(found[:, :4], 0, self.scale), found[:, 4])
        with timings.timing("decode"):
            frame = frames.read(np.array([kf.frame_index]))[0]
        with timings.timing("pose"):
            found = self.pose.detect_all(frame, options.max_people)
        boxes = np.array([person[0] for person in found]).reshape(-1, 4)
        # the pose source's person score, else (MediaPipe) the mean keypoint score
        scores = np.array([person[2] if len(person) > 2 else float(person[1][:, 2].mean()) for person in found])
        return KeyframePeople(boxes, scores)
