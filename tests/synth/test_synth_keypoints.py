"""Synthetic COCO-17 keypoints: every written person has them, and they sit on the drawn figure."""
from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from partwise import vocab
from partwise.synth import figures as fig
from partwise.synth import generator as gen

CFG = gen.SynthConfig(seed=21, videos=2, seconds=5, width=160, height=120, people=(2, 3))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth_kp") / "data"
    gen.generate(out, CFG)
    return out


def _poses(table) -> np.ndarray:
    return np.array(table.column("keypoints").to_pylist(), np.float64).reshape(-1, 17, 3)


def _part(row: dict, name: str) -> np.ndarray:
    box = next(p for p in row["part_boxes"] if p["part"] == name)
    return np.array([box["px1"], box["py1"], box["px2"], box["py2"]])


@pytest.mark.parametrize("name", ["truth.parquet", "truth_frames.parquet"])
def test_every_person_has_51_keypoints_inside_the_frame_scored(dataset, name):
    table = pq.read_table(dataset / name)
    assert table.column("keypoints").null_count == 0
    k = _poses(table)
    inside = (k[..., 0] >= 0) & (k[..., 0] <= CFG.width) & (k[..., 1] >= 0) & (k[..., 1] <= CFG.height)
    assert np.array_equal(k[..., 2], inside.astype(float))
    assert inside.mean() > 0.95


def test_keypoints_land_in_the_part_boxes_the_generator_labels(dataset):
    """Wrists in the hand boxes, ankles in the foot boxes, knees in the leg boxes, shoulders in the arm boxes
    (part boxes are whole pixels, clipped to the frame; keypoints 0.01 px): COCO odd = left, even = right."""
    table = pq.read_table(dataset / "truth_frames.parquet")
    rows = table.to_pylist()
    poses = _poses(table)
    pairs = {9: "left_hand", 10: "right_hand", 15: "left_foot", 16: "right_foot", 13: "left_leg", 14: "right_leg",
             5: "left_arm", 6: "right_arm"}
    checked = 0
    for row, k in zip(rows, poses):
        for index, part in pairs.items():
            if k[index, 2] < 1:
                continue
            x1, y1, x2, y2 = _part(row, part)
            assert x1 - 0.51 <= k[index, 0] <= x2 + 0.51 and y1 - 0.51 <= k[index, 1] <= y2 + 0.51, (row["source"], part)
            checked += 1
        # the hips' midpoint is the pelvis, the centre of the hip box (unless clipped at the frame border)
        hip = _part(row, "hip")
        if 0 < hip[0] and hip[2] < CFG.width and 0 < hip[1] and hip[3] < CFG.height:
            centre = (hip[:2] + hip[2:]) / 2
            assert np.allclose((k[11, :2] + k[12, :2]) / 2, centre, atol=0.6)
    assert checked > 0.95 * len(rows) * len(pairs)


def test_face_points_are_on_the_head_circle_and_limbs_on_the_drawn_strokes():
    """One figure drawn alone: shoulders..ankles are pixels of its strokes (right side in its colour, left side
    darker), nose on the head circle facing forward, eyes inside it, ears at its centre."""
    place = fig.Placement(x=80.0, ground_y=110.0, scale=90.0, facing=-1)
    joints = fig.pose("stand", "wave", 0.3, place)
    k = fig.coco_keypoints(joints, place.scale, place.facing, (160, 120))
    color = (220, 40, 40)
    bg = np.full((120, 160, 3), 255, np.uint8)
    image = fig.render(bg, [lambda d: fig.draw_figure(d, joints, place.scale, color)])
    for index in (5, 6, 7, 8, 9, 10, 13, 14, 15, 16):
        x, y = int(round(k[index, 0])), int(round(k[index, 1]))
        expected = color if index % 2 == 0 else fig.shade(color)
        patch = image[y - 1:y + 2, x - 1:x + 2].reshape(-1, 3)
        assert any(tuple(p) == expected for p in patch), index
    head = joints[fig.J["head"]]
    r = fig.HEAD_RADIUS * place.scale
    assert np.isclose(np.linalg.norm(k[0, :2] - head), r)
    assert k[0, 0] < head[0]  # facing left: the nose is on the left of the head
    assert np.linalg.norm(k[1, :2] - head) < r and np.array_equal(k[1], k[2])
    assert np.allclose(k[3, :2], head) and np.allclose(k[4, :2], head)
    assert np.all(k[:, 2] == 1)


def test_keypoint_part_boxes_match_the_generator_part_boxes():
    """The Activity2Vec rule on the keypoints (eyes' midpoint as the head) gives the generator's limb boxes."""
    from partwise.models.pose_parts import part_boxes_from_keypoints

    place = fig.Placement(x=80.0, ground_y=110.0, scale=90.0, facing=1)
    joints = fig.pose("walk", "hold", 1.1, place)
    k = fig.coco_keypoints(joints, place.scale, place.facing)
    derived = part_boxes_from_keypoints(k[None], np.array([[0, 0, 160, 120]]))[0]
    labelled = fig.part_boxes(joints)
    centres = lambda b: (b[:, :2] + b[:, 2:]) / 2  # noqa: E731
    limbs = [i for i, p in enumerate(vocab.BODY_PARTS) if p != "head"]
    assert np.allclose(centres(derived)[limbs], centres(labelled)[limbs], atol=1e-6)
    # box sizes differ only through the thorax, which uses the eyes instead of the head centre (r/4 apart at most)
    assert np.allclose(derived[:, 2] - derived[:, 0], labelled[:, 2] - labelled[:, 0], rtol=0.1)
