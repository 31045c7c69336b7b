"""Body-part boxes and skeleton maps from COCO-17 keypoints, by the Activity2Vec rule (``hake.md`` §3.2).

Conventions: keypoints are (N, 17, 3) arrays ``[x, y, score]`` in image pixels, COCO order (0 nose, 1/2 eyes,
3/4 ears, 5/6 shoulders, 7/8 elbows, 9/10 wrists, 11/12 hips, 13/14 knees, 15/16 ankles; odd = left, even = right).
Boxes are ``[x1, y1, x2, y2]`` in pixels. Part order is HAKE's (:data:`partwise.vocab.BODY_PARTS`): right_foot,
right_leg, left_leg, left_foot, hip, head, right_hand, right_arm, left_arm, left_hand.
"""
from __future__ import annotations

import numpy as np

#: relative size of each part box (fraction of the pelvis-thorax distance), HAKE part order.
PART_SIZE = np.array([1.2, 1.0, 1.0, 1.2, 1.2, 1.2, 0.9, 1.0, 1.0, 0.9])
#: which of the 16 MPII-style joints is the centre of each part.
PART_CENTRE_JOINT = np.array([0, 1, 4, 5, 6, 9, 10, 12, 13, 15])
#: the limb whose length replaces the torso scale when the pelvis or thorax is unreliable, per part
#: (pairs of MPII-style joints); None = whole human box.
FALLBACK_LIMB = [(0, 2), (0, 2), (3, 5), (3, 5), None, (7, 9), (10, 12), (10, 12), (13, 15), (13, 15)]
SCORE_THRESHOLD = 0.2

#: the 17 limbs of the skeleton map over the 17 COCO keypoints plus the neck (index 17 = mean of the shoulders).
SKELETON_LIMBS = [(1, 3), (2, 4), (0, 1), (0, 2), (0, 17), (5, 17), (6, 17), (5, 7), (6, 8), (7, 9), (8, 10),
                  (11, 17), (12, 17), (11, 13), (12, 14), (13, 15), (14, 16)]
SKELETON_GRAY = np.linspace(0.15, 0.95, len(SKELETON_LIMBS))


def coco17_to_mpii16(keypoints: np.ndarray) -> np.ndarray:
    """(N,17,3) COCO keypoints -> (N,16,3) MPII-style joints (coordinates and scores combined the same way).

    0 R-ankle, 1 R-knee, 2 R-hip, 3 L-hip, 4 L-knee, 5 L-ankle, 6 pelvis = mean(hips), 7 neck = mean(shoulders),
    8 thorax = 0.75 neck + 0.25 head, 9 head = mean(eyes), 10 R-wrist, 11 R-elbow, 12 R-shoulder, 13 L-shoulder,
    14 L-elbow, 15 L-wrist.
    """
    k = np.asarray(keypoints, dtype=np.float64)
    out = np.empty(k.shape[:-2] + (16, 3))
    for target, source in ((0, 16), (1, 14), (2, 12), (3, 11), (4, 13), (5, 15), (10, 10), (11, 8), (12, 6),
                           (13, 5), (14, 7), (15, 9)):
        out[..., target, :] = k[..., source, :]
    out[..., 6, :] = (k[..., 11, :] + k[..., 12, :]) / 2
    out[..., 7, :] = (k[..., 5, :] + k[..., 6, :]) / 2
    out[..., 9, :] = (k[..., 1, :] + k[..., 2, :]) / 2
    out[..., 8, :] = 0.75 * out[..., 7, :] + 0.25 * out[..., 9, :]
    return out


def part_boxes_from_keypoints(keypoints: np.ndarray, human_boxes: np.ndarray,
                              image_size: tuple[int, int] | None = None) -> np.ndarray:
    """Ten square part boxes per person, (N, 10, 4) pixels.

    Each box is centred on its joint with half-width ``||pelvis - thorax|| * PART_SIZE / 2``. A part whose joint
    scores below 0.2 gets the whole human box. When the pelvis or thorax scores below 0.2, the part's limb length
    (e.g. ankle-hip for a leg) is the half-width if both limb joints score above 0.2 on average, else the human box;
    the hip then always falls back to the human box. ``image_size = (width, height)`` clips the boxes to the image.
    """
    joints = coco17_to_mpii16(keypoints)
    human_boxes = np.asarray(human_boxes, dtype=np.float64).reshape(-1, 4)
    n = joints.shape[0]
    centres = joints[:, PART_CENTRE_JOINT, :2]
    centre_scores = joints[:, PART_CENTRE_JOINT, 2]
    torso = np.linalg.norm(joints[:, 6, :2] - joints[:, 8, :2], axis=1)
    half = torso[:, None] * PART_SIZE[None, :] / 2
    bad_torso = (joints[:, 8, 2] < SCORE_THRESHOLD) | (joints[:, 6, 2] < SCORE_THRESHOLD)
    use_human = centre_scores < SCORE_THRESHOLD
    for part, limb in enumerate(FALLBACK_LIMB):
        if limb is None:
            use_human[:, part] |= bad_torso
            continue
        a, b = limb
        length = np.linalg.norm(joints[:, a, :2] - joints[:, b, :2], axis=1)
        reliable = (joints[:, a, 2] + joints[:, b, 2]) / 2 > SCORE_THRESHOLD
        half[:, part] = np.where(bad_torso, length, half[:, part])
        use_human[:, part] |= bad_torso & ~reliable
    boxes = np.concatenate([centres - half[..., None], centres + half[..., None]], axis=-1)
    boxes = np.where(use_human[..., None], np.broadcast_to(human_boxes[:, None, :], (n, 10, 4)), boxes)
    if image_size is not None:
        width, height = image_size
        boxes[..., 0::2] = boxes[..., 0::2].clip(0, width - 1)
        boxes[..., 1::2] = boxes[..., 1::2].clip(0, height - 1)
    return boxes


def _draw_segment(canvas: np.ndarray, p: np.ndarray, q: np.ndarray, value: float) -> None:
    steps = int(np.ceil(max(abs(q[0] - p[0]), abs(q[1] - p[1])))) + 1
    t = np.linspace(0.0, 1.0, steps)
    xs = np.rint(p[0] + t * (q[0] - p[0])).astype(int)
    ys = np.rint(p[1] + t * (q[1] - p[1])).astype(int)
    size = canvas.shape[0]
    keep = (xs >= 0) & (xs < size) & (ys >= 0) & (ys < size)
    canvas[ys[keep], xs[keep]] = value


def skeleton_map(keypoints: np.ndarray, image_size: tuple[int, int], size: int = 64) -> np.ndarray:
    """A (size, size) float32 map with the 17 skeleton limbs drawn as 1-pixel lines, limb k with gray level
    ``SKELETON_GRAY[k]`` (0.15..0.95), background 0.

    Keypoints (17, 3) in pixels are NORMALIZED by the image ``(width, height)`` before drawing -- as in Activity2Vec's
    training; its demo passed pixels and drew mostly empty maps, a bug not reproduced here. Limbs with an endpoint
    scoring below 0.2 are not drawn.
    """
    width, height = image_size
    k = np.asarray(keypoints, dtype=np.float64)
    points = np.concatenate([k, ((k[5] + k[6]) / 2)[None]], axis=0)
    xy = points[:, :2] / np.array([width, height]) * (size - 1)
    canvas = np.zeros((size, size), dtype=np.float32)
    for (a, b), gray in zip(SKELETON_LIMBS, SKELETON_GRAY):
        if points[a, 2] < SCORE_THRESHOLD or points[b, 2] < SCORE_THRESHOLD:
            continue
        _draw_segment(canvas, xy[a], xy[b], float(gray))
    return canvas
