import json
from pathlib import Path

import pytest

from partwise.data import hake_image
from partwise.data.records import PERSON_SCHEMA
from partwise.errors import InputError

FIXTURE = Path(__file__).parent.parent / "fixtures" / "hake" / "hico-training-set-image-level.json"


def test_records_decode_the_76_setting_bits():
    table = hake_image.read_records(FIXTURE)
    assert table.schema == PERSON_SCHEMA
    first, second = table.to_pylist()
    assert first["video_id"] == "HICO_train2015_00000001.jpg" and first["dataset"] == "hake-image"
    assert first["split"] == "train" and first["actions"] == [153, 154] and first["action_vocab"] == "hico_hoi600"
    # foot bits 0 and 2, leg bit 9 (no_interaction), hip 0, hand 0, arm 4 (no_interaction), head 1
    assert first["pasta"] == ["foot: stand on", "foot: walk with", "leg: no_interaction", "hip: sit on", "hand: hold",
                              "arm: no_interaction", "head: inspect"]
    assert first["pasta_vocab"] == "pasta76" and first["part_boxes"] == [] and first["x1"] is None
    assert first["source"] == f"{FIXTURE}:HICO_train2015_00000001.jpg"
    assert second["actions"] == [600]
    assert second["pasta"] == [f"{p}: no_interaction" for p in ("foot", "leg", "hip", "hand", "arm", "head")]


def test_row_api_round_trip(tmp_path):
    data = hake_image.read_hake_image(FIXTURE)
    assert list(data) == ["HICO_train2015_00000001.jpg", "HICO_train2015_00000002.jpg"]
    assert list(data["HICO_train2015_00000001.jpg"]) == list(hake_image.KEYS)
    out = tmp_path / "x.json"
    hake_image.write_hake_image(data, out)
    assert out.read_bytes() == FIXTURE.read_bytes()


def test_write_records_round_trip_and_derived_parts_list(tmp_path):
    table = hake_image.read_records(FIXTURE)
    hake_image.write_records(table, tmp_path)
    written = tmp_path / "hake-image-level.json"
    back = hake_image.read_records(written)
    assert back.drop(["source", "split"]).equals(table.drop(["source", "split"]))
    data = json.loads(written.read_text())
    original = json.loads(FIXTURE.read_text())
    for name in original:
        for key in hake_image.PART_KEYS + ("hoi_id",):
            assert data[name][key] == original[name][key]
    # parts_list is derived: feet (0, 3), hip (4), hands (6, 9), head (5) have states; legs and arms do not
    assert data["HICO_train2015_00000001.jpg"]["parts_list"] == [1, 0, 0, 1, 1, 1, 1, 0, 0, 1]
    assert data["HICO_train2015_00000002.jpg"]["parts_list"] == [0] * 10


def _entry(**changes):
    entry = json.loads(FIXTURE.read_text())["HICO_train2015_00000002.jpg"]
    entry.update(changes)
    return entry


@pytest.mark.parametrize("entry,where,reason", [
    (_entry(hoi_id=[601]), "img.jpg/hoi_id", "unknown HICO HOI id 601"),
    (_entry(hip_list=[0, 0, 1]), "img.jpg/hip_list", "expected a list of 5 values 0/1"),
    (_entry(parts_list=[0] * 9 + [2]), "img.jpg/parts_list", "expected a list of 10 values 0/1"),
    ({k: v for k, v in _entry().items() if k != "head_list"}, "img.jpg", "missing keys head_list"),
    ([1, 2], "img.jpg", "not an object"),
])
def test_malformed_entries_name_the_key(tmp_path, entry, where, reason):
    path = tmp_path / "a.json"
    path.write_text(json.dumps({"img.jpg": entry}))
    with pytest.raises(InputError) as err:
        hake_image.read_records(path)
    assert str(err.value).startswith(f"{path}:{where}: ") and reason in str(err.value)


def test_bad_json_empty_file_duplicates_and_top_level(tmp_path):
    path = tmp_path / "a.json"
    path.write_text('{"a.jpg": {\n"hoi_id": [1,]\n}}')
    with pytest.raises(InputError, match=r"a.json:line 2: bad JSON"):
        hake_image.read_records(path)
    path.write_text("")
    with pytest.raises(InputError, match="empty file"):
        hake_image.read_records(path)
    path.write_text(json.dumps({"a.jpg": _entry()})[:-1] + ', "a.jpg": {}}')
    with pytest.raises(InputError, match="a.jpg: duplicate key"):
        hake_image.read_records(path)
    path.write_text("[]")
    with pytest.raises(InputError, match="top level is not an object"):
        hake_image.read_records(path)


def test_validate_lists_every_problem(tmp_path):
    path = tmp_path / "a.json"
    path.write_text(json.dumps({"x.jpg": _entry(hoi_id=[0, 700], leg_list=[]), "y.jpg": _entry(),
                                "z.jpg": _entry(arm_list=None)}))
    problems = hake_image.validate(path)
    assert [p.where for p in problems] == ["x.jpg/hoi_id", "x.jpg/hoi_id", "x.jpg/leg_list", "z.jpg/arm_list"]
    assert hake_image.validate(FIXTURE) == []
