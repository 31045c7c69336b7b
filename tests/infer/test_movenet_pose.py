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
