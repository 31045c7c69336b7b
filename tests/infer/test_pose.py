import numpy as np
import pytest

from partwise.infer import pose as pose_mod
from partwise.infer.pose import (MEDIAPIPE_TO_COCO17, box_from_keypoints, crop_window, landmarks_to_coco17)


def test_mapping_picks_the_coco_joints_by_side():
    # MediaPipe: 11/12 shoulders, 15/16 wrists, 23/24 hips, 27/28 ankles (left, right); COCO: odd left, even right.
    assert MEDIAPIPE_TO_COCO17[5] == 11 and MEDIAPIPE_TO_COCO17[6] == 12
    assert MEDIAPIPE_TO_COCO17[9] == 15 and MEDIAPIPE_TO_COCO17[10] == 16
    assert MEDIAPIPE_TO_COCO17[11] == 23 and MEDIAPIPE_TO_COCO17[16] == 28
    assert MEDIAPIPE_TO_COCO17[1] == 2 and MEDIAPIPE_TO_COCO17[2] == 5  # eye centres, not inner/outer corners
    assert len(set(MEDIAPIPE_TO_COCO17.tolist())) == 17


def test_landmarks_to_coco17_maps_crop_coordinates_back_to_the_frame():
    landmarks = np.zeros((33, 4))
    landmarks[:, 0] = np.arange(33) / 100  # x = index / 100
    landmarks[:, 1] = 0.5
    landmarks[:, 3] = np.linspace(0, 1.2, 33)  # visibility, clipped to 1
    out = landmarks_to_coco17(landmarks, origin=(10, 20), size=(200, 100))
    # COCO 9 (left wrist) = MediaPipe 15: x = 10 + 0.15 * 200 = 40, y = 20 + 0.5 * 100 = 70
    assert out[9, :2].tolist() == pytest.approx([40.0, 70.0])
    assert out[16, 0] == pytest.approx(10 + 0.28 * 200)
    assert out[:, 2].max() <= 1.0 and out[0, 2] == 0.0


def test_crop_window_and_box_from_keypoints():
    assert crop_window(np.array([40, 40, 60, 80]), 100, 100, margin=0.25) == (35, 30, 65, 90)
    assert crop_window(np.array([0, 0, 100, 100]), 100, 100) == (0, 0, 100, 100)
    k = np.zeros((17, 3))
    k[:, 0], k[:, 1], k[:, 2] = np.linspace(10, 30, 17), np.linspace(20, 60, 17), 1.0
    k[16] = [500, 500, 0.0]  # unreliable keypoint outside the frame is ignored
    k[0, 2] = 0.0  # no reliable nose: the box is the keypoints' extent plus the margin
    box = box_from_keypoints(k, 100, 100, margin=0.1)
    lo_x, lo_y, hi_x, hi_y = k[1, 0], k[1, 1], k[15, 0], k[15, 1]
    assert box.tolist() == pytest.approx([lo_x - 0.1 * (hi_x - lo_x), lo_y - 0.1 * (hi_y - lo_y),
                                          hi_x + 0.1 * (hi_x - lo_x), hi_y + 0.1 * (hi_y - lo_y)])
    k[0] = [20, 30, 1.0]  # nose 10 px above the shoulder line (y 40): the head reaches 8 px above the nose
    k[5, 1] = k[6, 1] = 40.0
    box = box_from_keypoints(k, 100, 100, margin=0.0)
    assert box[1] == pytest.approx(22.0) and box[3] == pytest.approx(hi_y)


def test_missing_extra_gives_a_one_line_config_error(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "mediapipe":
            raise ImportError("No module named 'mediapipe'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    assert not pose_mod.mediapipe_available()
    with pytest.raises(pose_mod.PoseUnavailable, match=r"partwise\[pose\]"):
        pose_mod.PoseEstimator()


def _grace_hopper():
    from matplotlib import cbook
    from PIL import Image

    path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    with Image.open(path) as im:
        return path, np.asarray(im.convert("RGB"))


def test_grace_hopper_one_person_with_ten_part_boxes_inside_the_person(tmp_path):
    pytest.importorskip("mediapipe")
    from pathlib import Path

    from partwise.infer.pipeline import InputItem, RunOptions, process_item

    path, image = _grace_hopper()
    height, width = image.shape[:2]
    with pose_mod.PoseEstimator() as estimator:
        result = process_item(InputItem(Path(path), "grace_hopper.jpg", "image"), RunOptions(progress=False),
                              pose=estimator)
    assert len(result.rows) == 1
    row = result.rows[0]
    x1, y1, x2, y2 = row["box_px"]
    # a portrait: the person fills most of the frame
    assert (x2 - x1) * (y2 - y1) > 0.5 * width * height
    k = np.asarray(row["keypoints"])
    nose, eyes, shoulders = k[0], k[1:3], k[5:7]
    assert nose[2] > 0.5 and (eyes[:, 2] > 0.5).all() and (shoulders[:, 2] > 0.5).all()
    assert (eyes[:, 1] < nose[1]).all() and (shoulders[:, 1] > nose[1]).all()  # eyes above the nose above shoulders
    parts = {p["part"]: np.asarray(p["box_px"]) for p in row["part_boxes"]}
    assert len(parts) == 10
    for name, b in parts.items():
        assert b[0] >= x1 - 1e-6 and b[1] >= y1 - 1e-6 and b[2] <= x2 + 1e-6 and b[3] <= y2 + 1e-6, name
        assert b[2] > b[0] and b[3] > b[1], name
    head = parts["head"]
    for point in (nose, *eyes):  # the head box holds the face and stays in the upper part of the person
        assert head[0] <= point[0] <= head[2] and head[1] <= point[1] <= head[3]
    assert head[3] < y2 - 0.2 * (y2 - y1)
    assert y1 < eyes[:, 1].min() - 0.5 * (nose[1] - eyes[:, 1].min())  # the box reaches above the eyes


def test_two_people_without_boxes_are_found_one_after_the_other(tmp_path):
    pytest.importorskip("mediapipe")
    from PIL import Image

    from partwise.infer.pipeline import InputItem, RunOptions, process_item

    _, image = _grace_hopper()
    width = image.shape[1]
    two = np.concatenate([image, image[:, ::-1]], axis=1)  # the portrait and its mirror image, side by side
    path = tmp_path / "two.png"
    Image.fromarray(two).save(path)
    with pose_mod.PoseEstimator() as estimator:
        result = process_item(InputItem(path, "two.png", "image"), RunOptions(progress=False), pose=estimator)
    assert len(result.rows) == 2
    centres = sorted((r["box_px"][0] + r["box_px"][2]) / 2 for r in result.rows)
    assert centres[0] < width < centres[1]  # one person in each half
    noses = sorted(r["keypoints"][0][0] for r in result.rows)
    assert noses[0] < width < noses[1] and noses[0] + noses[1] == pytest.approx(2 * width, abs=20)  # mirrored
    assert len({r["track_id"] for r in result.rows}) == 2
