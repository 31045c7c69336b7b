import pytest

from partwise import vocab
from partwise.errors import InputError
from partwise.vocab import convert, load, read_label_map, write_label_map
from partwise.vocab.core import PASTA_PARTS


@pytest.mark.parametrize(
    "name,size,first,sizes",
    [
        ("pasta93", 93, 0, (16, 15, 6, 34, 8, 14)),
        ("pasta76", 76, 0, (12, 10, 5, 31, 5, 13)),
        ("pasta55", 55, 0, (6, 6, 3, 23, 5, 12)),
        ("pasta_ava87", 87, 1, (15, 14, 5, 33, 7, 13)),
    ],
)
def test_pasta_sizes(name, size, first, sizes):
    v = load(name)
    assert len(v) == size and v.first_id == first and v.part_sizes == sizes


def test_other_sizes():
    assert len(load("verbs157")) == 157 and load("verbs157").name_of(57) == "no_interaction"
    assert len(load("ava80")) == 80 and len(load("ava60")) == 60
    assert len(load("hico_hoi600")) == 600 and len(load("hico_verbs117")) == 117 and len(load("hico_objects80")) == 80
    assert load("body_parts10").names[0] == "right_foot" and load("body_parts10").names[9] == "left_hand"


def test_ava60_ids_are_the_evaluated_subset():
    expected = [1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 17, 20, 22, 24, 26, 27, 28, 29, 30, 34, 36, 37, 38,
                41, 43, 45, 46, 47, 48, 49, 51, 52, 54, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70,
                72, 73, 74, 76, 77, 78, 79, 80]
    assert list(load("ava60").ids) == expected
    assert convert(range(1, 81), "ava80", "ava60", missing="drop") == expected


def test_hake_ava_documented_ids():
    v = load("pasta_ava87")
    assert v.name_of(30) == "hip: sit on"
    # action 9 row: foot 14, leg 13, hand 32, arm 6 (0-based local) are all "martial art".
    assert v.name_of(v.to_global("foot", 14)) == "foot: martial art"
    assert v.name_of(v.to_global("leg", 13)) == "leg: martial art"
    assert v.name_of(v.to_global("hand", 32)) == "hand: martial art"
    assert v.name_of(v.to_global("arm", 6)) == "arm: martial art"
    assert v.name_of(v.to_global("hand", 17)) == "hand: gesture to"
    assert v.name_of(v.to_global("head", 1)) == "head: inspect"
    # the evaluation formula id = cumsum(sizes)[p-1] + l + 1
    sizes = [15, 14, 5, 33, 7, 13]
    for p, part in enumerate(PASTA_PARTS):
        for local in range(sizes[p]):
            assert v.to_global(part, local) == sum(sizes[:p]) + local + 1
            assert v.to_local(sum(sizes[:p]) + local + 1) == (part, local)


def test_body_part_merge():
    assert [vocab.body_part_to_pasta_part(i) for i in range(10)] == [
        "foot", "leg", "leg", "foot", "hip", "head", "hand", "arm", "arm", "hand"]


def test_conversions():
    assert convert([15], "pasta93", "pasta76") == [11]  # foot: no_interaction
    assert convert([11, 12, 0], "pasta93", "pasta76", missing="drop") == [0]  # foot: crawl, dance are new in 93
    with pytest.raises(KeyError):
        convert([11], "pasta93", "pasta76")
    assert convert([11], "pasta76", "pasta93") == [15]
    assert convert([0, 14], "pasta93", "pasta_ava87") == [1, 15]
    with pytest.raises(KeyError):
        convert([15], "pasta93", "pasta_ava87")  # no_interaction has no AVA counterpart
    assert convert([21], "pasta76", "pasta55") == [11]
    assert load("pasta55").name_of(11) == "leg: no interaction"
    assert convert([11], "pasta55", "pasta76") == [21]  # by name, spelling normalized
    # HICO HOI 153 = motorcycle race
    assert load("hico_hoi600").name_of(153) == "race motorcycle"
    verb = convert([153], "hico_hoi600", "hico_verbs117")[0]
    assert load("hico_verbs117").name_of(verb) == "race"
    assert load("hico_objects80").name_of(convert([153], "hico_hoi600", "hico_objects80")[0]) == "motorcycle"


def test_no_interaction_ids():
    assert load("pasta93").no_interaction_ids() == (15, 30, 36, 70, 78, 92)
    assert load("pasta_ava87").no_interaction_ids() == ()


def test_labelmap_roundtrip_item(tmp_path):
    from importlib import resources

    src = resources.files("partwise.vocab").joinpath("data", "ava_action_list_v2.1_for_activitynet_2018.pbtxt")
    mapping = read_label_map(str(src))
    assert len(mapping) == 60 and mapping[80] == "watch (a person)"
    out = tmp_path / "out.pbtxt"
    write_label_map(mapping, out, "item")
    assert out.read_text() == src.read_text()


def test_labelmap_label_dialect_and_lines(tmp_path):
    text = 'label {\n  name: "bend/bow (at the waist)"\n  label_id: 1\n  label_type: PERSON_MOVEMENT\n}\n' \
           'label {\n  name: "crawl"\n  label_id: 2\n  label_type: PERSON_MOVEMENT\n}\n'
    path = tmp_path / "a.pbtxt"
    path.write_text(text)
    mapping = read_label_map(path, with_types=True)
    assert mapping == {1: ("bend/bow (at the waist)", "PERSON_MOVEMENT"), 2: ("crawl", "PERSON_MOVEMENT")}
    out = tmp_path / "b.pbtxt"
    write_label_map(mapping, out, "label")
    assert out.read_text() == text
    lines = tmp_path / "c.txt"
    write_label_map({1: "bend", 3: "crouch"}, lines, "lines")
    assert read_label_map(lines) == {1: "bend", 3: "crouch"}


def test_labelmap_not_utf8_names_the_byte(tmp_path):
    path = tmp_path / "bad.pbtxt"
    path.write_bytes(b'item {\n  name: "walk"\n  id: 1\n}\nitem {\n  name: "w\xffk"\n  id: 2\n}\n')
    with pytest.raises(InputError, match=r"bad.pbtxt: not UTF-8 text \(byte 49\)"):
        read_label_map(path)


@pytest.mark.parametrize(
    "text,line",
    [("item {\n  name: \"a\"\n}\n", 1), ("item {\n  name: \"a\"\n  id: x\n}\n", 1), ("garbage\n", 1),
     ("item {\n  name: \"a\"\n  id: 1\n", 1), ("item {\n  name: \"a\"\n  id: 1\n}\nitem {\n  name: \"b\"\n  id: 1\n}\n", 5)],
)
def test_labelmap_errors(tmp_path, text, line):
    path = tmp_path / "bad.pbtxt"
    path.write_text(text)
    with pytest.raises(InputError) as err:
        read_label_map(path)
    assert str(path) in str(err.value) and f"line {line}" in str(err.value)
