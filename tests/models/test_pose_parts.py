import numpy as np

from partwise.models.pose_parts import SKELETON_GRAY, coco17_to_mpii16, part_boxes_from_keypoints, skeleton_map


def person():
    k = np.zeros((17, 3))
    k[:, 2] = 1.0
    k[0, :2] = (50, 12)                             # nose
    k[1, :2], k[2, :2] = (45, 10), (55, 10)        # eyes -> head (50, 10)
    k[3, :2], k[4, :2] = (42, 12), (58, 12)        # ears
    k[5, :2], k[6, :2] = (60, 20), (40, 20)        # left/right shoulder -> neck (50, 20)
    k[7, :2], k[8, :2] = (65, 40), (35, 40)        # elbows
    k[9, :2], k[10, :2] = (68, 55), (30, 50)       # left wrist, right wrist
    k[11, :2], k[12, :2] = (55, 60), (45, 60)      # hips -> pelvis (50, 60)
    k[13, :2], k[14, :2] = (56, 80), (44, 80)      # knees
    k[15, :2], k[16, :2] = (57, 100), (43, 100)    # ankles
    return k


HUMAN = np.array([[20.0, 0.0, 80.0, 105.0]])


def test_joint_mapping():
    j = coco17_to_mpii16(person()[None])[0]
    assert np.allclose(j[6, :2], (50, 60)) and np.allclose(j[7, :2], (50, 20)) and np.allclose(j[9, :2], (50, 10))
    assert np.allclose(j[8, :2], (50, 17.5))  # 0.75 neck + 0.25 head
    assert np.allclose(j[0, :2], (43, 100)) and np.allclose(j[10, :2], (30, 50)) and np.allclose(j[15, :2], (68, 55))


def test_part_boxes_by_hand():
    boxes = part_boxes_from_keypoints(person()[None], HUMAN)[0]
    torso = 42.5  # pelvis (50, 60) to thorax (50, 17.5)
    hip_half = torso * 1.2 / 2
    assert np.allclose(boxes[4], (50 - hip_half, 60 - hip_half, 50 + hip_half, 60 + hip_half))
    hand_half = torso * 0.9 / 2  # right hand at the right wrist (30, 50)
    assert np.allclose(boxes[6], (30 - hand_half, 50 - hand_half, 30 + hand_half, 50 + hand_half))
    assert np.allclose(boxes[5], (50 - 25.5, 10 - 25.5, 50 + 25.5, 10 + 25.5))  # head, size 1.2
    assert np.allclose(boxes[7], (40 - 21.25, 20 - 21.25, 40 + 21.25, 20 + 21.25))  # right arm at right shoulder


def test_low_score_joint_gives_human_box():
    k = person()
    k[10, 2] = 0.1
    boxes = part_boxes_from_keypoints(k[None], HUMAN)[0]
    assert np.allclose(boxes[6], HUMAN[0])
    assert not np.allclose(boxes[9], HUMAN[0])


def test_bad_torso_uses_limb_lengths():
    k = person()
    k[11, 2] = k[12, 2] = 0.1  # pelvis unreliable
    boxes = part_boxes_from_keypoints(k[None], HUMAN)[0]
    assert np.allclose(boxes[4], HUMAN[0])  # hip
    # right foot: centre right ankle (43, 100), half-width ||R ankle - R hip|| = 40.0125 (mean score (1 + .1)/2 > .2)
    half = np.hypot(45 - 43, 60 - 100)
    assert np.allclose(boxes[0], (43 - half, 100 - half, 43 + half, 100 + half))
    # head: ||neck - head|| = 10
    assert np.allclose(boxes[5], (40, 0, 60, 20))


def test_clipping_to_image():
    boxes = part_boxes_from_keypoints(person()[None], HUMAN, image_size=(64, 64))[0]
    assert boxes[..., 0::2].min() >= 0 and boxes[..., 0::2].max() <= 63 and boxes[..., 1::2].max() <= 63


def test_skeleton_map_uses_normalized_coordinates():
    k = person() * 4  # a 400 x 440 image
    k[:, 2] = 1
    canvas = skeleton_map(k, image_size=(400, 440))
    assert canvas.shape == (64, 64) and canvas.dtype == np.float32
    assert set(np.unique(canvas)) <= {0.0, *map(float, SKELETON_GRAY.astype(np.float32))}
    ys, xs = np.nonzero(canvas)
    # the figure spans x 120..272 of 400 -> 19..43 of 63, y 40..400 of 440 -> 6..57
    assert xs.min() >= 18 and xs.max() <= 44 and ys.min() >= 5 and ys.max() <= 58 and len(xs) > 60
    # limb 16 (right knee 14 -> right ankle 16) drawn with the brightest gray, at the normalized ankle position
    ax, ay = round(43 * 4 / 400 * 63), round(100 * 4 / 440 * 63)
    assert canvas[ay, ax] == np.float32(SKELETON_GRAY[16])


def test_skeleton_map_skips_unreliable_limbs():
    k = person()
    k[:, 2] = 0.1
    assert skeleton_map(k, (100, 110)).max() == 0
