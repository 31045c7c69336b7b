"""Kinetics-TPS format: the per-frame tree, list files, the evaluator's JSON files, records, malformed input."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from partwise.data import kinetics_tps as tps
from partwise.data.kinetics_tps import ingest as tps_ingest
from partwise.data.records import PERSON_SCHEMA
from partwise.errors import InputError
from partwise.eval import tps as tps_eval

VID_A = "Y0-KQvJjKAw_000057_000067"
VID_B = "abcdEFGhijk_000010_000020"


@pytest.fixture
def tree(fixtures_dir) -> Path:
    return fixtures_dir / "kinetics_tps"


@pytest.fixture
def tree_copy(tree, tmp_path) -> Path:
    dst = tmp_path / "Kinetics-TPS"
    shutil.copytree(tree, dst)
    return dst


def frame_path(root: Path, label: str, video: str, index: int) -> Path:
    return root / "train_annotations" / label / video / video / f"img_{index:05d}.json"


def python_path_table(root, **kwargs) -> pa.Table:
    """The same records through the per-file Python decoder only (the fallback of the Arrow fast path)."""
    videos = list(tps.iter_videos(root))
    blobs = [tps._read_bytes(v.files) for v in videos]
    return tps._python_chunk(videos, blobs, str(root), kwargs.get("frame_sizes"), kwargs.get("fps"))


# ---------------------------------------------------------------------------------------------------------------
# Records


def test_records_decoded_as_hand_checked(tree):
    table = tps.read_records(tree)
    assert table.schema == PERSON_SCHEMA
    rows = table.to_pylist()
    # 4 + 2 humans; the frame without humans (A img_00011) has no record.
    assert [(r["video_id"], r["frame_index"]) for r in rows] == [
        (VID_A, 1), (VID_A, 1), (VID_A, 2), (VID_A, 6), (VID_B, 1), (VID_B, 6)]
    first = rows[0]
    assert first["dataset"] == "kinetics-tps" and first["split"] == "train"
    assert first["video_label"] == "Belly_dancing"  # folder spelling kept as listed
    assert (first["px1"], first["py1"], first["px2"], first["py2"]) == (275, 91, 400, 360)
    assert first["x1"] is None and first["width"] is None and first["time_s"] is None
    assert first["person_id"] == 1
    assert first["pasta"] == ["left_arm: bend", "right_leg: stand"]  # parts ordered by name
    assert first["pasta_vocab"] == "kinetics-tps"
    assert [(p["part"], p["state"], p["px1"], p["py1"], p["px2"], p["py2"]) for p in first["part_boxes"]] == [
        ("left_arm", "bend", 280, 120, 310, 200), ("right_leg", "stand", 300, 250, 340, 330)]
    # Frame-level objects go with every human of the frame.
    for row in rows[:2]:
        assert [(o["class_name"], o["object_id"], o["px1"], o["py2"]) for o in row["objects"]] == [("scarf", 1, 500, 330)]
    assert rows[2]["objects"] == []
    assert rows[3]["px1"] == 280.5 and rows[3]["py1"] == 95.25
    assert rows[4]["person_id"] is None and rows[4]["video_label"] == "hopscotch"
    assert rows[5]["pasta"] == [] and rows[5]["part_boxes"] == []
    assert first["source"] == f"train_annotations/Belly_dancing/{VID_A}/{VID_A}/img_00001.json:humans[0]"
    assert rows[1]["source"].endswith("img_00001.json:humans[1]")


def test_frame_sizes_and_fps_fill_normalized_boxes_and_time(tree):
    table = tps.read_records(tree, frame_sizes={VID_A: (500, 400)}, fps={VID_A: 25.0})
    first, hop = table.to_pylist()[0], table.to_pylist()[4]
    assert (first["width"], first["height"]) == (500, 400)
    assert first["x1"] == pytest.approx(275 / 500) and first["y2"] == pytest.approx(360 / 400)
    assert first["part_boxes"][0]["x1"] == pytest.approx(280 / 500)
    assert first["objects"][0]["y1"] == pytest.approx(300 / 400)
    assert first["time_s"] == 0.0 and table.to_pylist()[3]["time_s"] == pytest.approx(5 / 25)
    assert hop["width"] is None and hop["x1"] is None and hop["time_s"] is None
    both = tps.read_records(tree, fps=30)
    assert both.column("time_s").to_pylist()[3] == pytest.approx(5 / 30)


def test_fast_path_equals_python_path(tree, tmp_path):
    assert tps.read_records(tree).equals(python_path_table(tree))
    # Pretty-printed, non-ASCII and CRLF files go through the fast path with the same result.
    root = tmp_path / "t"
    frames = {"img_00001.json": {"humans": [{"box": [1, 2, 3, 4], "parts": {"head": {"box": [1, 2, 2, 3],
                                                                                      "verb": "h\u00e9"}}}]},
              "img_00002.json": {"humans": [{"box": [1.5, 2, 3, 4], "number": 7, "parts": {}}]}}
    tps.write_tree({"train": {"Lunge": {"v1": frames}}}, root)
    path = root / "train_annotations" / "Lunge" / "v1" / "v1" / "img_00001.json"
    path.write_bytes(json.dumps(frames["img_00001.json"], indent=3, ensure_ascii=False).replace("\n", "\r\n").encode())
    fast = tps.read_records(root)
    assert fast.equals(python_path_table(root))
    assert fast.column("pasta").to_pylist() == [["head: h\u00e9"], []]


def test_schema_of_one_chunk_is_reused_and_redone_when_it_does_not_fit(tree, monkeypatch, capsys):
    # Chunks of one video: B (ints, no objects) is parsed with A's discovered schema (floats, objects) and the
    # other way round; both must give the same records as one chunk.
    whole = tps.read_records(tree)
    monkeypatch.setattr(tps_ingest, "FILES_PER_CHUNK", 1)
    monkeypatch.setattr(tps_ingest, "FIRST_CHUNK_FILES", 1)
    monkeypatch.setenv("PARTWISE_PROGRESS_INTERVAL", "0")  # the plain (non-terminal) bar: a line per update
    assert tps.read_records(tree, progress=True).equals(whole)
    # the walk feeds the chunks, so the bar counts files without a known total
    assert "6file" in capsys.readouterr().err.replace(" ", "")


def test_a_chunk_that_does_not_fit_the_discovered_schema_is_inferred_again():
    first = tps._parse_lines(b'{"humans": [{"box": [1, 2, 3, 4], "parts": {}}]}', None)
    other = tps._parse_lines(b'{"humans": [{"box": [1, 2, 3, 4], "parts": {}, "number": "x"}]}', first.schema)
    assert other.to_pylist() == [{"humans": [{"box": [1, 2, 3, 4], "parts": {}, "number": "x"}]}]


def test_worker_processes_give_the_same_table(tree, monkeypatch):
    monkeypatch.setattr(tps_ingest, "PARALLEL_MIN_FILES", 1)
    assert tps.read_records(tree, workers=2).equals(tps.read_records(tree))


def test_single_frame_file_and_split_folder(tree, tmp_path):
    table = tps.read_records(frame_path(tree, "hopscotch", VID_B, 1))
    assert table.num_rows == 1 and table.column("video_label")[0].as_py() == "hopscotch"
    assert table.column("video_id")[0].as_py() == VID_B
    # An annotation folder given directly: the split comes from its name or the argument.
    assert set(tps.read_records(tree / "train_annotations").column("split").to_pylist()) == {"train"}
    assert set(tps.read_records(tree / "train_annotations", split="val").column("split").to_pylist()) == {"val"}


def test_records_round_trip_through_the_tree(tree, tmp_path):
    table = tps.read_records(tree)
    out = tmp_path / "written"
    tps.write_records(table, out)
    again = tps.read_records(out)
    assert again.equals(table)
    # List files are derived from the names present.
    assert (out / "list" / "body_part.txt").read_text().split() == ["head", "hip", "left_arm", "left_foot",
                                                                    "right_foot", "right_leg"]
    assert (out / "list" / "object.txt").read_text().split() == ["scarf"]
    # Frame-level objects are written once per frame, as read.
    frame = json.loads(frame_path(out, "Belly_dancing", VID_A, 1).read_text())
    assert frame["objects"] == [{"box": [500, 300, 540, 330], "name": "scarf", "number": 1}]
    assert "objects" not in frame["humans"][0]


def test_write_records_needs_the_class_and_is_atomic(tree, tmp_path):
    table = tps.read_records(tree)
    labels = table.column("video_label").to_pylist()
    labels[-1] = None
    broken = table.set_column(table.schema.get_field_index("video_label"), "video_label", pa.array(labels))
    with pytest.raises(InputError, match="video_label"):
        tps.write_records(broken, tmp_path / "out")
    assert not (tmp_path / "out" / "train_annotations").exists()


# ---------------------------------------------------------------------------------------------------------------
# Format-level round trips


def test_tree_round_trip_keeps_every_file(tree, tmp_path):
    data = tps.read_tree(tree)
    assert sorted(data["train"]) == ["Belly_dancing", "hopscotch"]
    assert data["train"]["Belly_dancing"][VID_A]["img_00011.json"] == {"humans": []}
    assert data["train"]["Belly_dancing"][VID_A]["img_00002.json"]["comment"] == "unknown keys are tolerated"
    tps.write_tree(data, tmp_path / "copy")
    for src in sorted((tree / "train_annotations").rglob("*.json")):
        dst = tmp_path / "copy" / src.relative_to(tree)
        assert json.loads(dst.read_text()) == json.loads(src.read_text())
    assert tps.read_tree(tmp_path / "copy") == data
    with pytest.raises(FileExistsError):
        tps.write_tree(data, tmp_path / "copy")


def test_evaluator_files_from_tree_and_records_and_back(tree, tmp_path):
    gt_parts, gt_videos = tps.gt_from_tree(tree)
    # Every 5th frame from img_00001: A has 1, 6, 11 (2 is not sampled); B has 1 and 6.
    assert list(gt_parts[VID_A]) == ["img_00001.json", "img_00006.json", "img_00011.json"]
    assert list(gt_parts[VID_B]) == ["img_00001.json", "img_00006.json"]
    assert gt_parts[VID_A]["img_00001.json"]["humans"][1] == {
        "box": [10, 20, 110, 220], "parts": {"head": {"box": [40, 25, 70, 60], "verb": "none"}}}
    assert gt_videos == {VID_A: "Belly_dancing", VID_B: "hopscotch"}

    for name, data in (("gt_part_result.json", gt_parts), ("gt_vid_result.json", gt_videos)):
        tps.write_json(data, tmp_path / name)
    assert tps.read_part_result(tmp_path / "gt_part_result.json") == gt_parts
    assert tps.read_vid_result(tmp_path / "gt_vid_result.json") == gt_videos

    table = tps.read_records(tree)
    from_records = tps.part_result_from_records(table, stride=5)
    # Same content, except frames without humans (no records).
    expected = {v: {f: x for f, x in frames.items() if x["humans"]} for v, frames in gt_parts.items()}
    assert from_records == expected
    assert tps.vid_result_from_records(table) == gt_videos

    pred = tps.part_result_from_records(table, pred=True, stride=5)
    first = pred[VID_A]["img_00001.json"]["humans"][0]
    assert first["number"] == 1 and first["box"] == [275, 91, 400, 360]
    assert first["parts"]["left_arm"] == {"number": 1, "box": [[280, 120, 310, 200]], "verb": ["bend"],
                                          "name": "left_arm"}
    tps.write_json(pred, tmp_path / "pred_part_result.json")
    tps.write_json(gt_videos, tmp_path / "pred_vid_result.json")
    assert tps.read_part_result(tmp_path / "pred_part_result.json") == pred

    # The records behind a prediction file are the sampled GT records (first proposal per part).
    back = tps.records_from_part_result(pred, gt_videos, split="train")
    keep = [(i - 1) % 5 == 0 for i in table.column("frame_index").to_pylist()]
    sampled = table.filter(pa.array(keep))
    for column in ("video_id", "frame_index", "px1", "py2", "pasta", "video_label"):
        assert back.column(column).to_pylist() == sampled.column(column).to_pylist(), column
    # The submission layout numbers humans without an id by position.
    assert back.column("person_id").to_pylist() == [1, 2, 1, 1, 1]

    # The GT scored against itself: every counted frame is perfect, B img_00006 has no parts (skipped).
    result = tps_eval.evaluate(gt_parts, gt_videos, pred, gt_videos)
    assert result.value == pytest.approx(0.9999, abs=1e-12)


# ---------------------------------------------------------------------------------------------------------------
# list/ files and frame counts


def test_lists_as_vocabularies_and_round_trip(tree, tmp_path):
    vocab = tps.read_lists(tree)
    assert len(vocab.parts) == 10 and vocab.parts.names[2] == "left_arm" and vocab.parts.ids[0] == 0
    assert vocab.states.names[:3] == ("bend", "unbend", "stand")  # leading ids are tolerated and kept
    assert vocab.states.id_of("bend") == 1 and vocab.states.name_of(8) == "others"
    assert vocab.objects.names == ("scarf", "rope", "none")
    tps.write_lists(vocab, tmp_path / "list")
    assert tps.read_lists(tmp_path).parts == vocab.parts
    assert tps.read_lists(tmp_path).states.names == vocab.states.names
    (tmp_path / "list" / "object.txt").write_text("a\nb\na\n")
    with pytest.raises(InputError, match=r"object.txt:line 3: duplicate name 'a'"):
        tps.read_lists(tmp_path)


def test_frame_counts_reader_is_tolerant_and_round_trips(tree, tmp_path):
    assert tps.read_frame_counts(tree / "list" / "video_train_flist.csv") == {VID_A: 11, VID_B: 6}
    variants = ["v1 300\nv2 151\n", "train_videos/lunge/v1.mp4,300\nv2\t151\n", "name frames\nv1,300\nv2,151\n"]
    for k, text in enumerate(variants):
        (tmp_path / f"f{k}.csv").write_text(text)
        assert tps.read_frame_counts(tmp_path / f"f{k}.csv") == {"v1": 300, "v2": 151}
    tps.write_frame_counts({"v1": 300, "v2": 151}, tmp_path / "out.csv")
    assert tps.read_frame_counts(tmp_path / "out.csv") == {"v1": 300, "v2": 151}
    (tmp_path / "bad.csv").write_text("v1,300\nv2,many\n")
    with pytest.raises(InputError, match=r"bad.csv:line 2"):
        tps.read_frame_counts(tmp_path / "bad.csv")


# ---------------------------------------------------------------------------------------------------------------
# Malformed input


MALFORMED = [
    ('{"humans": [', r"img_00002.json:line 1: invalid JSON"),
    ("", r"img_00002.json: empty file"),
    ('{"people": []}', r"img_00002.json:humans: missing key"),
    ('{"humans": [{"parts": {}}]}', r"img_00002.json:humans\[0\].box: missing key"),
    ('{"humans": [{"box": [1, 2, 3, 4]}]}', r"img_00002.json:humans\[0\].parts: missing key"),
    ('{"humans": [{"box": [1, 2, 3, 4], "parts": {"head": {"box": [1, 2, 3, 4]}}}]}',
     r"img_00002.json:humans\[0\].parts.head.verb: missing key"),
    ('{"humans": [{"box": [5, 2, 3, 4], "parts": {}}]}', r"humans\[0\].box: box \[5, 2, 3, 4\] has x2 < x1"),
    ('{"humans": [{"box": [1, 2, 3, 4], "parts": {"hip": {"box": [1, 9, 3, 4], "verb": "x"}}}]}',
     r"humans\[0\].parts.hip.box: .* x2 < x1 or y2 < y1"),
    ('{"humans": [{"box": [1, 2, 3, 4], "parts": {"head": {"box": [1, 2, 3, 4], "verb": 3}}}]}',
     r"humans\[0\].parts.head.verb: must be a string"),
    ('{"humans": [{"box": [1, 2, 3, 4], "parts": {"head": {"box": [1, 2, 3, 4], "verb": "a\\ud800"}}}]}',
     r"humans\[0\].parts.head.verb: not valid Unicode text \(lone surrogate '\\ud800' at character 1\)"),
    ('{"humans": [{"box": [1, 2, 3, 4], "parts": {"\\udfff": {"box": [1, 2, 3, 4], "verb": "x"}}}]}',
     r"humans\[0\].parts.'\\udfff': part name not valid Unicode text"),
    ('{"humans": [{"box": [1, 2, 3, 4], "parts": {}, "objects": [{"box": [1, 2, 3, 4], "name": "\\ud800"}]}]}',
     r"humans\[0\].objects\[0\].name: not valid Unicode text"),
    ('{"humans": [{"box": "1 2 3 4", "parts": {}}]}', r"humans\[0\].box: box must be a list"),
    ('{"humans": [{"box": [1, 2, 3], "parts": {}}]}', r"humans\[0\].box: box must have 4 numbers"),
    ('{"humans": [{"box": [1, "2", 3, 4], "parts": {}}]}', r"humans\[0\].box: box values must be numbers"),
    ('{"humans": [{"box": [1, true, 3, 4], "parts": {}}]}', r"humans\[0\].box: box values must be numbers"),
    ('{"humans": [{"box": [1, 2, 3, 4], "parts": []}]}', r"humans\[0\].parts: must be an object"),
    ('{"humans": {"box": [1, 2, 3, 4]}}', r"img_00002.json:humans: must be a list"),
    ('[{"humans": []}]', r"img_00002.json: top level must be a JSON object"),
    ('{"humans": [{"number": "one", "box": [1, 2, 3, 4], "parts": {}}]}', r"humans\[0\].number: must be an integer"),
    ('{"humans": [], "objects": [{"name": "rope"}]}', r"img_00002.json:objects\[0\].box: missing key"),
    ('{"humans": []} {"humans": []}', r"img_00002.json:line 1: invalid JSON: Extra data"),
]


@pytest.mark.parametrize("text, message", MALFORMED)
def test_malformed_frame_names_file_and_key(tree_copy, text, message):
    frame_path(tree_copy, "Belly_dancing", VID_A, 2).write_text(text)
    with pytest.raises(InputError, match=message):
        tps.read_records(tree_copy)
    problems = tps.validate(tree_copy)
    assert len(problems) == 1 and problems[0].path.endswith("img_00002.json")


def test_a_key_not_utf8_names_the_file(tree_copy):
    # Arrow's reader takes a non-UTF-8 key and fails only on reading the field name: the chunk is checked first
    frame_path(tree_copy, "Belly_dancing", VID_A, 2).write_bytes(b'{"hum\xedans": []}')
    with pytest.raises(InputError, match=r"img_00002.json: not UTF-8"):
        tps.read_records(tree_copy)
    problems = tps.validate(tree_copy)
    assert len(problems) == 1 and problems[0].path.endswith("img_00002.json")


@pytest.mark.parametrize("link", ["gone.txt", "body_part.txt"])  # dangling, a loop
def test_validate_reports_a_broken_list_file_link(tree_copy, link):
    path = tree_copy / "list" / "body_part.txt"
    path.unlink(missing_ok=True)
    path.symlink_to(link)
    problems = tps.validate(tree_copy)
    assert [(Path(p.path).name, p.reason.split(":")[0]) for p in problems] == [("body_part.txt", "cannot read")]


def test_a_truncated_file_cannot_borrow_from_its_neighbour(tree_copy):
    # Joined, these two files would read as one valid frame list; each alone is invalid.
    frame_path(tree_copy, "Belly_dancing", VID_A, 1).write_text('{"humans": [{"box": [1, 2, 3, 4], "parts": {}}')
    frame_path(tree_copy, "Belly_dancing", VID_A, 2).write_text('{"box": [1, 2, 3, 4], "parts": {}}]}')
    with pytest.raises(InputError, match="img_00001.json:line 1: invalid JSON"):
        tps.read_records(tree_copy)


def test_validate_lists_every_problem_in_a_tree(tree_copy):
    frame_path(tree_copy, "Belly_dancing", VID_A, 1).write_text("")
    frame_path(tree_copy, "Belly_dancing", VID_A, 6).write_text(
        '{"humans": [{"box": [1, 2, 3, 4], "parts": {"hip": {"box": [1, 2, 3, 4]}, "head": {"verb": "x"}}},'
        ' {"parts": {}}]}')
    frame_path(tree_copy, "hopscotch", VID_B, 6).write_text('{"humans": [{"box": [9, 2, 3, 4], "parts": {}}]}')
    (frame_path(tree_copy, "hopscotch", VID_B, 1).parent / "notes.json").write_text("{}")
    (tree_copy / "list" / "part_stat.txt").write_text("a\na\n")
    found = {(Path(p.path).name, p.where) for p in tps.validate(tree_copy)}
    assert found == {
        ("img_00001.json", None),
        ("img_00006.json", "humans[0].parts.hip.verb"),
        ("img_00006.json", "humans[0].parts.head.box"),
        ("img_00006.json", "humans[1].box"),
        ("img_00006.json", "humans[0].box"),
        ("notes.json", None),
        ("part_stat.txt", 2),
    }
    assert tps.validate(tree_copy / "nowhere")[0].reason == "does not exist"


def test_validate_of_a_tree_checks_the_evaluator_files_beside_it(tree_copy, fixtures_dir):
    """gt_part_result.json / *_vid_result.json next to the annotation folders are checked too (ingest does not read
    them: the per-frame files are its input)."""
    base = fixtures_dir / "tps_eval_small" / "gt"
    shutil.copy(base / "gt_part_result.json", tree_copy / "gt_part_result.json")
    shutil.copy(base / "gt_vid_result.json", tree_copy / "gt_vid_result.json")
    assert tps.validate(tree_copy) == []
    (tree_copy / "gt_vid_result.json").write_text('{"v000_670789_805002": 7}')
    (tree_copy / "gt_part_result.json").unlink()
    (tree_copy / "gt_part_result.json").mkdir()
    found = [(Path(p.path).name, p.reason.split(":")[0]) for p in tps.validate(tree_copy)]
    assert [name for name, _ in found] == ["gt_part_result.json", "gt_vid_result.json"]
    assert found[0][1] == "cannot read"
    assert tps.read_records(tree_copy).num_rows > 0


@pytest.mark.parametrize("name", ["[]", "10000000000000000000", "{}"])
def test_an_object_name_that_is_not_text_names_its_file_and_key(tree_copy, name):
    """A human-level object named by a list or a 20-digit number: the error names that file and key (it named the
    chunk's first file)."""
    path = frame_path(tree_copy, "hopscotch", VID_B, 6)
    path.write_text('{"humans": [{"box": [1, 2, 3, 4], "parts": {"hip": {"box": [1, 2, 3, 4], "verb": "x"}},'
                    ' "objects": [{"box": [1, 1, 2, 2], "name": ' + name + '}]}]}')
    with pytest.raises(InputError) as err:
        tps.read_records(tree_copy)
    assert err.value.problem.path == str(path) and err.value.problem.where == "humans[0].objects[0].name"
    assert "must be a string" in str(err.value)
    assert [(p.path, p.where) for p in tps.validate(tree_copy)] == [(str(path), "humans[0].objects[0].name")]


def test_frame_objects_named_under_different_keys_keep_every_name(tree_copy):
    """One frame names its object under "name", the next under "class": each object keeps its own name (the Arrow
    path took the chunk's first name column and left the other object's name empty)."""
    for index, (key, value) in enumerate([("name", "ball"), ("class", "rope")], 1):
        frame_path(tree_copy, "hopscotch", VID_B, index).write_text(
            '{"humans": [{"box": [1, 2, 30, 40], "parts": {"hip": {"box": [1, 2, 3, 4], "verb": "x"}}}],'
            ' "objects": [{"box": [1, 1, 2, 2], "' + key + '": "' + value + '"}]}')
    rows = [r for r in tps.read_records(tree_copy).to_pylist() if r["video_id"] == VID_B and r["frame_index"] <= 2]
    assert sorted((r["frame_index"], [o["class_name"] for o in r["objects"]]) for r in rows) == [
        (1, ["ball"]), (2, ["rope"])]


def test_validate_clean_inputs_and_evaluator_files(tree, fixtures_dir):
    assert tps.validate(tree) == []
    base = fixtures_dir / "tps_eval_small"
    for path in (base / "gt" / "gt_part_result.json", base / "pred" / "pred_part_result.json",
                 base / "gt" / "gt_vid_result.json"):
        assert tps.validate(path) == []


def test_records_of_a_prediction_file_name_an_inverted_box(fixtures_dir):
    path = fixtures_dir / "tps_eval_small" / "pred" / "pred_part_result.json"
    # The scorer accepts inverted proposals (IoU -1); records cannot hold them.
    with pytest.raises(InputError, match=r"pred_part_result.json:v000_670789_805002.img_00001.json.humans\[0\]"
                                         r".parts.head.box\[0\]: box \[488, 391, 486, 418\] has x2 < x1"):
        tps.read_records(path)
    gt_path = fixtures_dir / "tps_eval_small" / "gt" / "gt_part_result.json"
    gt = tps.read_records(gt_path)
    raw = json.loads(gt_path.read_text())
    assert gt.num_rows == sum(len(f["humans"]) for frames in raw.values() for f in frames.values())
    assert gt.column("pasta").to_pylist()[0] == sorted(
        f"{p}: {v['verb']}" for p, v in raw[next(iter(raw))]["img_00001.json"]["humans"][0]["parts"].items())
    assert set(gt.column("split").to_pylist()) == {"test"}


def test_malformed_evaluator_files(tmp_path):
    gt = {"v1": {"img_00001.json": {"humans": [{"box": [1, 2, 3, 4], "parts": {"head": {"box": [1, 2, 3, 4]}}}]}}}
    (tmp_path / "gt_part_result.json").write_text(json.dumps(gt))
    with pytest.raises(InputError, match=r"gt_part_result.json:v1.img_00001.json.humans\[0\].parts.head.verb"):
        tps.read_part_result(tmp_path / "gt_part_result.json")
    pred = {"v1": {"img_00001.json": {"humans": [{"box": [1, 2, 3, 4], "parts": {
        "head": {"box": [[1, 2, 3, 4], [1, 2, 3, 4]], "verb": ["x"]}}}]}}}
    (tmp_path / "pred_part_result.json").write_text(json.dumps(pred))
    with pytest.raises(InputError, match=r"pred_part_result.json:v1.img_00001.json.humans\[0\].parts.head: 2 boxes"):
        tps.read_part_result(tmp_path / "pred_part_result.json")
    (tmp_path / "pred_vid_result.json").write_text('{"v1": 3}')
    with pytest.raises(InputError, match=r"pred_vid_result.json:v1: class must be a string"):
        tps.read_vid_result(tmp_path / "pred_vid_result.json")
    (tmp_path / "x.json").write_text('{"v1": ')
    with pytest.raises(InputError, match=r"x.json:line 1: invalid JSON"):
        tps.read_vid_result(tmp_path / "x.json")


def test_tree_layout_discovery(tmp_path):
    # Frames directly in <class>/<video>/ (no doubled folder) are read too; hidden folders are skipped.
    folder = tmp_path / "ann" / "PUSH_UP" / "v9"
    folder.mkdir(parents=True)
    (folder / "img_00010.json").write_text('{"humans": [{"box": [0, 0, 1, 1], "parts": {}}]}')
    (folder / "img_00002.json").write_text('{"humans": [{"box": [0, 0, 1, 1], "parts": {}}]}')
    (tmp_path / "ann" / ".cache").mkdir()
    table = tps.read_records(tmp_path / "ann")
    assert table.column("frame_index").to_pylist() == [2, 10]
    assert table.column("video_label").to_pylist() == ["PUSH_UP", "PUSH_UP"]
    assert np.all(np.isnan(np.asarray(table.column("x1").to_pylist(), dtype=float)))


def test_objects_stay_with_their_human_through_a_round_trip(tmp_path):
    from partwise.data import kinetics_tps
    from partwise.data.records import ObjectBox, PartBox, PersonRecord, records_to_table

    def person(number, objects):
        return PersonRecord(dataset="kinetics-tps", split="train", video_id="vidA", frame_index=1, person_id=number,
                            px1=10.0 * number, py1=0.0, px2=10.0 * number + 5, py2=20.0, video_label="capoeira",
                            part_boxes=[PartBox("head", px1=10.0 * number, py1=0.0, px2=10.0 * number + 2, py2=2.0, state="none")],
                            objects=objects)

    ball = ObjectBox(class_name="ball", object_id=1, px1=1.0, py1=1.0, px2=3.0, py2=3.0)
    table = records_to_table([person(1, [ball]), person(2, []), person(3, [])])
    kinetics_tps.write_records(table, tmp_path / "tps")
    back = sorted(kinetics_tps.read_records(tmp_path / "tps").to_pylist(), key=lambda r: r["person_id"])
    assert [[o["class_name"] for o in r["objects"]] for r in back] == [["ball"], [], []]


def test_a_huge_integer_beside_floats_is_read_alike_by_validate_and_ingest(tree_copy):
    # found by the fuzz suite (seed 1): Arrow's JSON reader takes -10^18 as float64, the Python path refused it
    path = frame_path(tree_copy, "Belly_dancing", VID_A, 2)
    frame = json.loads(path.read_text())
    frame["humans"][0]["parts"][next(iter(frame["humans"][0]["parts"]))]["box"][0] = -10**18
    frame["humans"][0]["box"][0] = 1.5
    path.write_text(json.dumps(frame))
    assert tps.validate(tree_copy) == []
    table = tps.read_records(tree_copy)
    boxes = [p["px1"] for parts in table.column("part_boxes").to_pylist() for p in parts]
    assert -1e18 in boxes

