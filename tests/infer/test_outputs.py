import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from partwise import vocab
from partwise.infer import outputs, render


def _row(video_id="vidA", time_s=902.0, frame_index=60, track_id=3, with_model=True, seed=0):
    rng = np.random.default_rng(seed)
    parts = [{"part": name, "box_px": [10.0 + i, 20.0, 30.0 + i, 40.0], "state": "bend" if i % 2 else None}
             for i, name in enumerate(vocab.BODY_PARTS)]
    return {
        "video_id": video_id, "time_s": time_s, "frame_index": frame_index, "width": 320, "height": 240,
        "box_px": [32.0, 24.0, 96.0, 216.0], "score": 0.95, "track_id": track_id,
        "keypoints": rng.uniform(0, 100, (17, 3)).tolist(), "kinematic": ["left_arm: bend", "hip: stand"],
        "pasta": ["hand: hold", "foot: stand on"] if with_model else [],
        "pasta_scores": [0.9, 0.8] if with_model else [],
        "pasta_probs": rng.uniform(0, 1, 87).tolist() if with_model else None,
        "actions": [12, 17] if with_model else [],
        "action_scores": rng.uniform(0, 1, 80).tolist() if with_model else None,
        "activity_vector": rng.normal(size=16).tolist() if with_model else None,
        "part_boxes": parts, "source": f"{video_id}.mp4:{frame_index}",
    }


def test_rows_to_table_normalizes_boxes_and_keeps_track_ids():
    table = outputs.rows_to_table([_row(), _row(track_id=4, with_model=False)])
    assert table.schema == outputs.RESULT_SCHEMA
    r0, r1 = table.to_pylist()
    assert (r0["x1"], r0["y1"], r0["x2"], r0["y2"]) == pytest.approx((0.1, 0.1, 0.3, 0.9))
    assert r0["person_id"] == r0["track_id"] == 3 and r1["person_id"] == 4
    assert r0["pasta_vocab"] == "pasta_ava87" and r0["action_vocab"] == "ava80" and r0["actions"] == [12, 17]
    # without a model the kinematic states are the row's part states, in the Kinetics-TPS vocabulary
    assert r1["pasta"] == ["left_arm: bend", "hip: stand"] and r1["pasta_vocab"] == "kinetics-tps"
    assert r1["action_scores"] is None and r1["pasta_scores"] is None
    assert [p["part"] for p in r0["part_boxes"]] == list(vocab.BODY_PARTS)
    assert r0["part_boxes"][1]["x1"] == pytest.approx(11 / 320) and r0["part_boxes"][1]["state"] == "bend"
    assert len(r0["keypoints"]) == 51 and len(r0["action_scores"]) == 80 and len(r0["pasta_probs"]) == 87


def test_ava_detection_csv_has_one_line_per_person_and_class(tmp_path):
    from partwise.data import ava

    rows = [_row(), _row(time_s=903.0, frame_index=90, seed=1), _row(with_model=False)]
    table = outputs.rows_to_table(rows)
    path = tmp_path / "det.csv"
    assert outputs.write_ava_detections(table, path) == 160  # the row without a model has no action scores
    det = ava.read_csv(path)
    assert det.kind == "det" and len(det) == 160
    first = det.timestamp == 902.0
    assert det.action[first].tolist() == list(range(1, 81))
    assert det.score[first] == pytest.approx(np.round(rows[0]["action_scores"], 4), abs=1e-9)
    assert det.boxes[first][0] == pytest.approx([0.1, 0.1, 0.3, 0.9])
    pasta_path = tmp_path / "pasta.csv"
    outputs.write_ava_detections(table, pasta_path, "pasta_probs", 87)
    pasta = ava.read_csv(pasta_path, valid_actions=range(1, 88))
    assert sorted(set(pasta.action.tolist())) == list(range(1, 88))


def test_tps_part_result_is_a_valid_submission(tmp_path):
    from partwise.data import kinetics_tps

    table = outputs.rows_to_table([_row(), _row(track_id=5)])
    result = outputs.tps_part_result(table)
    frame = result["vidA"]["img_00061.json"]  # frame_index 60 (0-based) is file 61
    assert [h["number"] for h in frame["humans"]] == [3, 5]
    parts = frame["humans"][0]["parts"]
    assert sorted(parts) == sorted(p for i, p in enumerate(vocab.BODY_PARTS) if i % 2)  # stateless parts left out
    assert parts["right_leg"]["verb"] == ["bend"] and parts["right_leg"]["box"] == [[11.0, 20.0, 31.0, 40.0]]
    assert kinetics_tps.part_result_problems(result, "pred.json", pred=True) == []


def test_merge_writes_every_format_once_per_video(tmp_path):
    for vid, rows in {"a": [_row("a"), _row("a", track_id=4)], "b": [_row("b")]}.items():
        folder = outputs.video_dir(tmp_path, vid)
        folder.mkdir(parents=True)
        outputs.write_parquet(outputs.rows_to_table(rows), folder / outputs.PERSONS_FILE)
    paths = outputs.merge(tmp_path, ["a", "b", "a", "missing"], tps_json=True, ava_csv=True)
    table = pq.read_table(paths["parquet"])
    assert table.column("video_id").to_pylist() == ["a", "a", "b"]
    lines = paths["jsonl"].read_text().splitlines()
    assert [json.loads(line)["track_id"] for line in lines] == [3, 4, 3]
    assert sorted(json.loads(paths["tps_json"].read_text())) == ["a", "b"]
    page = paths["html"].read_text()
    assert page.count("<tr>") == 3 and "hand: hold" in page and "stand (" in page  # 'stand' = AVA action 12


def test_nearest_keyframe():
    keyframes = np.array([30, 60, 90])
    got = render.nearest_keyframe(np.array([0, 14, 15, 16, 45, 46, 90, 105, 106]), keyframes, 15)
    assert got.tolist() == [-1, -1, 30, 30, 30, 60, 90, 90, -1]
    assert render.nearest_keyframe(np.array([3]), np.array([], np.int64), 5).tolist() == [-1]


def test_draw_persons_draws_the_box_in_the_track_colour():
    frame = np.zeros((240, 320, 3), np.uint8)
    row = outputs.rows_to_table([_row()]).to_pylist()[0]
    out = render.draw_persons(frame, [row])
    assert tuple(out[120, 32]) == render.track_colour(3)  # left edge of the person box
    assert frame.max() == 0  # the input is not modified


def test_rows_between_keyframes_are_interpolated_per_track():
    table = outputs.rows_to_table([_row(frame_index=30, track_id=1), _row(frame_index=60, track_id=1),
                                   _row(frame_index=60, track_id=2)])
    rows = table.to_pylist()
    rows[1].update(px1=rows[0]["px1"] + 30.0, px2=rows[0]["px2"] + 30.0)
    by_frame = {30: [rows[0]], 60: [rows[1], rows[2]]}
    keyframes = np.array([30, 60])
    at = render.rows_at(40, by_frame, keyframes, 15)  # nearest keyframe 30, a third of the way to 60
    assert len(at) == 1 and at[0]["px1"] == pytest.approx(rows[0]["px1"] + 10.0)
    at = render.rows_at(50, by_frame, keyframes, 15)  # nearest 60: track 2 only exists there and is kept as is
    assert [r["track_id"] for r in at] == [1, 2]
    assert at[0]["px1"] == pytest.approx(rows[0]["px1"] + 20.0) and at[1]["px1"] == rows[2]["px1"]
    assert render.rows_at(80, by_frame, keyframes, 15) == []
    assert render.rows_at(30, by_frame, keyframes, 15) == [rows[0]]


def test_merge_reads_rows_written_before_the_verb_columns_existed(tmp_path):
    old = outputs.rows_to_table([_row("old")]).drop_columns(["verbs", "verb_scores"])
    new = outputs.rows_to_table([dict(_row("new"), verbs=["eat", "drink"], verb_scores=[0.5] * 157)])
    for vid, table in (("old", old), ("new", new)):
        outputs.video_dir(tmp_path, vid).mkdir(parents=True)
        outputs.write_parquet(table, outputs.video_dir(tmp_path, vid) / outputs.PERSONS_FILE)
    paths = outputs.merge(tmp_path, ["old", "new"])
    merged = pq.read_table(paths["parquet"])
    assert merged.schema == outputs.RESULT_SCHEMA
    assert merged.column("verbs").to_pylist() == [None, ["eat", "drink"]]  # null: not written then
    assert merged.column("verb_scores").to_pylist()[0] is None
    assert json.loads(paths["run"].read_text())["videos"] == {"old": {"classes": None}, "new": {"classes": None}}


def test_labels_of_neighbours_do_not_overlap():
    placed = []
    first = render.label_position((10, 50, 60, 150), 120, placed)
    second = render.label_position((80, 55, 130, 150), 120, placed)  # its label above would run into the first
    assert first == (10.0, 39.0)
    assert second == (80.0, 56.0)  # first free line inside its own box
    lone = render.label_position((200, 0, 240, 5), 30, [])  # no room inside: above, clipped to the frame
    assert lone == (200.0, 0.0)
