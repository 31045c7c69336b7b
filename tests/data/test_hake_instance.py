import json
from pathlib import Path

import pytest

from partwise.data import hake_instance
from partwise.data.records import PERSON_SCHEMA
from partwise.errors import InputError

FIXTURE = Path(__file__).parent.parent / "fixtures" / "hake" / "hico-det-training-set-instance-level.json"


def test_records_one_per_distinct_human_box():
    table = hake_instance.read_records(FIXTURE)
    assert table.schema == PERSON_SCHEMA
    a, b, c = table.to_pylist()
    assert (a["video_id"], a["dataset"], a["split"]) == ("HICO_train2015_00000001.jpg", "hake-instance", "train")
    assert a["actions"] == [153, 154] and a["action_vocab"] == "hico_hoi600"
    # R-hand 0 and L-hand 0 both "hand: hold"; hip 0 "sit on"; head 1 "inspect"
    assert a["pasta"] == ["hip: sit on", "hand: hold", "head: inspect"] and a["pasta_vocab"] == "pasta76"
    assert (a["px1"], a["py1"], a["px2"], a["py2"]) == (208, 33, 427, 300)
    assert (a["x1"], a["y1"], a["x2"], a["y2"]) == (208 / 640, 33 / 480, 427 / 640, 300 / 480)
    assert (a["width"], a["height"]) == (640, 480)
    assert [(o["class_name"], o["class_id"], o["action"]) for o in a["objects"]] == [
        ("motorcycle", 45, 153), ("motorcycle", 45, 154)]
    assert a["objects"][0]["x2"] == 572 / 640 and a["objects"][0]["py2"] == 405
    assert a["source"] == f"{FIXTURE}:HICO_train2015_00000001.jpg/labels/0"
    assert b["actions"] == [524] and b["pasta"] == [] and b["objects"][0]["class_name"] == "surfboard"
    assert b["source"].endswith("/labels/2")
    assert c["actions"] == [600] and c["objects"][0]["class_name"] == "zebra" and (c["width"], c["height"]) == (100, 200)


def test_row_api_round_trip(tmp_path):
    data = hake_instance.read_hake_instance(FIXTURE)
    out = tmp_path / "x.json"
    hake_instance.write_hake_instance(data, out)
    assert out.read_bytes() == FIXTURE.read_bytes()


def test_write_records_and_read_back(tmp_path):
    table = hake_instance.read_records(FIXTURE)
    hake_instance.write_records(table, tmp_path / "out.json")
    data = json.loads((tmp_path / "out.json").read_text())
    labels = data["HICO_train2015_00000001.jpg"]["labels"]
    assert [(l["hoi_id"], l["human_bbox"], l["object_bbox"]) for l in labels] == [
        (153, [208, 33, 427, 300], [59, 98, 572, 405]), (154, [208, 33, 427, 300], [59, 98, 572, 405]),
        (524, [10, 20, 110, 220], [0, 200, 320, 480])]
    # the person's union, on the right-side body part of each merged part
    assert labels[0]["action_labels"] == [{"human_part": 4, "partstate": 0}, {"human_part": 6, "partstate": 0},
                                          {"human_part": 5, "partstate": 1}]
    back = hake_instance.read_records(tmp_path / "out.json")
    assert back.drop(["source", "split"]).equals(table.drop(["source", "split"]))


def _image(**label_changes):
    label = {"hoi_id": 153, "human_bbox": [1, 2, 30, 40], "object_bbox": [5, 5, 20, 20], "height": 50, "width": 60,
             "action_labels": [{"human_part": 6, "partstate": 0}]}
    label.update(label_changes)
    return {"dataset": "hico-det", "path_prefix": "p", "labels": [label]}


@pytest.mark.parametrize("image,where,reason", [
    (_image(hoi_id=0), "i.jpg/labels/0/hoi_id", "unknown HICO HOI id 0"),
    (_image(human_bbox=[30, 2, 1, 40]), "i.jpg/labels/0/human_bbox", "x2 < x1"),
    (_image(object_bbox=[1, 2, 3]), "i.jpg/labels/0/object_bbox", "expected [x1, y1, x2, y2]"),
    (_image(width=0), "i.jpg/labels/0/width", "not a positive integer"),
    (_image(height=10 ** 19), "i.jpg/labels/0/height", "10000000000000000000 pixels is too large (at most 2147483647)"),
    (_image(action_labels=[{"human_part": 10, "partstate": 0}]), "i.jpg/labels/0/action_labels/0/human_part", "not in 0..9"),
    # hand has 31 states in the 76 list; 30 is no_interaction, which this format never lists
    (_image(action_labels=[{"human_part": 9, "partstate": 30}]), "i.jpg/labels/0/action_labels/0/partstate",
     "hand state 30 not in 0..29"),
    ({"dataset": "d", "labels": []}, "i.jpg", "missing keys path_prefix"),
    ({"dataset": "d", "path_prefix": "p", "labels": [{"hoi_id": 1}]}, "i.jpg/labels/0", "missing keys human_bbox"),
])
def test_malformed_entries_name_the_key(tmp_path, image, where, reason):
    path = tmp_path / "a.json"
    path.write_text(json.dumps({"i.jpg": image}))
    with pytest.raises(InputError) as err:
        hake_instance.read_records(path)
    assert str(err.value).startswith(f"{path}:{where}: ") and reason in str(err.value)


def test_bad_json_and_empty_file(tmp_path):
    path = tmp_path / "a.json"
    path.write_text('{"i.jpg": {"labels": [}\n}')
    with pytest.raises(InputError, match=r"a.json:line 1: bad JSON"):
        hake_instance.read_records(path)
    path.write_text("  \n")
    with pytest.raises(InputError, match="empty file"):
        hake_instance.read_records(path)


def test_validate_lists_every_problem(tmp_path):
    path = tmp_path / "a.json"
    path.write_text(json.dumps({"a.jpg": _image(hoi_id=601, width=-1), "b.jpg": _image(), "c.jpg": {"labels": 3}}))
    problems = hake_instance.validate(path)
    assert [p.where for p in problems] == ["a.jpg/labels/0/hoi_id", "a.jpg/labels/0/width", "c.jpg"]
    assert hake_instance.validate(FIXTURE.parent) == []  # a folder with one instance-level file
