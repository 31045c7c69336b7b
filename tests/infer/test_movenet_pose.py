"""The default pose source: MoveNet MultiPose at two scales (embedded weights), merging of its passes."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from partwise.infer.movenet_pose import MoveNetPose, _merge
from partwise.models.movenet import People

REAL = Path(__file__).resolve().parents[2] / "examples" / "real"


def _people(boxes, scores):
    boxes = np.array(boxes, float)
    return People(boxes, np.array(scores, float), np.zeros((len(boxes), 17, 3)))


def test_merge_keeps_one_of_a_person_seen_by_two_passes_but_neighbours_of_one_pass():
    full = _people([[0, 0, 10, 20], [4, 0, 14, 20]], [0.5, 0.4])          # two walkers side by side, IoU 0.43
    small = _people([[0, 1, 10, 21], [50, 50, 60, 70]], [0.7, 0.2])      # the first again (better), someone else
    merged = _merge([full, small], 0.6)
    assert merged.scores.tolist() == [0.7, 0.4, 0.2]
    assert merged.boxes[0].tolist() == [0, 1, 10, 21]


def test_two_people_on_the_basketball_photo():
    """A close-up (people fill the frame): found by the 256 px pass; at full resolution MoveNet Lightning splits
    them into pieces, which the merge drops."""
    image = np.asarray(Image.open(REAL / "basketball1.png").convert("RGB"))
    pose = MoveNetPose(detector=None, single=None)
    people = pose.detect_all(image)
    assert len(people) == 2
    left, right = sorted(people, key=lambda p: p[0][0])
    assert left[0][0] < 60 and 140 < left[0][2] < 200 and right[0][0] > 400
    for box, keypoints, score in people:
        good = keypoints[keypoints[:, 2] >= 0.3]
        assert len(good) >= 8 and score > 0.25
        assert ((good[:, 0] >= box[0]) & (good[:, 0] <= box[2]) & (good[:, 1] >= box[1])
                & (good[:, 1] <= box[3])).all()
    # the pose of each person at this frame, from their boxes
    estimated = pose.estimate_many(image, np.array([p[0] for p in people]))
    np.testing.assert_allclose(estimated, np.array([p[1] for p in people]))


def test_crop_regions_join_overlapping_people_and_keep_a_minimum_size():
    from partwise.infer.movenet_pose import CROP_MIN_SIDE, crop_regions

    boxes = np.array([[100, 100, 130, 200], [125, 105, 150, 205], [600, 50, 608, 80]], float)
    regions = crop_regions(boxes, 768, 576)
    assert len(regions) == 2  # the two overlapping walkers share one crop, the far one has its own
    joint, far = sorted(regions.tolist())
    assert joint[0] <= 100 and joint[2] >= 150 and joint[1] <= 100 and joint[3] >= 205
    assert far[2] - far[0] >= CROP_MIN_SIDE - 1 and far[3] - far[1] >= CROP_MIN_SIDE - 1
    assert (regions >= 0).all() and (regions[:, 2] <= 768).all() and (regions[:, 3] <= 576).all()


def test_window_pose_from_crops_agrees_with_the_whole_frame_passes():
    """The pose window's frames next to the keyframe come from crops around each walker: the same keypoints as
    the whole-frame passes (to a few pixels), at the keyframe exactly the same."""
    from partwise.data.video import read_frames

    window = read_frames(REAL / "vtest_0000_0149.mp4", np.array([96, 100, 104]))
    pose = MoveNetPose(detector=None, single=None)
    boxes = np.array([p[0] for p in pose.detect_all(window[1])])
    assert len(boxes) >= 5
    tracks = pose.estimate_window(window, boxes, 1)
    assert tracks.shape == (len(boxes), 3, 17, 3)
    np.testing.assert_array_equal(tracks[:, 1], pose.estimate_many(window[1], boxes))
    for j in (0, 2):
        whole = pose.estimate_many(window[j], boxes)
        both = (whole[:, :, 2] >= 0.3) & (tracks[:, j, :, 2] >= 0.3)
        assert both.sum() >= 0.6 * (whole[:, :, 2] >= 0.3).sum()
        assert np.median(np.linalg.norm(whole[:, :, :2] - tracks[:, j, :, :2], axis=-1)[both]) < 3.0


class _BoxesDetector:
    """Stands in for CenterNet: the given person boxes (and nothing else) for every frame."""

    def __init__(self, boxes, scores):
        self.boxes, self.scores = np.asarray(boxes, float), np.asarray(scores, float)

    def detect(self, frame, min_score=0.0, **_):
        from partwise.models.centernet import PERSON, Objects

        keep = self.scores >= min_score
        return Objects(self.boxes[keep], self.scores[keep], np.full(int(keep.sum()), PERSON), ["person"] * int(keep.sum()))


def test_with_person_boxes_the_keyframe_runs_crops_not_halves_and_finds_the_same_people():
    """With a person detector, the full-resolution pass runs on crops around its boxes (weak ones included): no
    pass as large as a half of the frame, the same people as the halves found (frame 100 of the street clip)."""
    from partwise.data.video import read_frames
    from partwise.infer.movenet_pose import _overlap_of_smaller
    from partwise.infer.tracking import iou_matrix

    frame = read_frames(REAL / "vtest_0000_0149.mp4", np.array([100]))[0]
    plain = MoveNetPose(detector=None, single=None).full_multipose(frame)
    assert len(plain) >= 5
    pose = MoveNetPose(detector=None, single=None)
    pose.detector = _BoxesDetector(plain.boxes, np.full(len(plain), 0.3))
    sizes = []
    run = pose._run
    pose._run = lambda image, *args, **kwargs: sizes.append(image.shape[:2]) or run(image, *args, **kwargs)
    guided = pose.full_multipose(frame)
    assert len(sizes) >= 2 and all(h * w < 0.5 * 576 * 768 for h, w in sizes[1:])  # after the 256 px pass
    # everyone the halves found is found again, but for the weakest (0.22: a man half behind the post's sign)
    assert len(plain) - 1 <= len(guided) <= len(plain)
    strong = plain.scores >= 0.25
    assert strong.sum() == len(plain) - 1
    # the same person: IoU >= 0.5, or for the far walker (a box a few pixels wide) one box inside the other
    same = (iou_matrix(plain.boxes[strong], guided.boxes) >= 0.5) | (
        _overlap_of_smaller(plain.boxes[strong], guided.boxes) > 0.8)
    assert same.any(axis=1).all()


def test_a_detector_box_around_a_thin_keypoint_box_is_the_same_person():
    """A far walker's keypoints can give a box a few pixels wide inside the detector's box: little IoU, yet the same
    person, so the detector's box is not added as a second person."""
    pose = MoveNetPose(detector=None, single=None)
    pose.detector = _BoxesDetector([[221, 61, 236, 94], [600, 300, 640, 400]], [0.54, 0.6])
    found = _people([[227, 56, 230, 97]], [0.23])
    frame = np.zeros((576, 768, 3), np.uint8)
    added = pose._add_detector_people(frame, found)
    assert added.boxes.tolist() == [[227, 56, 230, 97], [600, 300, 640, 400]]


def _grid_people(columns: int, rows: int, width: int, height: int) -> list[tuple[list[float], float]]:
    """Small people (60 px tall) on a grid over a ``width`` x ``height`` frame, scores all different."""
    people = []
    for i in range(columns):
        for j in range(rows):
            x, y = (i + 0.5) * width / columns, (j + 0.5) * height / rows
            people.append(([x - 10, y - 30, x + 10, y + 30], 0.9 - 0.01 * len(people)))
    return people


def _fake_multipose(truth, calls):
    """Stands in for MoveNetPose._run: the true people lying wholly inside the image given, six at most (the best),
    as MultiPose's six slots give; nobody at the 256 px pass."""

    def run(image, dx, dy, size, full=None, max_side=None):
        calls.append((dx, image.shape[:2], max_side))
        h, w = image.shape[:2]
        inside = [(b, s) for b, s in truth if size != 256 and b[0] >= dx and b[1] >= dy and b[2] <= dx + w
                  and b[3] <= dy + h]
        inside = sorted(inside, key=lambda t: -t[1])[:6]
        return People(np.array([b for b, _ in inside], float).reshape(-1, 4), np.array([s for _, s in inside]),
                      np.zeros((len(inside), 17, 3)))

    return run


def test_a_crowded_half_is_searched_by_halves_again():
    """Twenty people over the frame: the two halves give six each (their slots full), so each is split again, and
    everyone is found; a frame with few people costs no extra pass."""
    truth = _grid_people(5, 4, 1536, 1152)
    pose = MoveNetPose(detector=None, single=None)
    calls: list = []
    pose._run = _fake_multipose(truth, calls)
    found = pose.full_multipose(np.zeros((1152, 1536, 3), np.uint8))
    assert len(found) == 20 and len(calls) > 3
    calls.clear()
    pose._run = _fake_multipose(truth[:4] + truth[-4:], calls)  # the outer columns: four in each half
    assert len(pose.full_multipose(np.zeros((1152, 1536, 3), np.uint8))) == 8
    assert len(calls) == 3  # the 256 px pass and the two halves


def test_crops_of_a_large_frame_run_at_its_own_resolution_where_people_are_small():
    """Above MAX_SIDE the whole-frame passes are scaled down (a 1536 px frame to 1024): a crop around a person too
    small to be seen well there (40 px tall: 27 px at 1024) runs at the frame's own resolution, a crop around a taller
    one (250 px: 167) at the scaled size."""
    truth = [([300, 500, 315, 540], 0.8), ([1100, 300, 1160, 550], 0.7)]
    pose = MoveNetPose(detector=None, single=None)
    pose.detector = _BoxesDetector([b for b, _ in truth], [0.5, 0.5])
    calls: list = []
    pose._run = _fake_multipose(truth, calls)
    assert len(pose.full_multipose(np.zeros((1152, 1536, 3), np.uint8))) == 2
    crops = {dx < 768: (shape, max_side) for dx, shape, max_side in calls[1:]}  # after the 256 px pass
    (small_shape, small_side), (tall_shape, tall_side) = crops[True], crops[False]
    assert small_side == max(small_shape) and tall_side < max(tall_shape)
