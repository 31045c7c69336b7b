"""The default people-and-pose source of ``partwise run``: real pretrained models, offline.

* **MoveNet MultiPose** (embedded, Apache-2.0) on the whole frame at its own resolution
  (:func:`partwise.models.movenet.preprocess_native`: padded to multiples of 32, scaled down when its longer side
  exceeds ``max_side``): people are found bottom-up, 6 at most per pass. Small people need the resolution: on a 768x576 street
  clip, at MultiPose's usual 256 px it finds 2 of 7 pedestrians (about 25 px tall), at native size 6.
* **Two scales**: also at the original's 256 px square, where people who fill the frame are found (at full
  resolution MoveNet Lightning breaks a close-up person into pieces); the passes are merged, the same person seen
  twice kept once (the better score).
* **More than six people**: the full-resolution pass runs on two overlapping halves of the frame (6 slots each),
  merged the same way; a half that fills its six slots (a crowd) is split again (:data:`MAX_TILE_SPLITS`).
* **CenterNet person boxes** (``partwise weights install centernet``, optional): the full-resolution pass then runs
  on crops around CenterNet's person boxes, weak ones included (:data:`CROP_DETECTOR_SCORE`), instead of the two
  halves: on the street clip the crops cover about a third of the frame, the people found are the same, and the
  keyframe costs about half as much. People the detector finds (score >= ``detector_threshold``) that no MultiPose
  person overlaps are added, their keypoints from a **SinglePose** crop (``movenet-thunder``, else
  ``movenet-lightning``, when installed).

Per-person pose at the other frames of the short window around each keyframe (:meth:`MoveNetPose.estimate_window`)
comes from MultiPose at the frame's resolution on crops around each person, placed where the neighbouring frame's
pose put them, walking outward from the keyframe (whose whole-frame passes are reused): on the 768x576 street clip
the crops cover 10-30% of the frame and cost about a quarter of the whole-frame passes. Their people are matched to
the person boxes by IoU (Hungarian); a person it misses gets a SinglePose crop when SinglePose is installed, else
zero-score keypoints (the part-box rule then falls back to the person box).
"""
from __future__ import annotations

import numpy as np

from partwise.infer.assignment import linear_sum_assignment
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
#: pose at frames next to a keyframe comes from crops around each person (where the neighbouring frame's pose put
#: them) grown by this fraction of the person's height on each side: room for a frame's motion and the context
#: MultiPose needs ...
CROP_MARGIN = 0.3
#: ... and at least this many pixels, the crop at least CROP_MIN_SIDE pixels wide and high
CROP_MIN_MARGIN = 16
CROP_MIN_SIDE = 128
#: a person's box where the neighbouring frame put them and their box in a crop are matched grown by this much of
#: their size per side: a far walker 10 px wide moves 10 px in 0.4 s, which leaves no plain IoU
CROP_MATCH_GROW = 1.0
#: crops covering more than this fraction of the frame cost about as much as the whole-frame passes: use those
CROP_AREA_LIMIT = 0.6
#: a full-resolution tile that fills MultiPose's slots is split in two, at most this many times over ...
MAX_TILE_SPLITS = 2
#: ... while its longer side stays at least this many model pixels (a walker needs room around them)
MIN_TILE_SIDE = 192
#: a person whose box comes this close (pixels) to a half's inner edge is cut by it: the other half holds them whole
TILE_EDGE = 2
#: above MAX_SIDE, a crop runs at the frame's own resolution when it holds a person shorter than this at MAX_SIDE
#: (as at 256 px, MultiPose sees people this tall well and smaller ones less and less)
SMALL_PERSON = SMALLEST_AT_256
#: with CenterNet installed, the keyframe's full-resolution pass runs on crops around its person boxes scoring at
#: least this (weak ones included: a false box costs a crop, a missed person is lost)
CROP_DETECTOR_SCORE = 0.25


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
            from partwise.infer.objects import SharedCenterNet
            from partwise.models.centernet import CenterNet

            self.detector = SharedCenterNet(CenterNet.load(detector))
        if single == "auto":
            single = next((n for n in ("movenet-thunder", "movenet-lightning") if _installed(n)), None)
        self.single = MoveNet.load(single) if single else None
        self._memo: tuple[np.ndarray, People] | None = None

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
        """:meth:`full_multipose`, remembered for the last frame: the run asks for the people of a keyframe and
        then for the pose of its people in the same frame."""
        memo = self._memo
        if memo is not None and memo[0].shape == frame.shape and np.array_equal(memo[0], frame):
            people = memo[1]
        else:
            people = self.full_multipose(frame)
            self._memo = (np.array(frame, copy=True), people)
        return people.select(np.arange(len(people)))  # a copy: callers may change it

    def full_multipose(self, frame: np.ndarray) -> People:
        """MultiPose at two scales, merged: the original's 256 px square for people who fill much of the frame, and
        the frame's own resolution for small people, as two overlapping halves (6 people each: 12 in all). Each
        pass keeps the people of the size it sees well (:data:`SMALLEST_AT_256`, :data:`LARGEST_AT_NATIVE`).
        People with score > ``min_score``, boxes from the keypoints (tighter than the model's box), best first.

        Why halves and no whole-frame pass at full resolution: the halves overlap by an eighth of the frame on each
        side of the cut, so anyone narrower than a quarter of the frame (everyone the full-resolution passes keep)
        is whole in one of them; the whole frame would add nobody, its 6 slots are often all taken on a street,
        and it costs as much as both halves."""
        height, width = frame.shape[:2]
        small = self._run(frame, 0, 0, 256)
        if max(height, width) <= 1.5 * 256:  # the frame is about the model's size: one pass sees everyone
            return small
        scale_256 = 256 / max(height, width)
        passes = [small.select(np.flatnonzero(_heights(small) * scale_256 >= SMALLEST_AT_256))]
        scale = min(1.0, self.max_side / max(height, width))
        if self.detector is not None:
            # CenterNet's person boxes, even weak ones, say where people may be: crops around them at the frame's
            # resolution see the small people the halves would, at a fraction of the cost
            boxes, scores = self._person_boxes(frame, CROP_DETECTOR_SCORE)
            regions = crop_regions(boxes, width, height)
            area = _area(regions)
            if len(regions) and not (_heights_of(boxes) * scale > LARGEST_AT_NATIVE).any() \
                    and area.sum() <= CROP_AREA_LIMIT * width * height:
                scales = self._crop_scales(boxes, regions, scale, width * height * scale ** 2)
                passes += self._crop_passes(frame, regions, scales, boxes[scores >= self.detector_threshold])
                return _merge(passes, MERGE_OVERLAP)
        for part, dx, dy in _halves(frame):
            passes.append(self._tile_people(part, dx, dy, (width, height), scale))
        return _merge(passes, MERGE_OVERLAP)

    @staticmethod
    def _crop_scales(boxes: np.ndarray, regions: np.ndarray, scale: float, budget: float) -> np.ndarray:
        """The scale of each crop region: the frame's ``scale`` (max_side), but the frame's own resolution for a
        region holding a person too small to be seen well at ``scale`` (:data:`SMALL_PERSON`) and nobody too tall
        for it, while the crops' model input stays within ``budget`` pixels (one whole-frame pass at max_side)."""
        scales = np.full(len(regions), scale)
        if scale >= 1 or not len(boxes):
            return scales
        inside = _centres_inside(boxes, regions)
        heights = _heights_of(boxes)
        fine = (inside & (heights * scale < SMALL_PERSON)).any(axis=1) & ~(inside & (heights > LARGEST_AT_NATIVE)).any(axis=1)
        area = _area(regions)
        if (area * np.where(fine, 1.0, scale ** 2)).sum() <= budget:
            scales[fine] = 1.0
        return scales

    def _tile_people(self, part: np.ndarray, dx: int, dy: int, full: tuple[int, int], scale: float,
                     known: np.ndarray | None = None, depth: int = 0) -> People:
        """The full-resolution pass on ``part`` (at offset ``dx, dy`` of a ``full`` frame, at the frame's own
        ``scale``). Where it fills all six slots there may be more people (a crowd) -- where the people are
        ``known`` (pixel boxes of tracked people or of a person detector), where more than six of them are: its
        two halves are searched too, down to :data:`MAX_TILE_SPLITS` more levels while a tile is at least
        :data:`MIN_TILE_SIDE` pixels, and add the people this pass did not see; a person a half cuts at its inner
        edge is left to the other half, which holds them whole."""
        found = self._run(part, dx, dy, "native", full, max_side=_scaled_side(part, scale))
        kept = found.select(np.flatnonzero(_heights(found) * scale <= LARGEST_AT_NATIVE))
        height, width = part.shape[:2]
        if not (len(found) >= MULTIPOSE_SLOTS and depth < MAX_TILE_SPLITS
                and max(height, width) * scale >= 2 * MIN_TILE_SIDE):
            return kept
        if known is not None:
            if int(_centres_inside(known, np.array([[dx, dy, dx + width, dy + height]])).sum()) <= MULTIPOSE_SLOTS:
                return kept  # the slots hold everyone known here: a person missed is not for want of a slot
        halves = []
        for sub, sx, sy in _halves(part):
            people = self._tile_people(sub, dx + sx, dy + sy, full, scale, known, depth + 1)
            x0, y0, x1, y1 = (people.boxes - [dx, dy, dx, dy]).T  # in part pixels
            sub_h, sub_w = sub.shape[:2]
            cut = (((x0 <= sx + TILE_EDGE) & (sx > 0)) | ((y0 <= sy + TILE_EDGE) & (sy > 0))
                   | ((x1 >= sx + sub_w - TILE_EDGE) & (sx + sub_w < width))
                   | ((y1 >= sy + sub_h - TILE_EDGE) & (sy + sub_h < height)))
            halves.append(people.select(np.flatnonzero(~cut)))
        more = _merge(halves, MERGE_OVERLAP)
        seen = (_overlap_of_smaller(more.boxes, kept.boxes) > MERGE_OVERLAP).any(axis=1)
        return _merge([kept, more.select(np.flatnonzero(~seen))], MERGE_OVERLAP)

    def _run(self, frame: np.ndarray, dx: int, dy: int, size, full: tuple[int, int] | None = None,
             max_side: int | None = None) -> People:
        height, width = frame.shape[:2]
        people = self.multi.detect(frame, size, self.min_score, max_side=max_side or self.max_side)
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

    def _person_boxes(self, frame: np.ndarray, min_score: float) -> tuple[np.ndarray, np.ndarray]:
        """CenterNet's person boxes ``(K, 4)`` pixels and scores ``(K,)`` of at least ``min_score`` in ``frame`` (the
        network runs once per frame: the keyframe's crops and its extra people ask for the same frame)."""
        from partwise.models.centernet import PERSON

        found = self.detector.detect(frame, min_score=min_score, max_detections=100, class_agnostic=False)
        person = found.classes == PERSON
        return found.boxes[person], found.scores[person]

    def _add_detector_people(self, frame: np.ndarray, people: People) -> People:
        boxes, scores = self._person_boxes(frame, self.detector_threshold)
        if not len(boxes):
            return people
        if len(people):
            # a person MultiPose found is the detector's person when the boxes overlap, or when one box lies mostly
            # inside the other (keypoints of a far walker can give a box a few pixels wide, with little IoU)
            covered = ((iou_matrix(boxes, people.boxes) >= MATCH_IOU)
                       | (_overlap_of_smaller(boxes, people.boxes) > MERGE_OVERLAP)).any(axis=1)
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
        if not len(boxes):
            return np.zeros((0, 17, 3))
        return self._match(frame, boxes, self.multipose(frame))

    def estimate_window(self, window: np.ndarray, boxes: np.ndarray, centre: int) -> np.ndarray:
        """``(N, W, 17, 3)`` keypoints of the people in pixel ``boxes`` (where they are at ``window[centre]``) over
        the frames of ``window`` ``(W, H, W, 3)``: at the centre as :meth:`estimate_many`; at the other frames,
        walking outward from the centre, MultiPose at the frame's resolution on crops around each person where
        the neighbouring frame's pose put them (:meth:`estimate_crops`): people move a few pixels per frame, and
        crops cost a fraction of the whole frame's passes."""
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        out = np.zeros((len(boxes), len(window), 17, 3))
        if not len(boxes):
            return out
        out[:, centre] = self.estimate_many(window[centre], boxes)
        height, width = window.shape[1:3]
        for direction in (-1, 1):
            current = boxes.copy()
            j = centre + direction
            while 0 <= j < len(window):
                previous = out[:, j - direction]
                seen = (previous[:, :, 2] >= KEYPOINT_SCORE).sum(axis=1) >= MIN_KEYPOINTS
                for i in np.flatnonzero(seen):
                    current[i] = box_from_keypoints(previous[i], width, height)
                out[:, j] = self.estimate_crops(window[j], current)
                j += direction
        return out

    def estimate_crops(self, frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """``(N, 17, 3)`` keypoints of the people in pixel ``boxes`` from MultiPose on crops around them at the
        frame's resolution (:data:`CROP_MARGIN`; overlapping crops joined, so each person is whole in one crop),
        matched to the boxes as in :meth:`estimate_many`. Falls back to the whole-frame passes where crops would
        not help: small frames, a person too tall for the full-resolution pass, or crops covering most of the
        frame."""
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        height, width = frame.shape[:2]
        scale = min(1.0, self.max_side / max(height, width))
        if (not len(boxes) or max(height, width) <= 1.5 * 256
                or (_heights_of(boxes) * scale > LARGEST_AT_NATIVE).any()):
            return self.estimate_many(frame, boxes)
        regions = crop_regions(boxes, width, height)
        if _area(regions).sum() > CROP_AREA_LIMIT * width * height:
            return self.estimate_many(frame, boxes)
        return self._match(frame, boxes, _merge(self._crop_passes(frame, regions, scale, boxes), MERGE_OVERLAP),
                           grow=CROP_MATCH_GROW)

    def _crop_passes(self, frame: np.ndarray, regions: np.ndarray, scale: float | np.ndarray,
                     known: np.ndarray | None = None) -> list[People]:
        """MultiPose on each ``[x0, y0, x1, y1]`` region at ``scale`` (the frame's, or one per region), in frame
        coordinates, people too tall for that scale left out (:data:`LARGEST_AT_NATIVE`). A region that may hold more than six people is searched
        by halves too when its pass fills its six slots and, where the people are ``known`` (boxes of the tracked
        people, or a person detector's confident ones), more than six of them are in it (:meth:`_tile_people`)."""
        height, width = frame.shape[:2]
        passes = []
        for (x0, y0, x1, y1), region_scale in zip(regions, np.broadcast_to(scale, len(regions))):
            passes.append(self._tile_people(frame[y0:y1, x0:x1], x0, y0, (width, height), float(region_scale), known))
        return passes

    def _match(self, frame: np.ndarray, boxes: np.ndarray, people: People, grow: float = 0.0) -> np.ndarray:
        """Each box's keypoints from the MultiPose person it overlaps best (Hungarian on IoU, at least
        :data:`MATCH_IOU`, both boxes grown by ``grow`` times their own width and height per side); boxes left over
        get a SinglePose crop when installed, else zero scores."""
        out = np.zeros((len(boxes), 17, 3))
        unmatched = np.ones(len(boxes), bool)
        if len(people):
            iou = iou_matrix(_grown(boxes, grow), _grown(people.boxes, grow))
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


def _overlap_of_smaller(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(A, B)`` intersection of each pair of xyxy boxes over the smaller box's area."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    wh = np.clip(np.minimum(a[:, None, 2:], b[None, :, 2:]) - np.maximum(a[:, None, :2], b[None, :, :2]), 0, None)
    area_a, area_b = _area(a), _area(b)
    return wh[..., 0] * wh[..., 1] / np.maximum(np.minimum(area_a[:, None], area_b[None, :]), 1e-9)


def _centres_inside(boxes: np.ndarray, regions: np.ndarray) -> np.ndarray:
    """``(R, B)``: whether the centre of each xyxy box lies in each ``[x0, y0, x1, y1)`` region."""
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    return ((centre[None] >= regions[:, None, :2]) & (centre[None] < regions[:, None, 2:])).all(axis=2)


def _heights(people: People) -> np.ndarray:
    return people.boxes[:, 3] - people.boxes[:, 1]


def _halves(frame: np.ndarray) -> list[tuple[np.ndarray, int, int]]:
    """Two halves of the frame along its longer side, each reaching an eighth of that side past the middle:
    ``[(part, dx, dy)]`` with the part's offset in the frame."""
    height, width = frame.shape[:2]
    if width >= height:
        overlap = width // 8
        return [(frame[:, :width // 2 + overlap], 0, 0), (frame[:, width // 2 - overlap:], width // 2 - overlap, 0)]
    overlap = height // 8
    return [(frame[:height // 2 + overlap], 0, 0), (frame[height // 2 - overlap:], 0, height // 2 - overlap)]


def _scaled_side(part: np.ndarray, scale: float) -> int:
    """``max_side`` that scales ``part`` by ``scale`` in :func:`partwise.models.movenet.preprocess_native`."""
    side = max(part.shape[:2])
    return side if scale >= 1 else max(32, int(round(side * scale)))


def _grown(boxes: np.ndarray, grow: float) -> np.ndarray:
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    return boxes + np.concatenate([boxes[:, 2:] - boxes[:, :2]] * 2, axis=1) * grow * np.array([-1, -1, 1, 1])


def _heights_of(boxes: np.ndarray) -> np.ndarray:
    return boxes[:, 3] - boxes[:, 1]


def _area(regions: np.ndarray) -> np.ndarray:
    regions = np.asarray(regions, np.float64).reshape(-1, 4)
    return (regions[:, 2] - regions[:, 0]) * (regions[:, 3] - regions[:, 1])


def crop_regions(boxes: np.ndarray, width: int, height: int, margin: float = None) -> np.ndarray:
    """``(R, 4)`` int pixel regions ``[x0, y0, x1, y1]`` covering every box grown by ``margin`` (default
    :data:`CROP_MARGIN`) of its height on each side (at least :data:`CROP_MIN_MARGIN` pixels; at least
    :data:`CROP_MIN_SIDE` wide and high), clipped to the frame;
    regions that overlap are joined into their bounding rectangle until none overlap, so nobody is cut by a crop
    edge between two crops."""
    margin = CROP_MARGIN if margin is None else margin
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    grow = np.maximum(_heights_of(boxes) * margin, CROP_MIN_MARGIN)[:, None] * np.array([-1, -1, 1, 1])
    grown = boxes + grow
    # at least CROP_MIN_SIDE on each side: MultiPose misses a 25 px walker in a crop barely larger than him
    centre, size = (grown[:, :2] + grown[:, 2:]) / 2, np.maximum(grown[:, 2:] - grown[:, :2], CROP_MIN_SIDE)
    grown = np.concatenate([centre - size / 2, centre + size / 2], axis=1)
    regions = [list(r) for r in np.clip(grown, 0, [width, height, width, height])]
    joined = True
    while joined:
        joined = False
        for i in range(len(regions)):
            for j in range(i + 1, len(regions)):
                a, b = regions[i], regions[j]
                if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]:
                    regions[i] = [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])]
                    del regions[j]
                    joined = True
                    break
            if joined:
                break
    out = np.array([[np.floor(r[0]), np.floor(r[1]), np.ceil(r[2]), np.ceil(r[3])] for r in regions], np.int64)
    return out.reshape(-1, 4)


def _merge(passes: list[People], overlap: float) -> People:
    """People of several passes, best first, dropping one whose box lies mostly (intersection over the smaller box
    > ``overlap``) on a better person *of another pass*: the same person seen twice, at times as a narrower box.
    People of one pass are kept apart (MultiPose already separated them: walkers side by side overlap a lot)."""
    boxes = np.concatenate([g.boxes for g in passes]).reshape(-1, 4)
    scores = np.concatenate([g.scores for g in passes])
    keypoints = np.concatenate([g.keypoints for g in passes]).reshape(-1, 17, 3)
    origin = np.concatenate([np.full(len(g), i) for i, g in enumerate(passes)])
    keep: list[int] = []
    for i in np.argsort(-scores, kind="stable"):
        others = np.array([k for k in keep if origin[k] != origin[i]], dtype=np.int64)
        if len(others) and _overlap_of_smaller(boxes[i], boxes[others]).max() > overlap:
            continue
        keep.append(int(i))
    return People(boxes[keep], scores[keep], keypoints[keep])
