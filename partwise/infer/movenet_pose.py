"""The default people-and-pose source of ``partwise run``: real pretrained models, offline.

* **MoveNet MultiPose** (embedded, Apache-2.0) on the whole frame at its own resolution
  (:func:`partwise.models.movenet.preprocess_native`: padded to multiples of 32, scaled down when its longer side
  exceeds ``max_side``): people are found bottom-up, 6 at most per pass. Small people need the resolution: on a 768x576 street
  clip, at MultiPose's usual 256 px it finds 2 of 7 pedestrians (about 25 px tall), at native size 6.
* **Two scales**: also at the original's 256 px square, where people who fill the frame are found (at full
  resolution MoveNet Lightning breaks a close-up person into pieces); the passes are merged, the same person seen
  twice kept once (the better score).
* **More than six people**: when every one of the 6 slots holds a person, the frame is also run in two overlapping
  halves (6 more slots each), merged the same way.
* **CenterNet person boxes** (``partwise weights install centernet``, optional): people the detector finds
  (score >= ``detector_threshold``) that no MultiPose person overlaps are added, their keypoints from a
  **SinglePose** crop (``movenet-thunder``, else ``movenet-lightning``, when installed).

Per-person pose at other frames (the short window around each keyframe) comes from one MultiPose pass per frame,
its people matched to the tracked person boxes by IoU (Hungarian); a person it misses gets a SinglePose crop when
SinglePose is installed, else zero-score keypoints (the part-box rule then falls back to the person box).
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from partwise.infer.pose import box_from_keypoints
from partwise.infer.tracking import iou_matrix
from partwise.models.movenet import MULTIPOSE_SLOTS, MoveNet, People

#: a MultiPose candidate counts as a person above this score (its own box-and-instance score)
MIN_PERSON_SCORE = 0.2
#: largest MultiPose input side (a 1920x1080 frame is scaled down to 1024 x 576)
MAX_SIDE = 1024
#: a person of one pass lying this much (intersection over the smaller box) on a better person of another pass is
#: the same person
MERGE_OVERLAP = 0.6
#: MultiPose Lightning sees people well from about a quarter to most of its input's height: at the 256 px pass, people
#: shorter than this many input pixels are left to the full-resolution pass (at 256 a 25 px walker is a guess) ...
SMALLEST_AT_256 = 64
#: ... and at full resolution, people taller than this many input pixels to the 256 px pass (a close-up person at
#: full resolution comes out in pieces)
LARGEST_AT_NATIVE = 320
#: a person box and a MultiPose person are the same person above this IoU (pose of a tracked box)
MATCH_IOU = 0.3
#: a person needs this many keypoints scoring at least KEYPOINT_SCORE: a detector box on a rock or a bollard gets a
#: SinglePose "person" with a few weak joints, a real (even half-hidden) person gets more
MIN_KEYPOINTS = 5
KEYPOINT_SCORE = 0.3


def _installed(name: str) -> bool:
    from partwise.errors import ConfigError
    from partwise.models.weights import resolve

    try:
        resolve(name)
    except ConfigError:
        return False
    return True


class MoveNetPose:
    """MoveNet MultiPose (+ optional CenterNet person boxes and SinglePose crops) with the interface the run
    pipeline uses: ``detect_all(frame, max_people)`` and ``estimate_many(frame, boxes)``."""

    name = "movenet"

    def __init__(self, max_side: int = MAX_SIDE, min_score: float = MIN_PERSON_SCORE, detector: str | None = "auto",
                 detector_threshold: float = 0.4, single: str | None = "auto"):
        self.multi = MoveNet.load("movenet-multipose")
        self.max_side = max_side
        self.min_score = min_score
        self.detector_threshold = detector_threshold
        self.detector = None
        if detector == "auto":
            detector = "centernet" if _installed("centernet") else None
        if detector:
            from partwise.models.centernet import CenterNet

            self.detector = CenterNet.load(detector)
        if single == "auto":
            single = next((n for n in ("movenet-thunder", "movenet-lightning") if _installed(n)), None)
        self.single = MoveNet.load(single) if single else None

    @property
    def sources(self) -> list[str]:
        """The weights names this pose source runs (for run.json)."""
        names = ["movenet-multipose"]
        if self.detector is not None:
            names.append("centernet")
        if self.single is not None:
            names.append("movenet-thunder" if self.single.input_size == 256 else "movenet-lightning")
        return names

    # -- whole frames ------------------------------------------------------------------------------------
    def multipose(self, frame: np.ndarray) -> People:
        """MultiPose at two scales, merged: the original's 256 px square for people who fill much of the frame, and
        the frame's own resolution for small people, plus the two halves when all 6 slots of the full-resolution
        pass are people. Each pass keeps the people of the size it sees well (:data:`SMALLEST_AT_256`,
        :data:`LARGEST_AT_NATIVE`). People with score > ``min_score``, boxes from the keypoints (tighter than the
        model's box), best first."""
        height, width = frame.shape[:2]
        small = self._run(frame, 0, 0, 256)
        if max(height, width) <= 1.5 * 256:  # the frame is about the model's size: one pass sees everyone
            return small
        scale_256 = 256 / max(height, width)
        passes = [small.select(np.flatnonzero(_heights(small) * scale_256 >= SMALLEST_AT_256))]
        scale = min(1.0, self.max_side / max(height, width))
        native = self._run(frame, 0, 0, "native")
        passes.append(native.select(np.flatnonzero(_heights(native) * scale <= LARGEST_AT_NATIVE)))
        if len(native) >= MULTIPOSE_SLOTS:
            overlap = width // 8 if width >= height else height // 8
            if width >= height:
                halves = [(frame[:, :width // 2 + overlap], 0, 0),
                          (frame[:, width // 2 - overlap:], width // 2 - overlap, 0)]
            else:
                halves = [(frame[:height // 2 + overlap], 0, 0),
                          (frame[height // 2 - overlap:], 0, height // 2 - overlap)]
            for part, dx, dy in halves:
                half = self._run(part, dx, dy, "native", (width, height))
                passes.append(half.select(np.flatnonzero(_heights(half) * scale <= LARGEST_AT_NATIVE)))
        return _merge(passes, MERGE_OVERLAP)

    def _run(self, frame: np.ndarray, dx: int, dy: int, size, full: tuple[int, int] | None = None) -> People:
        height, width = frame.shape[:2]
        people = self.multi.detect(frame, size, self.min_score, max_side=self.max_side)
        if len(people):
            people.keypoints[:, :, 0] += dx
            people.keypoints[:, :, 1] += dy
            full_w, full_h = full or (width, height)
            people.boxes = np.stack([box_from_keypoints(k, full_w, full_h) for k in people.keypoints])
        return people

    def detect_all(self, frame: np.ndarray, max_people: int = 10) -> list[tuple[np.ndarray, np.ndarray, float]]:
        """Up to ``max_people`` people, best first: ``[(box (4,) pixels, keypoints (17, 3), score)]``; the score is
        MultiPose's person score, or CenterNet's for people only it found."""
        people = self.multipose(frame)
        if self.detector is not None:
            people = self._add_detector_people(frame, people)
        visible = (people.keypoints[:, :, 2] >= KEYPOINT_SCORE).sum(axis=1) >= MIN_KEYPOINTS
        people = people.select(np.flatnonzero(visible))
        order = np.argsort(-people.scores, kind="stable")[:max_people]
        return [(people.boxes[i], people.keypoints[i], float(people.scores[i])) for i in order]

    def _add_detector_people(self, frame: np.ndarray, people: People) -> People:
        from partwise.models.centernet import PERSON

        found = self.detector.detect(frame, min_score=self.detector_threshold, max_detections=100,
                                     class_agnostic=False)
        boxes = found.boxes[found.classes == PERSON]
        scores = found.scores[found.classes == PERSON]
        if not len(boxes):
            return people
        if len(people):
            covered = iou_matrix(boxes, people.boxes).max(axis=1) >= MATCH_IOU
            boxes, scores = boxes[~covered], scores[~covered]
        if not len(boxes):
            return people
        keypoints = self.single.refine(frame, boxes) if self.single is not None else np.zeros((len(boxes), 17, 3))
        height, width = frame.shape[:2]
        boxes = np.clip(boxes, 0, [width - 1, height - 1, width - 1, height - 1])
        return People(np.concatenate([people.boxes, boxes]), np.concatenate([people.scores, scores]),
                      np.concatenate([people.keypoints, keypoints]))

    # -- tracked boxes ----------------------------------------------------------------------------------
    def estimate_many(self, frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """``(N, 17, 3)`` keypoints of the people in pixel ``boxes`` at this frame."""
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        out = np.zeros((len(boxes), 17, 3))
        if not len(boxes):
            return out
        people = self.multipose(frame)
        unmatched = np.ones(len(boxes), bool)
        if len(people):
            iou = iou_matrix(boxes, people.boxes)
            rows, cols = linear_sum_assignment(-iou)
            for r, c in zip(rows, cols):
                if iou[r, c] >= MATCH_IOU:
                    out[r] = people.keypoints[c]
                    unmatched[r] = False
        if unmatched.any() and self.single is not None:
            out[unmatched] = self.single.refine(frame, boxes[unmatched])
        return out

    def estimate(self, frame: np.ndarray, box: np.ndarray) -> np.ndarray:
        return self.estimate_many(frame, np.asarray(box)[None])[0]


def _heights(people: People) -> np.ndarray:
    return people.boxes[:, 3] - people.boxes[:, 1]


def _merge(passes: list[People], overlap: float) -> People:
    """People of several passes, best first, dropping one whose box lies mostly (intersection over the smaller box
    > ``overlap``) on a better person *of another pass*: the same person seen twice, at times as a narrower box.
    People of one pass are kept apart (MultiPose already separated them: walkers side by side overlap a lot)."""
    boxes = np.concatenate([g.boxes for g in passes]).reshape(-1, 4)
    scores = np.concatenate([g.scores for g in passes])
    keypoints = np.concatenate([g.keypoints for g in passes]).reshape(-1, 17, 3)
    origin = np.concatenate([np.full(len(g), i) for i, g in enumerate(passes)])
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep: list[int] = []
    for i in np.argsort(-scores, kind="stable"):
        others = np.array([k for k in keep if origin[k] != origin[i]], dtype=np.int64)
        if len(others):
            wh = np.clip(np.minimum(boxes[others, 2:], boxes[i, 2:]) - np.maximum(boxes[others, :2], boxes[i, :2]),
                         0, None)
            inter = wh[:, 0] * wh[:, 1]
            if (inter / np.maximum(np.minimum(area[others], area[i]), 1e-9)).max() > overlap:
                continue
        keep.append(int(i))
    return People(boxes[keep], scores[keep], keypoints[keep])
