"""NMS against a brute-force greedy loop written here."""
import random

import pytest
import torch

from partwise.ops import batched_nms, nms


def iou_scalar(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def brute_force_nms(boxes, scores, thr, groups=None):
    order = sorted(range(len(boxes)), key=lambda i: (-scores[i], i))
    keep = []
    for i in order:
        if all(iou_scalar(boxes[i], boxes[j]) <= thr or (groups is not None and groups[i] != groups[j])
               for j in keep):
            keep.append(i)
    return keep


def random_boxes(rng, n):
    boxes = []
    for _ in range(n):
        x, y = rng.randint(0, 20), rng.randint(0, 20)  # integer grid: many exact ties in IoU
        boxes.append([float(x), float(y), float(x + rng.randint(1, 10)), float(y + rng.randint(1, 10))])
    return boxes


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("thr", [0.0, 0.3, 0.5, 0.7])
def test_nms_matches_brute_force(seed, thr):
    rng = random.Random(seed)
    boxes = random_boxes(rng, 60)
    scores = [float(rng.randint(0, 5)) for _ in boxes]  # many tied scores
    got = nms(torch.tensor(boxes, dtype=torch.float64), torch.tensor(scores, dtype=torch.float64), thr)
    assert got.tolist() == brute_force_nms(boxes, scores, thr)


@pytest.mark.parametrize("seed", range(4))
def test_batched_nms_matches_brute_force(seed):
    rng = random.Random(100 + seed)
    boxes = random_boxes(rng, 50)
    scores = [rng.random() for _ in boxes]
    groups = [rng.randrange(3) for _ in boxes]
    got = batched_nms(torch.tensor(boxes), torch.tensor(scores), torch.tensor(groups), 0.4)
    assert got.tolist() == brute_force_nms(boxes, scores, 0.4, groups)


def test_iou_exactly_at_threshold_is_kept_and_ties_are_stable():
    boxes = torch.tensor([[0.0, 0.0, 2.0, 1.0], [0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 2.0, 1.0]])
    scores = torch.tensor([1.0, 1.0, 1.0])
    # IoU(0, 1) = 0.5 exactly: kept at threshold 0.5; box 2 duplicates box 0 (IoU 1) and is suppressed.
    assert nms(boxes, scores, 0.5).tolist() == [0, 1]
    assert nms(boxes, scores, 0.49).tolist() == [0]
    assert nms(boxes, torch.tensor([1.0, 2.0, 3.0]), 0.5).tolist() == [2, 1]


def test_nms_empty():
    assert nms(torch.zeros(0, 4), torch.zeros(0), 0.5).tolist() == []
