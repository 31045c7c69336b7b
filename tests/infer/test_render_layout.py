"""The annotated frame's layout (partwise.infer.render): sizes scale with the frame, labels stay inside it and do
not cover each other, part states sit on coloured part boxes, and the label options filter what is written."""
import numpy as np
import pytest

from partwise import vocab
from partwise.infer import render


def _person(track_id, box, states=("hip: stand", "left_leg: step", "right_arm: bend", "head: none"),
            scores=None, actions=None):
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    parts = []
    for i, name in enumerate(vocab.BODY_PARTS):  # ten part boxes inside the person box
        top = y1 + h * (i % 5) / 5
        parts.append({"part": name, "px1": x1 + w * (i // 5) / 2, "py1": top, "px2": x1 + w * (i // 5 + 1) / 2,
                      "py2": top + h / 5, "state": ("stand", "bend", "none", None)[i % 4]})
    rel = [(0, 0.10), (-0.02, 0.08), (0.02, 0.08), (-0.04, 0.09), (0.04, 0.09), (0.15, 0.2), (-0.15, 0.2),
           (0.2, 0.35), (-0.2, 0.35), (0.2, 0.5), (-0.2, 0.5), (0.1, 0.5), (-0.1, 0.5), (0.1, 0.72),
           (-0.1, 0.72), (0.1, 0.95), (-0.1, 0.95)]
    keypoints = [v for dx, dy in rel for v in ((x1 + x2) / 2 + dx * w, y1 + dy * h, 0.9)]
    return {"track_id": track_id, "px1": x1, "py1": y1, "px2": x2, "py2": y2, "pasta": list(states),
            "pasta_scores": scores, "part_boxes": parts, "keypoints": keypoints, "action_scores": actions,
            "actions": [], "verbs": [], "verb_scores": None,
            "objects": [{"object_id": 1, "class_name": "sports ball", "px1": x2 - w * 0.2, "py1": y1 + h * 0.4,
                         "px2": x2, "py2": y1 + h * 0.5}] if track_id == 1 else [],
            "part_objects": [{"part": "right_hand", "object_id": 1, "score": 0.8, "distance": 0.1}]
            if track_id == 1 else []}


def _crowd(width, height):
    """Five people side by side and overlapping in the middle of the frame, one touching a ball, with scores."""
    s = height / 240
    actions = np.zeros(80)
    actions[[11, 16, 79]] = [0.9, 0.7, 0.6]  # stand, carry/hold, watch (AVA 12, 17, 80)
    rows = []
    for i in range(5):
        x1 = width * 0.3 + i * 22 * s
        y1 = height * 0.25 + (i % 2) * 10 * s
        rows.append(_person(i + 1, (x1, y1, x1 + 40 * s, y1 + 130 * s),
                            states=("hand: hold", "foot: stand on", "hip: sit in", "head: no_interaction"),
                            scores=[0.9, 0.8, 0.5, 0.95], actions=actions.tolist()))
    rows.append(_person(9, (width - 30 * s, height - 100 * s, width - 1, height - 1)))  # at the corner
    return rows


def _ink_height(image: np.ndarray, label) -> int:
    """Pixel rows of ink of a person label's first line (``#track``, drawn on a dark ground)."""
    x1, y1, x2, y2 = label.rect
    pad = render.scale_for(*image.shape[:2]).pad
    top = y1 + pad
    crop = image[top:top + int(round(label.size * 1.2)), x1 + 2:x2 - 2].astype(int)
    rows = np.flatnonzero((crop.max(2) > 60).any(1))
    return int(rows[-1] - rows[0] + 1)


@pytest.mark.parametrize("size", [(1920, 1080), (320, 240)])
def test_labels_inside_the_frame_and_not_overlapping(size):
    width, height = size
    frame = np.full((height, width, 3), 90, np.uint8)
    image, labels = render.annotate(frame, _crowd(width, height))
    assert image.shape == frame.shape and frame.max() == 90  # the input is not modified
    kinds = [label.kind for label in labels]
    assert kinds.count("person") == 6 and kinds.count("object") == 1
    for label in labels:
        x1, y1, x2, y2 = label.rect
        assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height, label
    for i, a in enumerate(labels):
        for b in labels[i + 1:]:
            overlap = a.rect[0] < b.rect[2] and b.rect[0] < a.rect[2] and a.rect[1] < b.rect[3] and b.rect[1] < a.rect[3]
            assert not overlap, (a, b)
    person = next(label for label in labels if label.track_id == 1 and label.kind == "person")
    # the best states and actions with their scores, empty states left out, at most top_k (3) of each
    assert person.lines == ["#1", "hand: hold 0.90", "foot: stand on 0.80", "hip: sit in 0.50", "stand 0.90",
                            "carry/hold (an object) 0.70", "watch (a person) 0.60"]
    obj = next(label for label in labels if label.kind == "object")
    assert obj.lines == ["sports ball: #1 right hand"]


def test_text_scales_with_the_frame():
    heights, ink = {}, {}
    for width, height in ((1920, 1080), (320, 240)):
        frame = np.zeros((height, width, 3), np.uint8)
        rows = [_person(1, (width * 0.4, height * 0.3, width * 0.55, height * 0.9))]
        image, labels = render.annotate(frame, rows)
        (person,) = [label for label in labels if label.kind == "person"]
        heights[height] = (person.rect[3] - person.rect[1]) / len(person.lines)
        ink[height] = _ink_height(image, person)
        assert render.scale_for(height, width).font == person.size
    assert heights[1080] / heights[240] > 2.2  # 1080 / 240 = 4.5, with a floor that keeps small frames legible
    assert ink[1080] / ink[240] > 2.2 and ink[240] >= 5
    # lines and keypoints grow too
    big, small = render.scale_for(1080, 1920), render.scale_for(240, 320)
    assert big.line > small.line and big.point > small.point


def test_part_boxes_carry_their_state_in_the_part_colour():
    frame = np.zeros((1080, 1920, 3), np.uint8)
    row = _person(1, (800, 200, 1100, 1000))
    image, labels = render.annotate(frame, [row])
    parts = [label for label in labels if label.kind == "part"]
    assert parts and {label.lines[0] for label in parts} <= {"stand", "bend"}  # never none / empty
    head = next(p for p in row["part_boxes"] if p["part"] == "head")
    x1, y1 = int(head["px1"]), int(head["py1"])
    assert tuple(image[y1 + 60, x1]) == render.part_colour("head")  # its box's left edge
    (label,) = [p for p in parts if p.rect[:2] == (x1, y1)]  # its state written on it, in the part's colour
    assert label.lines == ["bend"] and tuple(image[y1 + 1, x1 + 1]) == render.part_colour("head")


def test_label_options_filter_states_and_actions():
    actions = np.zeros(80)
    actions[11], actions[16] = 0.9, 0.4
    row = _person(2, (10, 10, 100, 200), states=("head: no_interaction", "hand: hold", "foot: kick"),
                  scores=[0.99, 0.6, 0.2], actions=actions.tolist())
    style = render.Style.of(state_thr=0.5, action_thr=0.3, top_k=5)
    assert render.person_lines(row, style) == [("head", "#2"), ("state", "hand: hold 0.60"), ("action", "stand 0.90"),
                                               ("action", "carry/hold (an object) 0.40")]
    assert render.person_lines(row, render.Style.of(top_k=1)) == [("head", "#2"), ("state", "hand: hold 0.60"),
                                                                  ("action", "stand 0.90")]
    # only empty states: the best one is still shown; kinematic states have no score
    only = _person(3, (10, 10, 100, 200), states=("head: none", "hip: none"))
    assert render.person_lines(only, render.Style()) == [("head", "#3"), ("state", "head: none")]


def test_trails_follow_the_track_over_past_keyframes():
    by_frame = {k: [{"track_id": 1, "px1": 10.0 * i, "py1": 0.0, "px2": 10.0 * i + 10, "py2": 50.0}]
                for i, k in enumerate((0, 10, 20, 30, 40, 50))}
    keyframes = np.array(sorted(by_frame))
    now = dict(by_frame[50][0])
    trails = render.trails_at(50, [now], by_frame, keyframes, length=3, max_gap=30)
    assert trails == {1: [(35.0, 50.0), (45.0, 50.0), (55.0, 50.0), (55.0, 50.0)]}
