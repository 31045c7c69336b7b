from pathlib import Path

import pytest

from partwise import vocab
from partwise.data import hake_ava
from partwise.data.records import PERSON_SCHEMA
from partwise.errors import InputError

FIXTURE = Path(__file__).parent.parent / "fixtures" / "hake" / "hake_ava_annotations"
TRAIN = FIXTURE / "video_pasta_train.csv"


def _names(rows, row):
    pasta = vocab.load("pasta_ava87")
    r, ids = rows.pasta_ids()
    return {pasta.name_of(i) for i in ids[r == row]}


def test_documented_example_rows_decode_to_documented_meanings():
    rows = hake_ava.read_hake_ava(TRAIN)
    assert list(rows.action[:3]) == [80, 9, 12]
    # action 80 "watch (a person)": hand 17 and head 1
    assert _names(rows, 0) == {"hand: gesture to", "head: inspect"}
    # action 9 "martial art": martial art on foot, leg, hand and arm
    assert _names(rows, 1) == {"foot: martial art", "leg: martial art", "hand: martial art", "arm: martial art"}
    pasta = vocab.load("pasta_ava87")
    assert pasta.id_of("hip: sit on") == 30 == pasta.to_global("hip", 0)
    assert pasta.part_sizes == (15, 14, 5, 33, 7, 13)


def test_records_union_over_the_person_key():
    table = hake_ava.read_records(FIXTURE)
    assert table.schema == PERSON_SCHEMA
    recs = table.to_pylist()
    assert [(r["split"], r["video_id"], r["time_s"], r["person_id"]) for r in recs] == [
        ("train", "-5KQ66BBWC4", 902.0, 1), ("train", "-5KQ66BBWC4", 902.0, 0),
        ("train", "-5KQ66BBWC4", 903.0, 0), ("val", "1j20qq1JyX4", 1798.0, 4)]
    first = recs[0]
    assert first["actions"] == [9, 80]
    assert first["pasta"] == ["foot: martial art", "leg: martial art", "hand: gesture to", "hand: martial art",
                              "arm: martial art", "head: inspect"]
    assert (first["x1"], first["y1"], first["x2"], first["y2"]) == (0.077, 0.151, 0.283, 0.811)
    assert first["frame_index"] == 60 and first["pasta_vocab"] == "pasta_ava87" and first["action_vocab"] == "ava80"
    assert first["dataset"] == "hake-ava" and first["source"] == f"{TRAIN}:1"
    # multi-label cells 17_0 (hand) and 3_1 (head), hip 0
    assert recs[2]["pasta"] == ["foot: stand on", "hip: sit on", "hand: hold", "hand: gesture to", "head: inspect",
                                "head: talk to"]
    assert recs[2]["frame_index"] == (903 - 900) * 30
    assert recs[3]["source"].endswith("video_pasta_val.csv:1") and recs[3]["pasta"] == ["hip: sit on"]
    assert recs[0]["objects"] == [] and recs[0]["part_boxes"] == []


def test_read_one_split_of_a_folder_and_a_single_file():
    assert hake_ava.read_records(FIXTURE, split="val").num_rows == 1
    assert set(hake_ava.read_records(TRAIN).column("split").to_pylist()) == {"train"}


@pytest.mark.parametrize("name", ["video_pasta_train.csv", "video_pasta_val.csv"])
def test_row_api_round_trip_is_byte_exact(tmp_path, name):
    rows = hake_ava.read_hake_ava(FIXTURE / name)
    out = tmp_path / name
    hake_ava.write_hake_ava(rows, out)
    assert out.read_bytes() == (FIXTURE / name).read_bytes()


def test_crlf_file_reads_like_lf(tmp_path):
    crlf = tmp_path / "video_pasta_train.csv"
    crlf.write_bytes(TRAIN.read_bytes().replace(b"\n", b"\r\n"))
    assert hake_ava.read_records(crlf).drop(["source"]).equals(hake_ava.read_records(TRAIN).drop(["source"]))


def test_write_records_puts_the_union_on_every_action_row(tmp_path):
    table = hake_ava.read_records(FIXTURE)
    hake_ava.write_records(table, tmp_path / "out")
    lines = (tmp_path / "out" / "video_pasta_train.csv").read_text().splitlines()
    assert lines[:2] == ["-5KQ66BBWC4,902,0.077,0.151,0.283,0.811,9,1,14,13,-1,17_32,6,1",
                         "-5KQ66BBWC4,902,0.077,0.151,0.283,0.811,80,1,14,13,-1,17_32,6,1"]
    assert vocab.read_label_map(tmp_path / "out" / "part_state.pbtxt") == dict(
        zip(vocab.load("pasta_ava87").ids, vocab.load("pasta_ava87").names))
    back = hake_ava.read_records(tmp_path / "out")
    assert back.drop(["source"]).equals(table.drop(["source"]))
    assert hake_ava.validate(tmp_path / "out") == []


def test_write_records_converts_pasta93_names_and_drops_no_interaction(tmp_path):
    from partwise.data.records import RecordBuilder

    b = RecordBuilder()
    b.append(dataset="x", video_id="v", time_s=905.0, x1=0.1, y1=0.2, x2=0.3, y2=0.4, person_id=3, actions=[11],
             action_vocab="ava80", pasta=["hip: sit on", "hand: no_interaction", "head: listen"], pasta_vocab="pasta93")
    b.append(dataset="x", video_id="v", time_s=905.0, x1=0.1, y1=0.2, x2=0.3, y2=0.4, actions=[], pasta=["hip: bend"])
    hake_ava.write_records(b.to_table(), tmp_path / "a.csv")
    assert (tmp_path / "a.csv").read_text() == "v,905,0.1,0.2,0.3,0.4,11,3,-1,-1,0,-1,-1,12\n"


def test_write_records_rejects_rows_it_cannot_write(tmp_path):
    from partwise.data.records import RecordBuilder

    b = RecordBuilder()
    b.append(dataset="x", video_id="v", time_s=902.0, actions=[5], action_vocab="ava80", source="f.csv:7")
    with pytest.raises(InputError, match="f.csv:7: a HAKE-AVA row needs the keyframe time and a normalized"):
        hake_ava.write_records(b.to_table(), tmp_path / "a.csv")
    b = RecordBuilder()
    b.append(dataset="x", video_id="v", time_s=902.0, x1=0.0, y1=0.0, x2=1.0, y2=1.0, actions=[5],
             action_vocab="hico_hoi600", source="g.json:k")
    with pytest.raises(InputError, match="g.json:k: actions are not AVA"):
        hake_ava.write_records(b.to_table(), tmp_path / "out")
    assert not (tmp_path / "a.csv").exists() and not (tmp_path / "out").exists()


def test_folder_files_are_validated_together_with_the_label_map():
    assert hake_ava.validate(FIXTURE) == []


BAD = [
    ("v,902,0.1,0.1,0.2,0.2,9,1,-1,-1,-1,-1,-1\n", 1, "expected 14 comma-separated columns, got 13"),
    ("v,902,0.1,0.1,1.2,0.2,9,1,-1,-1,-1,-1,-1,-1\n", 1, "outside [0, 1]"),
    ("v,902,0.5,0.1,0.2,0.2,9,1,-1,-1,-1,-1,-1,-1\n", 1, "x2 < x1"),
    ("v,902,0.1,0.1,0.2,0.2,81,1,-1,-1,-1,-1,-1,-1\n", 1, "unknown AVA action id 81"),
    ("v,902,0.1,0.1,0.2,0.2,9,1,-1,-1,5,-1,-1,-1\n", 1, "hip PaSta index 5 out of range 0..4"),
    ("v,902,0.1,0.1,0.2,0.2,9,1,-1,-1,-1,1__2,-1,-1\n", 1, "hand PaSta cell '1__2'"),
    ("v,9o2,0.1,0.1,0.2,0.2,9,1,-1,-1,-1,-1,-1,-1\n", 1, "frame (seconds) is not an integer"),
    ("v,902,0.1,0.1,0.2,0.2,9,99999999999999999999,-1,-1,-1,-1,-1,-1\n", 1, "human_id is not an integer"),
    ("v,902,0.1,0.1,0.2,0.2,9,1,-1,-1,-1,99999999999999999999,-1,-1\n", 1, "hand PaSta cell"),
    ("v,902,0.1,0.1,0.2,0.2,9,1,-1,-1,-1,-1,-1,-1\n\n", 2, "empty line"),
]


@pytest.mark.parametrize("text,line,reason", BAD)
def test_malformed_rows_raise_with_file_and_line(tmp_path, text, line, reason):
    path = tmp_path / "video_pasta_train.csv"
    path.write_text(text)
    with pytest.raises(InputError) as err:
        hake_ava.read_records(path)
    assert str(err.value).startswith(f"{path}:line {line}: ")
    assert reason in str(err.value)


def test_empty_file_and_missing_folder(tmp_path):
    path = tmp_path / "video_pasta_val.csv"
    path.write_text("")
    with pytest.raises(InputError, match="empty file"):
        hake_ava.read_hake_ava(path)
    with pytest.raises(InputError, match="no video_pasta_train.csv"):
        hake_ava.read_records(tmp_path, split="train")


def test_validate_lists_every_problem(tmp_path):
    good = "v,902,0.1,0.1,0.2,0.2,9,1,-1,-1,-1,-1,-1,-1"
    path = tmp_path / "video_pasta_train.csv"
    path.write_text("\n".join([good, "v,902,0.1", good, "v,902,0.1,0.1,0.2,0.2,99,1,-1,-1,-1,40,-1,-1", good]) + "\n")
    problems = hake_ava.validate(tmp_path)
    assert [(p.where, p.path) for p in problems] == [(2, str(path)), (4, str(path)), (4, str(path))]
    assert "unknown AVA action id 99" in problems[1].reason
    assert "hand PaSta index 40" in problems[2].reason


def test_validate_checks_the_label_map(tmp_path):
    (tmp_path / "video_pasta_train.csv").write_bytes(TRAIN.read_bytes())
    vocab.write_label_map({1: "foot: stand on"}, tmp_path / "part_state.pbtxt")
    problems = hake_ava.validate(tmp_path)
    assert len(problems) == 1 and problems[0].path.endswith("part_state.pbtxt")
    assert "differs from the 87 HAKE-AVA PaSta classes" in problems[0].reason
