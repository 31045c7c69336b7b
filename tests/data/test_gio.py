from pathlib import Path

import pytest

from partwise.data import gio
from partwise.data.records import PERSON_SCHEMA, RecordBuilder
from partwise.errors import InputError

HAKE = Path(__file__).parent.parent / "fixtures" / "hake"
DIO = HAKE / "DIO" / "DIO_annotation" / "DIO_train.csv"


def test_records_one_person_with_its_objects():
    table = gio.read_records(HAKE / "DIO")
    assert table.schema == PERSON_SCHEMA
    recs = table.to_pylist()
    assert [(r["time_s"], r["person_id"], r["actions"]) for r in recs] == [(905.0, 12, [6]), (902.0, 7, [9]), (902.0, 0, [12])]
    first = recs[0]
    assert first["dataset"] == "gio" and first["split"] == "train" and first["frame_index"] == 150
    assert (first["x1"], first["y1"], first["x2"], first["y2"]) == (0.392, 0.033, 0.556, 0.618)
    assert [(o["class_name"], o["class_id"], o["action"], o["x1"], o["y1"], o["x2"], o["y2"]) for o in first["objects"]] == [
        ("stick", 0, 6, 0.37, 0.019, 0.432, 0.608), ("cup", 3, 6, 0.5, 0.5, 0.6, 0.7)]
    assert first["source"] == f"{DIO}:1"


def test_row_api_round_trip_is_byte_exact(tmp_path):
    out = tmp_path / "DIO_train.csv"
    gio.write_gio(gio.read_gio(DIO), out)
    assert out.read_bytes() == DIO.read_bytes()


def test_write_records_and_read_back(tmp_path):
    table = gio.read_records(DIO)
    gio.write_records(table, tmp_path / "out")
    assert (tmp_path / "out" / "DIO_train.csv").read_bytes() == DIO.read_bytes()
    assert gio.read_records(tmp_path / "out").drop(["source"]).equals(table.drop(["source"]))


def test_joint_view_matches_by_box_tolerance_or_person_id():
    joint = gio.read_joint(HAKE / "hake_ava_annotations", HAKE / "DIO").to_pylist()
    assert [r["dataset"] for r in joint] == ["hake-ava+gio"] * 4
    # PaSta person 1 (box 0.077,...) and GIO person 7 (box 0.0775,...): boxes within 1e-3
    assert [o["class_name"] for o in joint[0]["objects"]] == ["ball"]
    assert joint[0]["actions"] == [9, 80]  # AVA actions of the PaSta record stay
    # PaSta person 0 and GIO human 0 at 902: boxes differ, same person id
    assert [o["class_name"] for o in joint[1]["objects"]] == ["phone"]
    # no GIO person at 903 / in the val video; the GIO person at 905 has no PaSta person and is not in the view
    assert joint[2]["objects"] == [] and joint[3]["objects"] == []


def _person(box, pid, objects=()):
    b = RecordBuilder()
    b.append(dataset="x", video_id="v", time_s=902.0, x1=box[0], y1=box[1], x2=box[2], y2=box[3], person_id=pid,
             objects=[{"class_name": n, "x1": 0.0, "y1": 0.0, "x2": 0.1, "y2": 0.1} for n in objects])
    return b.to_table()


def test_joint_tolerance_boundary():
    pasta = _person((0.1, 0.1, 0.5, 0.5), 1)
    near = _person((0.1009, 0.1, 0.5, 0.5), 2, ["cup"])
    far = _person((0.102, 0.1, 0.5, 0.5), 2, ["cup"])
    assert [o["class_name"] for o in gio.joint_records(pasta, near).column("objects")[0].as_py()] == ["cup"]
    assert gio.joint_records(pasta, far).column("objects")[0].as_py() == []
    same_id = gio.joint_records(pasta, _person((0.3, 0.3, 0.9, 0.9), 1, ["cup", "pen"]))
    assert [o["class_name"] for o in same_id.column("objects")[0].as_py()] == ["cup", "pen"]


BAD = [
    ("v,905,0.3,0.0,0.5,0.6,0.3,0.0,0.4,0.6,6,stick,12\n", 1, "expected 14 comma-separated columns, got 13"),
    ("v,905,0.3,0.0,0.5,0.6,0.3,0.0,1.4,0.6,6,stick,12,0\n", 1, "object box"),
    ("v,905,0.3,0.0,0.2,0.6,0.3,0.0,0.4,0.6,6,stick,12,0\n", 1, "x2 < x1"),
    ("v,905,0.3,0.0,0.5,0.6,0.3,0.0,0.4,0.6,6,stick,12,-3\n", 1, "negative object_id -3"),
    ("v,905,0.3,0.0,0.5,0.6,0.3,0.0,0.4,0.6,6,,12,0\n", 1, "empty object_name"),
]


@pytest.mark.parametrize("text,line,reason", BAD)
def test_malformed_rows_raise_with_file_and_line(tmp_path, text, line, reason):
    path = tmp_path / "DIO_test.csv"
    path.write_text("v,905,0.3,0.0,0.5,0.6,0.3,0.0,0.4,0.6,6,stick,12,0\n" + text)
    with pytest.raises(InputError) as err:
        gio.read_records(path)
    assert str(err.value).startswith(f"{path}:line {line + 1}: ") and reason in str(err.value)


def test_empty_file_and_validate_lists_all(tmp_path):
    empty = tmp_path / "DIO_train.csv"
    empty.write_text("")
    with pytest.raises(InputError, match="empty file"):
        gio.read_records(empty)
    bad = tmp_path / "DIO_test.csv"
    bad.write_text("".join(t for t, _, _ in BAD))
    problems = gio.validate(tmp_path)
    assert str(empty) in [p.path for p in problems]
    assert sorted(p.where for p in problems if p.path == str(bad)) == [1, 2, 3, 4, 5]


def test_joint_with_empty_sides():
    from partwise.data import hake_ava

    pasta = hake_ava.read_records(HAKE / "hake_ava_annotations")
    assert gio.joint_records(pasta, PERSON_SCHEMA.empty_table()).column("objects").to_pylist() == [[]] * 4
    assert gio.joint_records(PERSON_SCHEMA.empty_table(), gio.read_records(HAKE / "DIO")).num_rows == 0
