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

import atexit
import contextlib
import os
import re
import sys
import threading

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


#: first inferences of one estimator run with stderr quieted (native TensorFlow Lite/absl lines), unless verbose
QUIET_CALLS = 50
_STDERR_LOCK = threading.RLock()


def verbose_logging() -> bool:
    """True under ``--verbose`` (``PARTWISE_VERBOSE=1``): third-party native logging is left alone."""
    return os.environ.get("PARTWISE_VERBOSE", "") not in ("", "0")


def silence_native_logging() -> None:
    """Before mediapipe/TensorFlow are imported: glog/TensorFlow minimum levels to ERROR, absl's Python logger to
    ERROR -- unless verbose. Their C++ lines that ignore these (TensorFlow Lite's ``INFO: Created TensorFlow Lite
    XNNPACK delegate``, absl's ``W0000 ...`` before ``InitializeLog``) are muted by :func:`native_stderr_quiet`."""
    if verbose_logging():
        return
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except Exception:  # absl not installed
        pass


#: native lines of TensorFlow Lite, absl and glog that :func:`filter_native_stderr` drops
NATIVE_NOISE = re.compile(rb"^(INFO: Created TensorFlow Lite|WARNING: All log messages before absl::InitializeLog"
                          rb"|[IWE]\d{4} [\d:. ]+\s*\d+ [\w./-]+:\d+\] )")
_FILTER: dict = {}


def filter_native_stderr() -> None:
    """Drop TensorFlow Lite/absl/glog lines written to file descriptor 2 by native threads (they ignore the log
    level variables and print asynchronously, after the call that started them). Installed once per process:
    fd 2 becomes a pipe read by a thread that forwards every other byte to the original stderr at once. Undone at
    exit (the pipe drained first). Not installed under ``--verbose``."""
    with _STDERR_LOCK:
        if _FILTER or verbose_logging():
            return
        from partwise import progress

        try:
            sys.stderr.flush()
            progress.STDERR_TTY = progress.stderr_is_tty()  # bars keep their style behind the pipe
            saved = os.dup(2)
            read_end, write_end = os.pipe()
            os.dup2(write_end, 2)
            os.close(write_end)
        except (OSError, ValueError, AttributeError):
            return

        def forward() -> None:
            held = b""
            while True:
                try:
                    chunk = os.read(read_end, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                held += chunk
                pieces = re.split(rb"(?<=[\n\r])", held)
                held = pieces.pop() if pieces and not pieces[-1].endswith((b"\n", b"\r")) else b""
                out = b"".join(p for p in pieces if not NATIVE_NOISE.match(p))
                if held and not re.match(rb"^(INFO|WARNING|[IWE]\d)", held):  # a bar's text: show it now
                    out, held = out + held, b""
                if out:
                    try:
                        os.write(saved, out)
                    except OSError:
                        pass
            if held and not NATIVE_NOISE.match(held):
                os.write(saved, held)
            os.close(read_end)

        thread = threading.Thread(target=forward, name="partwise-stderr-filter", daemon=True)
        thread.start()
        _FILTER.update(saved=saved, thread=thread)
        atexit.register(_restore_stderr)


def _restore_stderr() -> None:
    if not _FILTER:
        return
    try:
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):
        pass
    os.dup2(_FILTER["saved"], 2)  # the pipe's last write end closes: the thread drains it and stops
    _FILTER["thread"].join(timeout=2.0)
    os.close(_FILTER["saved"])
    _FILTER.clear()


@contextlib.contextmanager
def native_stderr_quiet(enabled: bool = True):
    """Point file descriptor 2 at /dev/null for the block (native libraries write there directly)."""
    if not enabled:
        yield
        return
    with _STDERR_LOCK:
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError, AttributeError):
            yield
            return
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(devnull)


class PoseEstimator:
    """MediaPipe Pose in static-image mode (each call independent: crops of different people must not share a
    tracking state). ``model_complexity`` 0 (fast), 1 (default) or 2 (accurate)."""

    def __init__(self, model_complexity: int = 1, min_detection_confidence: float = 0.5):
        import warnings

        # protobuf's deprecation warning fires on every call of mediapipe 0.10.14's process().
        warnings.filterwarnings("ignore", message=r"SymbolDatabase\.GetPrototype\(\) is deprecated")
        self._quiet = not verbose_logging()
        silence_native_logging()
        filter_native_stderr()
        try:
            with native_stderr_quiet(self._quiet):
                import mediapipe as mp
        except Exception as exc:  # ImportError, or a broken native library
            raise PoseUnavailable(f"the pose extra is not available ({exc}); install it with "
                                  "pip install 'partwise[pose]' (mediapipe, Python <= 3.12)") from None
        with native_stderr_quiet(self._quiet):
            self._pose = mp.solutions.pose.Pose(static_image_mode=True, model_complexity=model_complexity,
                                                min_detection_confidence=min_detection_confidence)
        # TensorFlow Lite and absl print from native code on the first inferences (the landmark model runs only
        # once a person is found): stderr is quieted until a call found one (at most QUIET_CALLS calls)
        self._quiet_calls = QUIET_CALLS if self._quiet else 0

    def close(self) -> None:
        self._pose.close()

    def __enter__(self) -> "PoseEstimator":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _run(self, image_rgb: np.ndarray) -> np.ndarray | None:
        """(33, 4) landmarks normalized to ``image_rgb``, or None when no person is found."""
        if self._quiet_calls > 0:
            self._quiet_calls -= 1
            with native_stderr_quiet(True):
                result = self._pose.process(np.ascontiguousarray(image_rgb, dtype=np.uint8))
            if result.pose_landmarks is not None:
                self._quiet_calls = 0
        else:
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

