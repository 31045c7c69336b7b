"""Objects for ``partwise run``: COCO-80 objects per keyframe (CenterNet) and which body part touches which object.

**Objects** (:class:`ObjectSource`, ``--objects auto|none|NAME``): CenterNet (``partwise weights install
centernet``; ``auto`` = CenterNet when installed, else no objects) on the keyframe image, class-aware NMS at
:data:`NMS_IOU`, score >= ``threshold`` (:data:`OBJECT_THRESHOLD`), at most :data:`MAX_OBJECTS`. People are the
people source's job: ``person`` detections are dropped, and so is a non-person box that is a person box relabelled
(IoU >= :data:`PERSON_DUPLICATE_IOU` with a CenterNet person scoring >= :data:`PERSON_SCORE` or, for the touch
rule, with a person of the frame: CenterNet gives "remote", "clock"... boxes on whole people).
When the pose source already runs the same CenterNet for person boxes, its network is shared and the keyframe is
run once (:class:`SharedCenterNet`).

**Touch rule** (:func:`part_object_relations`). A person's size ``s`` is the longer side of their box. A body part
touches an object when one of the part's keypoints (score >= :data:`KEYPOINT_SCORE`; :data:`PART_KEYPOINTS`: head =
nose, eyes and ears, hands = wrists, arms = elbows, hip = hips, legs = knees, feet = ankles) lies within
``PART_MARGIN[part] * s`` of the object box (inside the box grown by that margin, rounded corners), or when at least
:data:`PART_OVERLAP` of the part box lies inside the object box (a part with no confident keypoint never touches,
and a part box that is the whole person box, the part-box rule's fallback, is not used). The margins are about
how far the part reaches past its keypoint: a hand (~0.11 of the stature, wrist to finger tips) and a foot (~0.15,
mostly forward of the ankle) 0.10; the head (radius ~0.06) 0.06; elbows, knees and hips 0.04. ``distance`` is
the nearest such keypoint's distance to the box over ``s`` (0 inside). **Nearest people**: an object goes to the
person(s) whose distance is within :data:`SHARE_MARGIN` of the smallest among the people it touches (two people
holding one ball both get it; a bystander whose hand is merely near does not). Limits: 2-D only, so a part in
front of or behind an object box (a walker passing a parked car) touches it too.

**Threshold** (:data:`OBJECT_THRESHOLD` 0.4, measured with the default people source). On ``basketball1.png``
(grayscale, a man holding a basketball) CenterNet never calls the ball ``sports_ball`` (that class's heatmap peaks
at 0.07, on the other man); its ball-like boxes are ``remote`` 0.43 on the hands and the lower half of the ball and
``remote`` 0.18 on the whole ball (``basketball2.png``: ``remote`` 0.42 on the hands and ball). On the 15 keyframes
of ``vtest_0000_0149.mp4`` (pedestrians) the non-person detections touching a walker are ``skis`` on their feet
(up to 0.39), ``backpack`` and others: 104 part-object relations at 0.2, 33 at 0.25, 4 at 0.3-0.35, none at 0.4,
where only the parked car and truck (touching nobody) remain. 0.4 keeps the hands-on-ball ``remote`` and no false
relation on the street clip; lower it (``--object-threshold``) for footage with small or clearer objects.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from partwise.models.centernet import DETECTIONS, PERSON, Objects, decode, preprocess

#: default minimum CenterNet score of an object (see "Threshold" in the module docstring)
OBJECT_THRESHOLD = 0.4
#: class-aware NMS IoU (CenterNet's own 0.4)
NMS_IOU = 0.4
MAX_OBJECTS = 20
#: a non-person box overlapping a person box (CenterNet's scoring >= PERSON_SCORE, or a person of the frame) at least
#: this much is that person relabelled
PERSON_DUPLICATE_IOU = 0.6
PERSON_SCORE = 0.2
#: a keypoint counts at this score (the Activity2Vec threshold)
KEYPOINT_SCORE = 0.2
#: COCO-17 keypoints locating each body part (odd = left, even = right)
PART_KEYPOINTS = {"head": (0, 1, 2, 3, 4), "right_hand": (10,), "left_hand": (9,), "right_arm": (8,),
                  "left_arm": (7,), "hip": (11, 12), "right_leg": (14,), "left_leg": (13,), "right_foot": (16,),
                  "left_foot": (15,)}
#: how far (fraction of the person's size) past its keypoint a part reaches
PART_MARGIN = {"head": 0.06, "right_hand": 0.10, "left_hand": 0.10, "right_arm": 0.04, "left_arm": 0.04,
               "hip": 0.04, "right_leg": 0.04, "left_leg": 0.04, "right_foot": 0.10, "left_foot": 0.10}
#: fraction of a part box inside an object box that makes the part touch it
PART_OVERLAP = 0.5
#: people whose distance to an object is within this (fraction of size) of the nearest one's share the object
SHARE_MARGIN = 0.05


def _installed(name: str) -> bool:
    from partwise.errors import ConfigError
    from partwise.models.weights import resolve

    try:
        resolve(name, "--objects")
    except ConfigError:
        return False
    return True


class SharedCenterNet:
    """A CenterNet whose last image's raw detections are kept: the pose source (person boxes) and the object source
    ask for the same keyframe, and the network runs once."""

    def __init__(self, net):
        self.net = net
        self.graph = net.graph
        self._last: tuple[np.ndarray, Any] | None = None

    def detect(self, rgb: np.ndarray, **decode_options) -> Objects:
        from partwise.models.movenet import as_rgb

        rgb = as_rgb(rgb)
        last = self._last
        if last is None or last[0].shape != rgb.shape or not np.array_equal(last[0], rgb):
            self._last = last = (rgb.copy(), self.graph(preprocess(rgb))[DETECTIONS])
        return decode(last[1], (rgb.shape[1], rgb.shape[0]), **decode_options)


class ObjectSource:
    """CenterNet objects other than people: ``ObjectSource("centernet").detect(frame) -> Objects``."""

    def __init__(self, spec: str = "centernet", threshold: float = OBJECT_THRESHOLD, net=None):
        from partwise.models.centernet import CenterNet
        from partwise.models.weights import resolve

        self.name = str(spec)
        self.path = str(resolve(spec, "--objects")[0])  # for run.json's sources
        self.family = "object_detector"
        self.threshold = threshold
        self.net = net if net is not None else CenterNet.load(spec)

    def detect(self, frame: np.ndarray) -> Objects:
        """Non-person objects of an ``(H, W, 3)`` uint8 RGB frame, best first (see the module docstring)."""
        from partwise.infer.tracking import iou_matrix

        found = self.net.detect(frame, min_score=min(self.threshold, PERSON_SCORE), iou_threshold=NMS_IOU,
                                max_detections=100, class_agnostic=False)
        person = found.classes == PERSON
        keep = ~person & (found.scores >= self.threshold)
        if person.any() and keep.any():
            keep &= iou_matrix(found.boxes, found.boxes[person]).max(axis=1) < PERSON_DUPLICATE_IOU
        return found.select(np.flatnonzero(keep)[:MAX_OBJECTS])


def make_object_source(spec: str | None, threshold: float = OBJECT_THRESHOLD, pose=None,
                       person_detector: str | None = "auto") -> ObjectSource | None:
    """``--objects``: ``auto`` (CenterNet when installed, else None), ``none``/None (off), or a weights name or
    graph file (CenterNet). With ``pose`` running the same CenterNet for person boxes (its ``detector``, loaded
    from ``person_detector``), the network is shared."""
    from partwise.errors import ConfigError
    from partwise.models import weights

    if spec is None or spec == "none":
        return None
    if spec == "auto":
        if not _installed("centernet"):
            return None
        spec = "centernet"
    entry = weights.KNOWN_WEIGHTS.get(str(spec))
    if entry is not None and entry.name != "centernet":
        raise ConfigError(f"--objects {spec}: only the CenterNet object detector (centernet) can be run")
    shared = getattr(pose, "detector", None)  # MoveNetPose keeps its CenterNet as a SharedCenterNet
    if isinstance(shared, SharedCenterNet) and spec == "centernet" and person_detector in ("auto", "centernet"):
        return ObjectSource(spec, threshold, net=shared)
    return ObjectSource(spec, threshold)


def _point_box_distance(points: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Euclidean distance of ``(..., 2)`` points to an ``[x1, y1, x2, y2]`` box (0 inside)."""
    dx = np.maximum(np.maximum(box[0] - points[..., 0], points[..., 0] - box[2]), 0)
    dy = np.maximum(np.maximum(box[1] - points[..., 1], points[..., 1] - box[3]), 0)
    return np.hypot(dx, dy)


def part_object_relations(keypoints: np.ndarray, part_boxes: np.ndarray, person_boxes: np.ndarray,
                          objects: Objects) -> list[list[dict]]:
    """Which body part of each person touches which object (the rule of the module docstring).

    ``keypoints`` ``(N, 17, 3)`` COCO-17 pixels, ``part_boxes`` ``(N, 10, 4)`` in :data:`partwise.vocab.BODY_PARTS`
    order, ``person_boxes`` ``(N, 4)``, ``objects`` of the same frame -> per person a list of ``{"part", "object"
    (index into objects), "class_name", "class_id", "score", "box_px", "distance"}``, by object then part order."""
    from partwise.vocab import BODY_PARTS

    keypoints = np.asarray(keypoints, np.float64).reshape(-1, 17, 3)
    part_boxes = np.asarray(part_boxes, np.float64).reshape(-1, len(BODY_PARTS), 4)
    person_boxes = np.asarray(person_boxes, np.float64).reshape(-1, 4)
    n = len(person_boxes)
    out: list[list[dict]] = [[] for _ in range(n)]
    if n == 0 or len(objects) == 0:
        return out
    size = np.maximum(person_boxes[:, 2] - person_boxes[:, 0], person_boxes[:, 3] - person_boxes[:, 1])
    size = np.maximum(size, 1.0)
    fallback = np.all(part_boxes == person_boxes[:, None], axis=-1)  # the rule's whole-person box: no part box
    part_area = np.prod(np.clip(part_boxes[..., 2:] - part_boxes[..., :2], 0, None), axis=-1)  # N, 10
    from partwise.infer.tracking import iou_matrix

    relabelled = iou_matrix(objects.boxes, person_boxes).max(axis=1) >= PERSON_DUPLICATE_IOU
    for k in np.flatnonzero(~relabelled):
        box = np.asarray(objects.boxes[k], np.float64)
        touches: list[list[tuple[str, float]]] = [[] for _ in range(n)]
        inter_wh = np.clip(np.minimum(part_boxes[..., 2:], box[2:]) - np.maximum(part_boxes[..., :2], box[:2]), 0, None)
        inside = np.prod(inter_wh, axis=-1) / np.where(part_area > 0, part_area, 1.0)  # N, 10
        inside[fallback] = 0.0
        for j, part in enumerate(BODY_PARTS):
            kp = keypoints[:, PART_KEYPOINTS[part]]  # N, m, 3
            seen = kp[..., 2] >= KEYPOINT_SCORE
            dist = np.where(seen, _point_box_distance(kp[..., :2], box), np.inf).min(axis=1) / size
            touch = seen.any(axis=1) & ((dist <= PART_MARGIN[part]) | (inside[:, j] >= PART_OVERLAP))
            for i in np.flatnonzero(touch):
                touches[i].append((part, float(dist[i])))
        nearest = [min(d for _, d in t) if t else np.inf for t in touches]
        best = min(nearest)
        for i in range(n):
            if nearest[i] <= best + SHARE_MARGIN:
                for part, d in touches[i]:
                    out[i].append({"part": part, "object": int(k), "class_name": objects.names[k],
                                   "class_id": int(objects.classes[k]), "score": float(objects.scores[k]),
                                   "box_px": box.tolist(), "distance": d})
    return out


def keyframe_relations(source, frame: np.ndarray, keypoints: np.ndarray, part_boxes: np.ndarray,
                       person_boxes: np.ndarray) -> list[list[dict]]:
    """The objects stage for one keyframe: per person the objects its parts touch
    (:func:`part_object_relations`), from ``source`` (an :class:`ObjectSource`; None: no objects) on the keyframe's
    ``frame`` ``(H, W, 3)`` uint8 RGB."""
    if source is None:
        return [[] for _ in person_boxes]
    return part_object_relations(keypoints, part_boxes, person_boxes, source.detect(frame))
