"""AVA CSV / excluded timestamps / frame lists / proposals / canonical records (partwise.data.ava)."""
import csv
import math
import pickle
import shutil

import numpy as np
import pyarrow as pa
import pytest

from partwise.data import ava
from partwise.errors import InputError, Problem
from partwise.vocab import read_label_map

from tests.conftest import FIXTURES

HERE = FIXTURES / "ava_formats"
ROUND_TRIP_FILES = ["gt.csv", "gt2020.csv", "det.csv", "excl.csv", "slowfast_boxes.csv", "ava_kinetics_mixed.csv",
                    "persons.csv", "folder/ava_val_v2.2.csv"]


def _python_reference(path):
    """Independent parse with the csv module: list of per-line field lists."""
    with open(path, newline="") as fh:
        return [row for row in csv.reader(fh)]


# ------------------------------------------------------------------------------------------------ read_csv

@pytest.mark.parametrize("name", ROUND_TRIP_FILES)
def test_round_trip_is_byte_identical(name, tmp_path):
    table = ava.read_csv(HERE / name)
    out = tmp_path / "out.csv"
    ava.write_csv(table, out)
    assert out.read_bytes() == (HERE / name).read_bytes()


@pytest.mark.parametrize("name", ["gt.csv", "gt2020.csv", "det.csv", "slowfast_boxes.csv", "ava_kinetics_mixed.csv"])
def test_columns_match_independent_parse(name):
    table = ava.read_csv(HERE / name)
    rows = _python_reference(HERE / name)
    assert len(table) == len(rows)
    assert table.line.tolist() == list(range(1, len(rows) + 1))
    assert table.n_columns.tolist() == [len(r) for r in rows]
    assert table.video_ids.tolist() == [r[0] for r in rows]
    assert table.videos == list(dict.fromkeys(r[0] for r in rows))
    assert table.timestamp.tolist() == [float(r[1]) for r in rows]
    for i, r in enumerate(rows):
        if len(r) == 2:
            assert np.isnan(table.boxes[i]).all() and table.action[i] == -1
            continue
        assert table.boxes[i].tolist() == [float(v) for v in r[2:6]]
        assert table.action[i] == (int(r[6]) if r[6] else -1)
        if len(r) == 8 and table.kind == "det":
            assert table.score[i] == float(r[7]) and table.person_id[i] == -1
        elif len(r) == 8:
            assert table.person_id[i] == int(r[7]) and np.isnan(table.score[i])
        else:
            assert table.person_id[i] == -1 and np.isnan(table.score[i])


def test_dtypes_and_kinds():
    gt = ava.read_csv(HERE / "gt.csv")
    assert gt.kind == "gt" and ava.read_csv(HERE / "det.csv").kind == "det"
    assert gt.video_codes.dtype == np.int32 and gt.timestamp.dtype == np.float64 and gt.boxes.shape == (len(gt), 4)
    assert gt.action.dtype == np.int32 and gt.person_id.dtype == np.int64 and gt.n_columns.dtype == np.int8
    assert gt.line.dtype == np.int64 and gt.score.dtype == np.float64
    # forcing the interpretation of the 8th column
    assert ava.read_csv(HERE / "gt.csv", kind="det").score[0] == 0.0
    with pytest.raises(InputError, match=r"det.csv:line 1: person_id is not an integer: '0.0088'"):
        ava.read_csv(HERE / "det.csv", kind="gt")


def test_two_column_rows_of_2020_gt():
    table = ava.read_csv(HERE / "gt2020.csv")
    two = table.n_columns == 2
    assert two.sum() == 1 and table.line[two].tolist() == [99]
    assert table.timestamp[two].tolist() == [921.0]
    with pytest.raises(InputError, match=r"gt2020.csv:line 99: expected 7 or 8 fields, got 2"):
        ava.read_csv(HERE / "gt2020.csv", allow_keyframe_rows=False)


def test_slowfast_box_list_has_no_action():
    table = ava.read_csv(HERE / "slowfast_boxes.csv")
    assert table.kind == "det" and table.action.tolist() == [-1, -1, -1]
    assert table.score.tolist() == [0.995518, 0.812304, 0.990021]


def test_ragged_reader_counts_blank_lines_and_crlf(tmp_path):
    path = tmp_path / "x.csv"
    path.write_bytes(b"aaaaaaaaaaa,0902,0.1,0.2,0.3,0.4,5,1\r\n\r\naaaaaaaaaaa,0903\r\n"
                     b"aaaaaaaaaaa,0904,0.1,0.2,0.3,0.4,6,2")
    table = ava.read_csv(path)
    assert table.line.tolist() == [1, 3, 4]
    assert table.n_columns.tolist() == [8, 2, 8] and table.action.tolist() == [5, -1, 6]
    assert table.timestamp.tolist() == [902, 903, 904]


def test_blank_lines_are_skipped_on_the_fast_path_too(tmp_path):
    path = tmp_path / "blank.csv"
    path.write_text("a,0902,0.1,0.2,0.3,0.4,5,1\n\na,0903,0.1,0.2,0.3,0.4,6,1\n")
    table = ava.read_csv(path)
    assert table.line.tolist() == [1, 3] and table.action.tolist() == [5, 6]


def test_valid_actions_restricts_ids():
    with pytest.raises(InputError, match=r"gt.csv:line 2: action id 50 not in the given action ids"):
        ava.read_csv(HERE / "gt.csv", valid_actions={6})


MALFORMED = [
    ("a,0902,0.1,0.2,0.3,0.4,5,1\na,0902,0.1,0.2,0.3,0.4\n", 2, "expected 7 or 8 fields (or 2 for a keyframe row), got 6"),
    ("a,0902,0.1,0.2,0.3,0.4,5,1\na,0902,0.1,0.2,1.3,0.4,5,1\n", 2, "x2=1.3 outside [0, 1]"),
    ("a,0902,-0.1,0.2,0.3,0.4,5,1\n", 1, "x1=-0.1 outside [0, 1]"),
    ("a,0902,0.5,0.2,0.3,0.4,5,1\n", 1, "x2=0.3 < x1=0.5"),
    ("a,0902,0.1,0.5,0.3,0.4,5,1\n", 1, "y2=0.4 < y1=0.5"),
    ("a,0902,0.1,0.2,0.3,0.4,5,1\na,0903,0.1,0.2,0.3,0.4,81,1\n", 2, "action id 81 not in 1..80"),
    ("a,0902,0.1,0.2,0.3,0.4,0,1\n", 1, "action id 0 not in 1..80"),
    ("a,0902,0.1,0.2,0.3,0.4,5,0.5\na,0902,0.1,0.2,0.3,0.4,5,nan\n", 2, "score is NaN"),
    ("a,0902,0.1,0.2,0.3,0.4,5,1\na,0902,0.1,zero,0.3,0.4,5,1\n", 2, "y1 is not a number: 'zero'"),
    ("a,0902,0.1,0.2,0.3,0.4,5,1\na,09o2,0.1,0.2,0.3,0.4,5,1\n", 2, "timestamp is not a number: '09o2'"),
    ("a,0902,0.1,0.2,0.3,0.4,walk,1\n", 1, "action is not an integer: 'walk'"),
    ("a,0902,0.1,0.2,0.3,0.4,5,1\na,0902,0.1,0.2,0.3,0.4,5,-12345678901234567890\n", 2,
     "person_id is beyond 64 bits: '-12345678901234567890'"),
    ("a,0902,0.1,0.2,0.3,0.4,9223372036854775808,1\n", 1, "action is beyond 64 bits: '9223372036854775808'"),
    ("a,0902,0.1,,0.3,0.4,5,1\n", 1, "empty y1 field"),
    (",0902,0.1,0.2,0.3,0.4,5,1\n", 1, "empty video id"),
]


@pytest.mark.parametrize("text,line,reason", MALFORMED)
def test_malformed_rows_raise_input_error(tmp_path, text, line, reason):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        ava.read_csv(path)
    assert str(info.value) == f"{path}:line {line}: {reason}"
    problems = ava.validate_csv(path)
    assert [(p.where, p.reason) for p in problems] == [(line, reason)]


def test_empty_file(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(InputError, match=r"empty.csv: empty file"):
        ava.read_csv(path)
    assert [p.reason for p in ava.validate_csv(path)] == ["empty file: no rows"]
    with pytest.raises(InputError, match="cannot read file"):
        ava.read_csv(tmp_path / "missing.csv")


def test_validate_lists_every_problem():
    path = HERE / "several_problems.csv"
    problems = ava.validate_csv(path)
    assert [(p.path, p.where, p.reason) for p in problems] == [
        (str(path), 2, "expected 7 or 8 fields (or 2 for a keyframe row), got 5"),
        (str(path), 3, "x1=1.1 outside [0, 1]"),
        (str(path), 3, "x2=1.3 outside [0, 1]"),
        (str(path), 4, "x2=0.3 < x1=0.5"),
        (str(path), 5, "action id 81 not in 1..80"),
        (str(path), 6, "timestamp is not a number: '09x4'"),
    ]
    with pytest.raises(InputError, match="line 2: expected 7 or 8"):
        ava.read_csv(path)


def test_validate_caps_the_list(tmp_path):
    path = tmp_path / "many.csv"
    path.write_text("".join(f"a,{900 + i},0.1,0.2,0.3,0.4,99,1\n" for i in range(30)))
    problems = ava.validate_csv(path, max_problems=10)
    assert len(problems) == 11 and [p.where for p in problems[:10]] == list(range(1, 11))
    assert problems[-1].reason == "... and 20 more problems" and problems[-1].where is None


# ------------------------------------------------------------------------------------------------ writing

def test_format_fixed_matches_python():
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.random(2000), rng.random(200) * 1e4, [0.0005, 0.0015, 0.0025, 2.675, 1.0, 0.0,
                                                                      -0.25, -0.0004, 0.9995, 123.4565]])
    for decimals in (0, 1, 3, 4, 6):
        got = ava.format_fixed(values, decimals).to_pylist()
        assert got == [f"{v:.{decimals}f}" for v in values]
    assert ava.format_fixed(np.array([902.0, 1798.0, 5.0]), 0, width=4).to_pylist() == ["0902", "1798", "0005"]


def test_format_shortest_matches_repr():
    values = np.array([0.1, 0.5, 1.0, 1e-05, 0.0001, 0.30000000000000004, 123.0, 2.5e-7, 0.0, 15.25])
    assert ava.format_shortest(values).to_pylist() == [repr(float(v)) for v in values]


def test_write_in_memory_table_uses_ava_defaults(tmp_path):
    n = 3
    table = ava.AvaCsv(
        path="mem", videos=["-5KQ66BBWC4", "AbCdEfGhIjK_000010_000020"],
        video_codes=np.array([0, 0, 1], np.int32), timestamp=np.array([902.0, 903.0, 15.5]),
        boxes=np.array([[0.0774, 0.1512, 0.2831, 0.811], [np.nan] * 4, [0.1, 0.2, 0.3, 0.4]]),
        action=np.array([80, -1, 12], np.int32), person_id=np.array([1, -1, -1]), score=np.full(n, np.nan),
        n_columns=np.array([8, 2, 7], np.int8), line=np.arange(1, n + 1))
    out = tmp_path / "mem.csv"
    ava.write_csv(table, out)
    assert out.read_text() == ("-5KQ66BBWC4,0902,0.077,0.151,0.283,0.811,80,1\n-5KQ66BBWC4,0903\n"
                               "AbCdEfGhIjK_000010_000020,15.5,0.100,0.200,0.300,0.400,12\n")


def test_write_refuses_video_ids_with_commas(tmp_path):
    table = ava.read_csv(HERE / "excl.csv")
    table.videos = ["a,b"]
    with pytest.raises(ValueError, match="contains a comma"):
        ava.write_csv(table, tmp_path / "x.csv")
    assert not (tmp_path / "x.csv").exists()


def test_keyframe_index():
    assert ava.keyframe_index(902) == 60 and ava.keyframe_index(1798) == 26940
    assert ava.keyframe_index(np.array([900.0, 901.0])).tolist() == [0, 30]


# ------------------------------------------------------------------------------------------------ records

def test_group_persons_by_hand():
    table = ava.read_csv(HERE / "persons.csv")
    group, first = ava.group_persons(table)
    # lines 1,3,4: same box at a/0902; lines 2,7: second box; line 5: same box, other second; line 6: other
    # video; line 8: box differs in the third decimal of y2 -> its own person
    assert group.tolist() == [0, 1, 0, 0, 2, 3, 1, 4]
    assert first.tolist() == [0, 1, 4, 5, 7]


def test_read_records_groups_rows_into_persons():
    records = ava.read_records(HERE / "persons.csv").to_pylist()
    got = [(r["video_id"], r["time_s"], r["frame_index"], (r["x1"], r["y1"], r["x2"], r["y2"]), r["person_id"],
            r["actions"], r["source"]) for r in records]
    assert got == [
        ("aaaaaaaaaaa", 902.0, 60, (0.1, 0.2, 0.3, 0.4), 0, [12, 17, 80], "persons.csv:1"),
        ("aaaaaaaaaaa", 902.0, 60, (0.5, 0.1, 0.9, 0.95), 1, [14, 79], "persons.csv:2"),
        ("aaaaaaaaaaa", 903.0, 90, (0.1, 0.2, 0.3, 0.4), 0, [12], "persons.csv:5"),
        ("bbbbbbbbbbb", 902.0, 60, (0.1, 0.2, 0.3, 0.4), 5, [11], "persons.csv:6"),
        ("aaaaaaaaaaa", 902.0, 60, (0.1, 0.2, 0.3, 0.401), 2, [12], "persons.csv:8"),
    ]
    assert {r["dataset"] for r in records} == {"ava"} and {r["action_vocab"] for r in records} == {"ava80"}
    assert all(r["score"] is None and r["split"] is None for r in records)


def test_read_records_detections_one_per_row():
    records = ava.read_records(HERE / "slowfast_boxes.csv", split="val").to_pylist()
    assert [(r["score"], r["actions"], r["split"], r["person_id"]) for r in records] == [
        (0.995518, [], "val", None), (0.812304, [], "val", None), (0.990021, [], "val", None)]
    det = ava.read_records(HERE / "det.csv")
    assert det.num_rows == 12158 and det.column("actions")[0].as_py() == [1]
    assert det.column("score")[1].as_py() == 0.1586


def test_read_records_folder_uses_newest_version_and_exclusions():
    records = ava.read_records(HERE / "folder").to_pylist()
    got = [(r["split"], r["video_id"], r["time_s"], r["actions"], r["source"]) for r in records]
    # v2.2 wins over v2.1; 0903 is excluded in ava_val_excluded_timestamps_v2.2.csv
    assert got == [
        ("train", "ccccccccccc", 1798.0, [1], "ava_train_v2.2.csv:1"),
        ("val", "aaaaaaaaaaa", 902.0, [12, 80], "ava_val_v2.2.csv:1"),
        ("val", "aaaaaaaaaaa", 904.0, [11], "ava_val_v2.2.csv:4"),
    ]
    assert ava.read_records(HERE / "folder", split="val").num_rows == 2


def test_records_round_trip_through_write_records(tmp_path):
    records = ava.read_records(HERE / "gt.csv")
    out = tmp_path / "ava_val_v2.2.csv"
    ava.write_records(records, out)
    again = ava.read_records(out)
    cols = ["video_id", "time_s", "frame_index", "x1", "y1", "x2", "y2", "person_id", "actions"]
    key = lambda r: (r["video_id"], r["time_s"], r["x1"], r["y1"], r["x2"], r["y2"])
    assert sorted(again.select(cols).to_pylist(), key=key) == sorted(records.select(cols).to_pylist(), key=key)
    assert set(again.column("split").to_pylist()) == {"val"}
    # one row per (person, action), same multiset of rows as the original file
    assert sorted(out.read_text().splitlines()) == sorted((HERE / "gt.csv").read_text().splitlines())


def test_write_records_sorts_like_ava_files(tmp_path):
    out = tmp_path / "x.csv"
    ava.write_records(ava.read_records(HERE / "persons.csv"), out)
    assert out.read_text().splitlines() == [
        "aaaaaaaaaaa,0902,0.100,0.200,0.300,0.400,12,0",
        "aaaaaaaaaaa,0902,0.100,0.200,0.300,0.400,17,0",
        "aaaaaaaaaaa,0902,0.100,0.200,0.300,0.400,80,0",
        "aaaaaaaaaaa,0902,0.100,0.200,0.300,0.401,12,2",
        "aaaaaaaaaaa,0902,0.500,0.100,0.900,0.950,14,1",
        "aaaaaaaaaaa,0902,0.500,0.100,0.900,0.950,79,1",
        "aaaaaaaaaaa,0903,0.100,0.200,0.300,0.400,12,0",
        "bbbbbbbbbbb,0902,0.100,0.200,0.300,0.400,11,5",
    ]


def test_write_records_folder_writes_one_file_per_split(tmp_path):
    ava.write_records(ava.read_records(HERE / "folder"), tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["ava_train_v2.2.csv", "ava_val_v2.2.csv"]
    assert (tmp_path / "out" / "ava_train_v2.2.csv").read_text() == "ccccccccccc,1798,0.000,0.000,1.000,1.000,1,3\n"


def test_validate_folder(tmp_path):
    assert ava.validate(HERE / "folder") == []
    folder = tmp_path / "folder"
    shutil.copytree(HERE / "folder", folder)
    (folder / "ava_val_v2.2.csv").write_text("aaaaaaaaaaa,0902,0.1,0.2,0.3,0.4,12,0\naaaaaaaaaaa,0902,0.1,0.2,0.3\n"
                                             "aaaaaaaaaaa,0903,0.1,0.2,0.3,0.4,99,0\n")
    (folder / "ava_val_excluded_timestamps_v2.2.csv").write_text("aaaaaaaaaaa,0903,1\n")
    (folder / "ava_dense_proposals_val.FAIR.recall_93.9.pkl").write_bytes(pickle.dumps({"k,0902": np.zeros((2, 4))}))
    found = [(p.path.rsplit("/", 1)[-1], p.where, p.reason) for p in ava.validate(folder)]
    assert found == [
        ("ava_dense_proposals_val.FAIR.recall_93.9.pkl", "k,0902", "expected a numeric (N, 5) array, got float64 (2, 4)"),
        ("ava_val_excluded_timestamps_v2.2.csv", 1, "expected 2 fields 'video,second', got 3"),
        ("ava_val_v2.2.csv", 2, "expected 7 or 8 fields (or 2 for a keyframe row), got 5"),
        ("ava_val_v2.2.csv", 3, "action id 99 not in 1..80"),
    ]
    assert ava.validate(tmp_path) == [Problem(str(tmp_path), None, "no AVA annotation CSV (ava_{train,val}_v2.x.csv) in this folder")]


# ------------------------------------------------------------------------------------------------ other files

def test_excluded_round_trip(tmp_path):
    table = ava.read_excluded(HERE / "excl.csv")
    assert ava.keyframe_keys(table).tolist() == ["EyjnSZsO3jr,0921"]
    out = tmp_path / "excl.csv"
    ava.write_excluded([("EyjnSZsO3jr", 921)], out)
    assert out.read_bytes() == (HERE / "excl.csv").read_bytes()
    ava.write_excluded(table, out)
    assert out.read_bytes() == (HERE / "excl.csv").read_bytes()
    with pytest.raises(InputError, match=r"gt.csv:line 1: expected 2 fields"):
        ava.read_excluded(HERE / "gt.csv")


def test_frame_list_round_trip(tmp_path):
    frames = ava.read_frame_list(HERE / "frame_list_train.csv")
    assert len(frames) == 5 and frames.video_id.tolist() == [0, 0, 0, 1, 1]
    assert frames.frame_id.tolist() == [0, 1, 2, 0, 1] and frames.labels.to_pylist() == ['""'] * 5
    assert frames.frame_path[3].as_py() == "1j20qq1JyX4/1j20qq1JyX4_000001.jpg"
    assert frames.original_video_id.to_pylist() == ["-5KQ66BBWC4"] * 3 + ["1j20qq1JyX4"] * 2
    out = tmp_path / "fl.csv"
    ava.write_frame_list(frames, out)
    assert out.read_bytes() == (HERE / "frame_list_train.csv").read_bytes()
    bad = tmp_path / "bad.csv"
    bad.write_text(ava.FRAME_LIST_HEADER + "\nx 0 0 x/x_1.jpg \"\"\nx 0 1 x/x_2.jpg\n")
    with pytest.raises(InputError, match=r"bad.csv:line 3: expected 5 space-separated fields, got 4"):
        ava.read_frame_list(bad)
    bad.write_text(ava.FRAME_LIST_HEADER + "\nx 0 0 x/x_1.jpg \"\"\n\nx 0 2 x/x_3.jpg \"\"\n")
    with pytest.raises(InputError, match=r"bad.csv:line 3: expected 5 space-separated fields, got 0"):
        ava.read_frame_list(bad)
    bad.write_text(ava.FRAME_LIST_HEADER + "\nx 0 zero x/x_1.jpg \"\"\n")
    with pytest.raises(InputError, match=r"bad.csv:line 2: frame_id is not an integer: 'zero'"):
        ava.read_frame_list(bad)


def test_proposals_round_trip(tmp_path):
    proposals = {"_-Z6wFjXtGQ,0902": np.array([[0.202, 0.15, 0.744, 0.985, 0.281325],
                                                [0.076, 0.051, 0.554, 0.975, 0.994488]]),
                 "_-Z6wFjXtGQ,0903": np.zeros((0, 5))}
    path = tmp_path / "p.pkl"
    ava.write_proposals(proposals, path)
    back = ava.read_proposals(path)
    assert list(back) == list(proposals)
    for key in proposals:
        assert back[key].dtype == np.float64 and np.array_equal(back[key], proposals[key])
    path.write_bytes(pickle.dumps(["not", "a", "dict"]))
    with pytest.raises(InputError, match="expected a dict of proposals, got list"):
        ava.read_proposals(path)


def test_label_map_of_the_folder():
    labels = read_label_map(HERE / "folder" / "ava_action_list_v2.2_for_activitynet_2019.pbtxt")
    assert len(labels) == 60 and labels[80] == "watch (a person)" and 2 not in labels


def test_write_records_of_detections(tmp_path):
    out = tmp_path / "boxes.csv"
    ava.write_records(ava.read_records(HERE / "slowfast_boxes.csv"), out)
    assert out.read_text().splitlines() == [
        "1j20qq1JyX4,0902,0.0360,0.0980,0.5500,0.9790,,0.995518",
        "1j20qq1JyX4,0902,0.5120,0.1000,0.9010,0.9500,,0.812304",
        "1j20qq1JyX4,0903,0.0400,0.1010,0.5480,0.9770,,0.990021",
    ]
    det = ava.read_records(HERE / "det.csv")
    ava.write_records(det, out)
    back = ava.read_csv(out)
    original = ava.read_csv(HERE / "det.csv")
    key = lambda t: sorted(zip(t.timestamp, *t.boxes.T, t.action, t.score))
    assert key(back) == key(original)


def test_write_records_needs_boxes(tmp_path):
    records = ava.read_records(HERE / "persons.csv")
    records = records.set_column(records.schema.get_field_index("x1"), "x1", pa.nulls(records.num_rows, pa.float64()))
    with pytest.raises(ValueError, match="record 0 has no time_s or no normalized box"):
        ava.write_records(records, tmp_path / "x.csv")
    assert not (tmp_path / "x.csv").exists()


def test_keyframe_without_actions_becomes_a_two_column_row(tmp_path):
    records = ava.read_records(HERE / "gt2020.csv")
    empty = records.slice(0, 1).set_column(records.schema.get_field_index("actions"), "actions",
                                           pa.array([[]], pa.list_(pa.int32())))
    empty = empty.set_column(empty.schema.get_field_index("time_s"), "time_s", pa.array([921.0]))
    out = tmp_path / "x.csv"
    ava.write_records(empty, out)
    assert out.read_text() == "EyjnSZsO3jr,0921\n"


def test_fast_typed_path_equals_full_parser(tmp_path):
    from partwise.data.ava import read_csv

    good = tmp_path / "det.csv"
    good.write_text("vidA0000000,0902,0.100,0.200,0.300,0.400,12,0.5\n"
                    "vidB0000000,0903,0.000,0.000,1.000,1.000,80,0.25\n"
                    "vidA0000000,0903,0.150,0.200,0.300,0.900,1,0.125\n")
    full, fast = read_csv(good, kind="det"), read_csv(good, kind="det", keep_formats=False)
    assert fast.formats == {} and full.videos == fast.videos
    for name in ("video_codes", "timestamp", "boxes", "action", "person_id", "score", "n_columns", "line"):
        assert np.array_equal(getattr(full, name), getattr(fast, name), equal_nan=True), name
    # malformed files give the same error either way (the fast path defers to the full parser or raises alike)
    for body, fragment in [
        ("vidA0000000,0902,0.1,0.2,0.3,0.4,12,0.5\nvidA0000000,0902,0.1,0.2,1.3,0.4,12,0.5\n", "line 2: x2=1.3 outside [0, 1]"),
        ("vidA0000000,0902,0.1,0.2,0.3,0.4,12,nan\n", "line 1: score is NaN"),
        ("vidA0000000,0902,0.1,0.2,0.3,0.4,81,0.5\n", "line 1: action id 81"),
        ("vidA0000000,0902,0.1,0.2,0.3,0.4,12,0.5\nvidA0000000,0902,0.1,0.2,0.3\n", "line 2: expected 7 or 8 fields"),
        ("vidA0000000,0902,0.1,0.2,0.3,0.4,12,x\n", "line 1: score is not a number"),
    ]:
        bad = tmp_path / "bad.csv"
        bad.write_text(body)
        errors = []
        for keep in (True, False):
            with pytest.raises(InputError) as err:
                read_csv(bad, kind="det", keep_formats=keep)
            errors.append(str(err.value))
        assert errors[0] == errors[1] and fragment in errors[0], errors
