"""Person keypoints from the optional pose extra (``pip install 'partwise[pose]'``: mediapipe 0.10.14, offline).

MediaPipe Pose returns 33 landmarks for ONE person per image, normalized to the image it saw, with a visibility
in [0, 1]. partwise maps them to the COCO-17 layout that every other part of the toolkit uses
(:mod:`partwise.models.pose_parts`): ``(17, 3)`` ``[x, y, score]`` in pixels of the full frame, score = visibility.

Several people per frame: MediaPipe's detector finds one person, so :meth:`PoseEstimator.estimate` is run on a crop
around each person box (from ``--boxes`` or a detector) and the landmarks are mapped back to frame pixels. Without
any boxes, :meth:`PoseEstimator.detect_all` runs the detector on the full frame, blanks the box of the person it
found (filled with the frame's median colour) and runs it again, until no one is found or ``max_people`` are; each
box is the keypoints' extent enlarged by :data:`BOX_MARGIN` (clipped to the frame). People who overlap a lot can be
missed this way (the first one's box hides the second): give boxes for crowded scenes.

mediapipe is imported lazily, on the first estimator built; without it :class:`PoseUnavailable` says how to get it.
"""
from __future__ import annotations

import numpy as np

from partwise.errors import ConfigError

#: MediaPipe landmark index for each COCO-17 keypoint (nose, eyes, ears, shoulders, elbows, wrists, hips, knees,
#: ankles; COCO odd = left, even = right, the same sides as MediaPipe's "left"/"right" = the person's own).
MEDIAPIPE_TO_COCO17 = np.array([0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28])
#: Crops around a person box are enlarged by this fraction of the box size on every side (pose needs context).
CROP_MARGIN = 0.25
#: A person box derived from keypoints is their extent enlarged by this fraction on every side.
BOX_MARGIN = 0.15
#: The head top is taken this many nose-to-shoulder-line distances above the nose (COCO has no head-top keypoint).
HEAD_TOP = 0.8
#: Minimum mean keypoint score for a detection on the full frame to count as a person.
MIN_PERSON_SCORE = 0.3


class PoseUnavailable(ConfigError):
    """The pose extra is not installed."""


def mediapipe_available() -> bool:
    """True when ``import mediapipe`` works."""
    try:
        import mediapipe  # noqa: F401
    except Exception:
        return False
    return True


def landmarks_to_coco17(landmarks: np.ndarray, origin: tuple[float, float], size: tuple[float, float]) -> np.ndarray:
    """(33, 4) MediaPipe landmarks ``[x, y, z, visibility]`` normalized to an image of ``size = (w, h)`` placed at
    ``origin = (x0, y0)`` in the frame -> (17, 3) COCO keypoints ``[x, y, score]`` in frame pixels."""
    lm = np.asarray(landmarks, dtype=np.float64)[MEDIAPIPE_TO_COCO17]
    out = np.empty((17, 3))
    out[:, 0] = lm[:, 0] * size[0] + origin[0]
    out[:, 1] = lm[:, 1] * size[1] + origin[1]
    out[:, 2] = np.clip(lm[:, 3], 0.0, 1.0)
    return out


def crop_window(box: np.ndarray, width: int, height: int, margin: float = CROP_MARGIN) -> tuple[int, int, int, int]:
    """Integer crop ``(x0, y0, x1, y1)`` around a pixel box enlarged by ``margin`` of its size per side, clipped to
    the frame; at least 2 pixels wide and high."""
    x1, y1, x2, y2 = (float(v) for v in box)
    dx, dy = (x2 - x1) * margin, (y2 - y1) * margin
    x0, y0 = int(max(0, np.floor(x1 - dx))), int(max(0, np.floor(y1 - dy)))
    xe, ye = int(min(width, np.ceil(x2 + dx))), int(min(height, np.ceil(y2 + dy)))
    return x0, y0, max(xe, x0 + 2), max(ye, y0 + 2)


def box_from_keypoints(keypoints: np.ndarray, width: int, height: int, min_score: float = 0.2,
                       margin: float = BOX_MARGIN) -> np.ndarray:
    """Pixel person box ``[x1, y1, x2, y2]`` from the extent of the keypoints scoring at least ``min_score``
    (all of them when none do), its top raised to :data:`HEAD_TOP` nose-to-shoulder distances above the nose when
    those are reliable, enlarged by ``margin`` per side and clipped to the frame."""
    k = np.asarray(keypoints, dtype=np.float64)
    ok = k[:, 2] >= min_score
    pts = k[ok, :2] if ok.any() else k[:, :2]
    lo, hi = pts.min(0), pts.max(0).copy()
    if ok[[0, 5, 6]].all():  # no keypoint marks the top of the head: reach above the nose
        neck_drop = (k[5, 1] + k[6, 1]) / 2 - k[0, 1]
        lo = np.array([lo[0], min(lo[1], k[0, 1] - HEAD_TOP * max(neck_drop, 0.0))])
    pad = (hi - lo) * margin
    return np.array([max(0.0, lo[0] - pad[0]), max(0.0, lo[1] - pad[1]),
                     min(width - 1.0, hi[0] + pad[0]), min(height - 1.0, hi[1] + pad[1])])


class PoseEstimator:
    """MediaPipe Pose in static-image mode (each call independent: crops of different people must not share a
    tracking state). ``model_complexity`` 0 (fast), 1 (default) or 2 (accurate)."""

    def __init__(self, model_complexity: int = 1, min_detection_confidence: float = 0.5):
        import os
        import warnings

        os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's native INFO/WARNING lines
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        # protobuf's deprecation warning fires on every call of mediapipe 0.10.14's process().
        warnings.filterwarnings("ignore", message=r"SymbolDatabase\.GetPrototype\(\) is deprecated")
        try:
            import mediapipe as mp
        except Exception as exc:  # ImportError, or a broken native library
            raise PoseUnavailable(f"the pose extra is not available ({exc}); install it with "
                                  "pip install 'partwise[pose]' (mediapipe, Python <= 3.12)") from None
        self._pose = mp.solutions.pose.Pose(static_image_mode=True, model_complexity=model_complexity,
                                            min_detection_confidence=min_detection_confidence)

    def close(self) -> None:
        self._pose.close()

    def __enter__(self) -> "PoseEstimator":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _run(self, image_rgb: np.ndarray) -> np.ndarray | None:
        """(33, 4) landmarks normalized to ``image_rgb``, or None when no person is found."""
        result = self._pose.process(np.ascontiguousarray(image_rgb, dtype=np.uint8))
        if result.pose_landmarks is None:
            return None
        return np.array([[p.x, p.y, p.z, p.visibility] for p in result.pose_landmarks.landmark])

    def estimate(self, frame_rgb: np.ndarray, box: np.ndarray) -> np.ndarray:
        """(17, 3) COCO keypoints in frame pixels of the person in pixel ``box``; all-zero (score 0) when the crop
        shows no person -- the part-box rule then falls back to the person box."""
        height, width = frame_rgb.shape[:2]
        x0, y0, x1, y1 = crop_window(box, width, height)
        landmarks = self._run(frame_rgb[y0:y1, x0:x1])
        if landmarks is None:
            return np.zeros((17, 3))
        return landmarks_to_coco17(landmarks, (x0, y0), (x1 - x0, y1 - y0))

    def detect(self, frame_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """One person on the full frame: ``(box (4,) pixels, keypoints (17, 3))``, or None when none is found or
        the mean keypoint score is below :data:`MIN_PERSON_SCORE`."""
        height, width = frame_rgb.shape[:2]
        landmarks = self._run(frame_rgb)
        if landmarks is None:
            return None
        keypoints = landmarks_to_coco17(landmarks, (0.0, 0.0), (width, height))
        if keypoints[:, 2].mean() < MIN_PERSON_SCORE:
            return None
        return box_from_keypoints(keypoints, width, height), keypoints

    def detect_all(self, frame_rgb: np.ndarray, max_people: int = 10) -> list[tuple[np.ndarray, np.ndarray]]:
        """Up to ``max_people`` people on the full frame, most salient first (see the module docstring):
        ``[(box (4,) pixels, keypoints (17, 3))]``."""
        work = np.array(frame_rgb, dtype=np.uint8, copy=True)
        fill = np.median(work.reshape(-1, 3), axis=0).astype(np.uint8)
        found = []
        while len(found) < max_people:
            person = self.detect(work)
            if person is None:
                break
            found.append(person)
            x1, y1, x2, y2 = np.round(person[0]).astype(int)
            if (x2 - x1) * (y2 - y1) <= 0:
                break
            work[y1:y2 + 1, x1:x2 + 1] = fill
        return found

