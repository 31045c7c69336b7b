"""AVA-Kinetics variant (partwise.data.ava_kinetics)."""
import numpy as np
import pytest

from partwise.data import ava, ava_kinetics as ak
from partwise.data.records import PERSON_SCHEMA
from partwise.errors import InputError

from tests.conftest import FIXTURES

HERE = FIXTURES / "ava_formats"
MIXED = HERE / "ava_kinetics_mixed.csv"


def test_parse_video_id():
    assert ak.parse_video_id("-5KQ66BBWC4") == ("-5KQ66BBWC4", 900.0, 1800.0)
    assert ak.parse_video_id("x_y-Zz01234_000100_000110") == ("x_y-Zz01234", 100.0, 110.0)
    ytid, start, end = ak.parse_video_id("plain_kinetics")
    assert ytid == "plain_kinetics" and np.isnan(start) and np.isnan(end)


def test_keyframe_frame_index_rule():
    assert ak.keyframe_frame_index("-5KQ66BBWC4", 902) == 60
    assert ak.keyframe_frame_index("AbCdEfGhIjK_000010_000020", 15) == 150
    assert ak.keyframe_frame_index("AbCdEfGhIjK_000010_000020", 16.5) == 195
    assert ak.keyframe_frame_index("no_window", 3) is None


def test_proposal_key():
    assert ak.proposal_key("-5KQ66BBWC4", 902) == "-5KQ66BBWC4,0902"
    assert ak.proposal_key("AbCdEfGhIjK_000010_000020", 15.7) == "AbCdEfGhIjK,0015"


def test_mixed_file_reads_and_round_trips(tmp_path):
    table = ava.read_csv(MIXED)
    assert table.n_columns.tolist() == [8, 8, 2, 7, 7, 7, 7, 2]
    assert table.timestamp.tolist() == [902, 902, 903, 15, 15, 15, 16.5, 104]
    assert table.person_id.tolist() == [1, 1, -1, -1, -1, -1, -1, -1]
    assert ak.frame_indices(table).tolist() == [60, 60, 90, 150, 150, 150, 195, 120]
    out = tmp_path / "m.csv"
    ava.write_csv(table, out)
    assert out.read_bytes() == MIXED.read_bytes()


def test_read_records():
    records = ak.read_records(MIXED, split="train")
    assert records.schema == PERSON_SCHEMA
    got = [(r["video_id"], r["time_s"], r["frame_index"], r["person_id"], r["actions"], r["source"])
           for r in records.to_pylist()]
    assert got == [
        ("-5KQ66BBWC4", 902.0, 60, 1, [12, 80], "ava_kinetics_mixed.csv:1"),
        ("AbCdEfGhIjK_000010_000020", 15.0, 150, None, [12, 17], "ava_kinetics_mixed.csv:4"),
        ("AbCdEfGhIjK_000010_000020", 15.0, 150, None, [79], "ava_kinetics_mixed.csv:6"),
        ("AbCdEfGhIjK_000010_000020", 16.5, 195, None, [17], "ava_kinetics_mixed.csv:7"),
    ]
    assert set(records.column("dataset").to_pylist()) == {"ava-kinetics"}
    assert set(records.column("split").to_pylist()) == {"train"}


def test_write_records_uses_7_columns_for_kinetics(tmp_path):
    out = tmp_path / "out.csv"
    ak.write_records(ak.read_records(MIXED), out)
    assert out.read_text().splitlines() == [
        "-5KQ66BBWC4,0902,0.077,0.151,0.283,0.811,12,1",
        "-5KQ66BBWC4,0902,0.077,0.151,0.283,0.811,80,1",
        "AbCdEfGhIjK_000010_000020,15,0.100,0.200,0.300,0.400,12",
        "AbCdEfGhIjK_000010_000020,15,0.100,0.200,0.300,0.400,17",
        "AbCdEfGhIjK_000010_000020,15,0.500,0.200,0.700,0.900,79",
        "AbCdEfGhIjK_000010_000020,16.5,0.100,0.200,0.300,0.400,17",
    ]
    again = ak.read_records(out)
    cols = ["video_id", "time_s", "frame_index", "person_id", "actions", "x1", "y1", "x2", "y2"]
    assert again.select(cols).to_pylist() == ak.read_records(MIXED).select(cols).to_pylist()


def test_folder_and_validate(tmp_path):
    (tmp_path / "ava_train_v2.2.csv").write_text("-5KQ66BBWC4,0902,0.077,0.151,0.283,0.811,80,1\n")
    (tmp_path / "kinetics_train_v1.0.csv").write_text("AbCdEfGhIjK,15.25,0.1,0.2,0.3,0.4,12\n")
    records = ak.read_records(tmp_path)
    got = [(r["video_id"], r["time_s"], r["frame_index"], r["split"]) for r in records.to_pylist()]
    # an original Kinetics row names the bare YouTube id: the clip window and so the frame index are unknown
    assert got == [("-5KQ66BBWC4", 902.0, 60, "train"), ("AbCdEfGhIjK", 15.25, None, "train")]
    assert ak.validate(tmp_path) == []
    (tmp_path / "kinetics_train_v1.0.csv").write_text("AbCdEfGhIjK,15.25,0.1,0.2,0.3\nAbCdEfGhIjK,16,0.1,0.2,0.3,0.4,0\n")
    problems = ak.validate(tmp_path)
    assert [(p.where, p.reason) for p in problems] == [
        (1, "expected 7 or 8 fields (or 2 for a keyframe row), got 5"), (2, "action id 0 not in 1..80")]
    with pytest.raises(InputError, match=r"kinetics_train_v1.0.csv:line 1: expected 7 or 8 fields"):
        ak.read_records(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no AVA-Kinetics annotation CSV"):
        ak.read_records(empty)


def test_folder_round_trip(tmp_path):
    records = ak.read_records(MIXED, split="val")
    ak.write_records(records, tmp_path / "out")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["ava_val_v2.2.csv"]
    again = ak.read_records(tmp_path / "out")
    cols = ["dataset", "split", "video_id", "time_s", "frame_index", "person_id", "actions", "x1", "y1", "x2", "y2"]
    assert again.select(cols).to_pylist() == records.select(cols).to_pylist()
