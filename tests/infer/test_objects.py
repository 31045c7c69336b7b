"""Objects the body parts touch (partwise.infer.objects), their table columns and Kinetics-TPS part objects."""
import json
from pathlib import Path

import numpy as np
import pytest

from partwise import vocab
from partwise.errors import ConfigError
from partwise.infer import objects as obj
from partwise.infer import outputs
from partwise.models.centernet import SPORTS_BALL, Objects

REPO = Path(__file__).resolve().parents[2]
WIDTH, HEIGHT = 640, 480


def standing(x: float, y: float = 100.0, wrists=None) -> tuple[np.ndarray, np.ndarray]:
    """COCO-17 keypoints (17, 3) of a 200 px tall person whose box is ``[x, y, x + 60, y + 200]``, arms down (or
    wrists at ``wrists = ((lx, ly), (rx, ry))``), and that box."""
    c = x + 30
    k = np.array([[c, y + 15], [c + 4, y + 12], [c - 4, y + 12], [c + 8, y + 14], [c - 8, y + 14],  # head
                  [c + 15, y + 40], [c - 15, y + 40], [c + 20, y + 70], [c - 20, y + 70],  # shoulders, elbows
                  [c + 22, y + 95], [c - 22, y + 95], [c + 10, y + 100], [c - 10, y + 100],  # wrists, hips
                  [c + 10, y + 150], [c - 10, y + 150], [c + 10, y + 195], [c - 10, y + 195]], float)  # knees, ankles
    if wrists is not None:
        k[9], k[10] = wrists
    return np.column_stack([k, np.full(17, 0.9)]), np.array([x, y, x + 60, y + 200], float)


def relations(people, boxes, classes=None, scores=None):
    from partwise.infer.pipeline import _part_boxes

    keypoints = np.stack([k for k, _ in people])
    person_boxes = np.stack([b for _, b in people])
    boxes = np.asarray(boxes, float).reshape(-1, 4)
    classes = np.full(len(boxes), SPORTS_BALL) if classes is None else np.asarray(classes)
    scores = np.full(len(boxes), 0.8) if scores is None else np.asarray(scores, float)
    found = Objects(boxes, scores, classes, [vocab.load("coco80").names[c] for c in classes])
    return obj.part_object_relations(keypoints, _part_boxes(keypoints, person_boxes, WIDTH, HEIGHT), person_boxes,
                                     found)


def test_a_wrist_inside_a_ball_box_touches_it_and_a_far_object_does_not():
    person = standing(100, wrists=((175, 185), (110, 195)))  # the left wrist (index 9) inside the ball box
    (rels,) = relations([person], [[165, 170, 195, 200], [450, 100, 480, 130]])
    touching = {(r["part"], r["object"]) for r in rels}
    assert ("left_hand", 0) in touching
    assert ("right_hand", 0) not in touching  # the right wrist is 55 px (0.275 of the size) left of the box
    assert not any(o == 1 for _, o in touching)  # the far object touches nobody
    hand = next(r for r in rels if r["part"] == "left_hand")
    assert hand["class_name"] == "sports_ball" and hand["class_id"] == SPORTS_BALL and hand["distance"] == 0
    assert hand["box_px"] == [165, 170, 195, 200] and hand["score"] == pytest.approx(0.8)


def test_the_margin_grows_with_the_person_and_low_keypoints_do_not_count():
    # the left wrist 15 px below the box: within 0.10 x 200 px for a hand
    person = standing(100, wrists=((180, 215), (110, 195)))
    assert {r["part"] for r in relations([person], [[165, 170, 195, 200]])[0]} == {"left_hand"}
    # a person half as tall with the wrist 15 px below the box: 0.15 of their size, beyond the margin
    small_k = person[0].copy()
    small_k[:, 1] = 100 + (small_k[:, 1] - 100) / 2
    small_k[9] = [180, 130, 0.9]
    small = (small_k, np.array([100, 100, 160, 200], float))
    assert relations([small], [[165, 85, 195, 115]]) == [[]]
    unsure = person[0].copy()
    unsure[9, 2] = 0.1  # the wrist is not seen: no touch
    assert relations([(unsure, person[1])], [[165, 170, 195, 200]]) == [[]]


def test_an_object_between_one_persons_hands_goes_to_that_person_only():
    a = standing(100, wrists=((140, 180), (120, 180)))
    # b's right wrist 13 px (0.065 of the size) right of the ball: close enough to touch by the margin, but a's
    # hands hold it (distance 0), so the ball is a's
    b = standing(150, wrists=((200, 190), (155, 185)))
    ra, rb = relations([a, b], [[118, 170, 142, 195]])
    assert {r["part"] for r in ra} >= {"left_hand", "right_hand"} and rb == []
    # both people holding it: both get it
    b_holds = standing(150, wrists=((200, 190), (145, 185)))
    ra, rb = relations([a, b_holds], [[118, 170, 142, 195]])
    assert {r["part"] for r in ra} >= {"left_hand", "right_hand"} and [r["part"] for r in rb] == ["right_hand"]
    # a box on a whole person is that person under another class: no relation
    assert relations([a], [[101, 98, 161, 300]]) == [[]]


def test_the_object_source_keeps_non_person_objects_above_the_threshold():
    class FakeNet:
        def detect(self, frame, **options):
            assert options["class_agnostic"] is False
            boxes = np.array([[0, 0, 50, 100], [1, 1, 50, 100], [10, 10, 20, 20], [30, 30, 40, 40],
                              [60, 0, 90, 100], [60, 2, 92, 100]], float)
            return Objects(boxes, np.array([0.9, 0.5, 0.6, 0.3, 0.25, 0.45]), np.array([0, 65, 32, 39, 0, 74]),
                           ["person", "remote", "sports_ball", "bottle", "person", "clock"])

    source = obj.ObjectSource.__new__(obj.ObjectSource)
    source.net, source.threshold = FakeNet(), 0.4
    found = source.detect(np.zeros((100, 100, 3), np.uint8))
    # the people are dropped, the "remote" and the "clock" on people's boxes (even a person scoring below the
    # threshold) are those people relabelled, the bottle scores too low
    assert found.names == ["sports_ball"]
    assert obj.make_object_source("none") is None and obj.make_object_source(None) is None
    with pytest.raises(ConfigError):
        obj.make_object_source("nanodet")


def _row(relations, track_id=1, states=True):
    parts = [{"part": name, "box_px": [100.0, 100.0, 130.0, 130.0], "state": "none" if states else None}
             for name in vocab.BODY_PARTS]
    return {"video_id": "img.png", "time_s": 0.0, "frame_index": 0, "width": WIDTH, "height": HEIGHT,
            "box_px": [100.0, 100.0, 160.0, 300.0], "score": 0.9, "track_id": track_id, "keypoints": None,
            "kinematic": [], "pasta": [], "pasta_vocab": None, "pasta_scores": None, "pasta_probs": None,
            "actions": [], "action_scores": None, "activity_vector": None, "part_boxes": parts, "source": "x",
            "objects": relations}


def test_objects_become_human_object_pairs_and_kinetics_tps_part_objects():
    person = standing(100, wrists=((140, 180), (120, 180)))
    rels = relations([person], [[118, 170, 142, 195], [450, 100, 480, 130]], classes=[SPORTS_BALL, 39])[0]
    table = outputs.rows_to_table([_row(rels), _row([], track_id=2)])
    r0, r1 = table.to_pylist()
    assert [o["class_name"] for o in r0["objects"]] == ["sports_ball"] and r1["objects"] == []
    ball = r0["objects"][0]
    assert ball["class_id"] == SPORTS_BALL and ball["object_id"] == 1 and ball["action"] is None
    assert (ball["px1"], ball["py2"]) == (118, 195) and ball["x1"] == pytest.approx(118 / WIDTH)
    assert {p["part"] for p in r0["part_objects"]} >= {"left_hand", "right_hand"}
    assert all(p["object_id"] == 1 and p["score"] == pytest.approx(0.8) for p in r0["part_objects"])
    frame = outputs.tps_part_result(table)["img.png"]["img_00001.json"]
    human = frame["humans"][0]
    entry = {"number": 1, "name": "sports_ball", "box": [118.0, 170.0, 142.0, 195.0]}
    assert human["objects"] == [entry] and "objects" not in frame["humans"][1]
    assert human["parts"]["left_hand"]["objects"] == [entry] and human["parts"]["right_hand"]["objects"] == [entry]
    assert "objects" not in human["parts"]["head"]
    # one human with objects: they are written once, on the frame (the reader gives them to every human)
    frame = outputs.tps_part_result(outputs.rows_to_table([_row(rels)]))["img.png"]["img_00001.json"]
    assert frame["objects"] == [entry] and "objects" not in frame["humans"][0]
    assert frame["humans"][0]["parts"]["right_hand"]["objects"] == [entry]


def _centernet_installed() -> bool:
    return obj._installed("centernet")


@pytest.mark.skipif(not _centernet_installed(),
                    reason="needs the optional CenterNet weights (`partwise weights install centernet`)")
def test_run_on_basketball1_finds_the_ball_in_the_holders_hands(tmp_path):
    from partwise.cli import main

    out = tmp_path / "out"
    assert main(["run", str(REPO / "examples/real/basketball1.png"), "--out", str(out), "--tps-json",
                 "--no-progress"]) == 0
    rows = [json.loads(line) for line in (out / "persons.jsonl").read_text().splitlines()]
    holder = min(rows, key=lambda r: r["px1"])  # the man on the left holds the ball
    assert holder["px2"] < 320
    # CenterNet never calls this (grayscale) ball a sports_ball: its best box there is a "remote" (0.43) on the
    # hands and the lower half of the ball, which is what the default threshold keeps
    near = [o for o in holder["objects"]
            if 100 <= (o["px1"] + o["px2"]) / 2 <= 200 and 80 <= (o["py1"] + o["py2"]) / 2 <= 170]
    assert near, holder["objects"]
    ids = {o["object_id"] for o in near}
    hands = {p["part"] for p in holder["part_objects"] if p["object_id"] in ids}
    assert hands & {"left_hand", "right_hand"}
    result = json.loads((out / "kinetics_tps" / "pred_part_result.json").read_text())
    frame = result["basketball1.png"]["img_00001.json"]
    human = next(h for h in frame["humans"] if h["number"] == holder["track_id"])
    part_objects = [o for part in ("left_hand", "right_hand") for o in human["parts"].get(part, {}).get("objects", [])]
    assert {o["number"] for o in part_objects} & ids
