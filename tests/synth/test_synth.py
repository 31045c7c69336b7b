"""partwise synth: determinism, labels that follow the drawn pixels, continuous tracks, and every written format
reading back (through the format modules) to the canonical truth."""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from partwise import vocab
from partwise.cli import main
from partwise.data import video as video_io
from partwise.synth import figures as fig
from partwise.synth import generator as gen

CFG = gen.SynthConfig(seed=8, videos=2, seconds=5, width=160, height=120, people=(3, 3))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "data"
    gen.generate(out, CFG)
    return out


@pytest.fixture(scope="module")
def summary(dataset) -> dict:
    return json.loads((dataset / "synth.json").read_text())


@pytest.fixture(scope="module")
def truth(dataset) -> list[dict]:
    return pq.read_table(dataset / "truth.parquet").to_pylist()


@pytest.fixture(scope="module")
def frames_truth(dataset) -> list[dict]:
    return pq.read_table(dataset / "truth_frames.parquet").to_pylist()


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _box(rec: dict, prefix: str = "") -> np.ndarray:
    return np.array([rec[f"{prefix}{k}"] for k in ("x1", "y1", "x2", "y2")], dtype=float)


# ---------------------------------------------------------------------------------------------------------------
# Determinism and layout


def test_same_seed_same_bytes_other_seed_differs(dataset, tmp_path):
    again = tmp_path / "again"
    gen.generate(again, CFG)
    first, second = _files(dataset), _files(again)
    assert first.keys() == second.keys()
    assert [name for name in first if first[name] != second[name]] == []
    other = tmp_path / "other"
    gen.generate(other, gen.SynthConfig(**{**CFG.__dict__, "seed": 9, "frames": False}))
    assert (other / "truth.parquet").read_bytes() != first["truth.parquet"]


def test_layout_ids_splits_and_frames(dataset, summary):
    videos = summary["videos"]
    assert [v["split"] for v in videos] == ["train", "val"]
    for v in videos:
        vid = v["video_id"]
        assert len(vid) == 11
        info = video_io.probe(dataset / "videos" / f"{vid}.mp4")
        assert (info.width, info.height, info.fps, info.num_frames) == (160, 120, 30.0, 150)
        names = sorted(p.name for p in (dataset / "frames" / vid).iterdir())
        assert names == [f"img_{n:05d}.jpg" for n in range(1, 151)]
    assert summary["keyframes"] == [902, 903]
    for name in ("hake_ava/video_pasta_train.csv", "hake_ava/video_pasta_val.csv", "hake_ava/part_state.pbtxt",
                 "gio/DIO_train.csv", "kinetics_tps/gt_part_result.json", "kinetics_tps/gt_vid_result.json",
                 "kinetics_tps/list/part_stat.txt", "kinetics_tps/list/video_train_flist.csv"):
        assert (dataset / name).is_file(), name


def test_keyframe_timing_follows_ava(truth):
    for rec in truth:
        assert rec["frame_index"] == (rec["time_s"] - 900) * 30 == video_io.sec_to_frame(rec["time_s"])
        assert rec["dataset"] == "synthetic"


# ---------------------------------------------------------------------------------------------------------------
# Labels: vocabularies and the rules from states to actions


def test_labels_use_the_real_vocabularies(truth):
    ava60, pasta = vocab.load("ava60"), vocab.load("pasta_ava87")
    assert set(gen.AVA_ACTIONS) <= set(ava60.ids)
    assert 10 <= len(gen.PASTA_STATES) <= 16
    for rec in truth:
        assert rec["action_vocab"] == "ava80" and rec["pasta_vocab"] == "pasta_ava87"
        assert rec["actions"] and set(rec["actions"]) <= set(ava60.ids)
        assert all(pasta.has_name(p) for p in rec["pasta"])
        assert [p["part"] for p in rec["part_boxes"]] == list(vocab.BODY_PARTS)
        assert rec["video_label"] in gen.VIDEO_CLASSES


def test_actions_follow_states(truth, frames_truth):
    pose_actions = {1, 3, 11, 12, 14}
    for rec in truth + frames_truth:
        actions, pasta = set(rec["actions"]), set(rec["pasta"])
        assert len(actions & pose_actions) == 1  # exactly one posture action, as in AVA
        assert (14 in actions) == ("leg: walk with" in pasta) == ("foot: walk with" in pasta)
        assert (11 in actions) == ("hip: sit on" in pasta)
        assert (17 in actions) == ("hand: hold" in pasta)
        assert (3 in actions) == bool({"leg: kneel", "leg: bend"} & pasta)
        assert (1 in actions) == ("hip: bend" in pasta)
        assert (69 in actions) == ("hand: gesture to" in pasta)
        if "head: inspect" in pasta:
            assert "hand: hold" in pasta
        object_actions = sorted(o["action"] for o in rec["objects"])
        expected = sorted(a for a in actions if a in (11, 17, 36, 59))
        assert object_actions == expected
        assert all(o["class_name"] == "chair" for o in rec["objects"] if o["action"] == 11)


def test_states_last_several_seconds(dataset, summary):
    # Over every frame, a person's (posture, activity) changes at most once per 3 s.
    cfg = CFG
    for i, v in enumerate(summary["videos"]):
        rng = np.random.default_rng([cfg.seed, i])
        people = gen.sample_people(rng, cfg, v["class"])
        for person in people:
            starts = [s.start for s in person.segments]
            assert starts[0] == 0 and np.all(np.diff(starts) >= 3.0)


# ---------------------------------------------------------------------------------------------------------------
# The pixels carry the labels


def _colors(summary) -> dict:
    return {(v["video_id"], p["person_id"]): (np.array(p["color"]), np.array(p["color_left"]))
            for v in summary["videos"] for p in v["people"]}


def _center(box: dict) -> np.ndarray:
    return np.array([(box["px1"] + box["px2"]) / 2, (box["py1"] + box["py2"]) / 2])


def _settled(frames_truth: list[dict]) -> list[dict]:
    """Records whose state has not changed in the last 15 frames (poses blend over 0.4 s after a change)."""
    by_key = {(r["video_id"], r["person_id"], r["frame_index"]): r for r in frames_truth}
    out = []
    for rec in frames_truth:
        earlier = [by_key.get((rec["video_id"], rec["person_id"], rec["frame_index"] - d)) for d in (5, 10, 15)]
        if all(e is not None and e["pasta"] == rec["pasta"] for e in earlier):
            out.append(rec)
    return out


def test_raised_hands_are_above_the_head(frames_truth):
    settled = _settled(frames_truth)
    raised = [r for r in settled if "hand: raise(over head)" in r["pasta"]]
    assert raised
    for rec in raised:
        parts = {p["part"]: p for p in rec["part_boxes"]}
        assert _center(parts["right_hand"])[1] < _center(parts["head"])[1] - 5
        assert _center(parts["left_hand"])[1] < _center(parts["head"])[1] - 5


@pytest.mark.parametrize("posture", fig.LOWER_POSTURES)
def test_poses_put_hands_where_the_state_says(posture):
    place = fig.Placement(x=100.0, ground_y=200.0, scale=100.0, facing=-1)
    for t in np.linspace(0, 2, 9):
        parts = dict(zip(vocab.BODY_PARTS, fig.part_boxes(fig.pose(posture, "raise", t, place))))
        centre_y = {name: (box[1] + box[3]) / 2 for name, box in parts.items()}
        if posture in gen.ALLOWED_UPPER and "raise" in gen.ALLOWED_UPPER[posture]:
            assert centre_y["right_hand"] < centre_y["head"] - 10 and centre_y["left_hand"] < centre_y["head"] - 10
        joints = fig.pose(posture, "none", t, place)
        parts = dict(zip(vocab.BODY_PARTS, fig.part_boxes(joints)))
        assert (parts["right_hand"][1] + parts["right_hand"][3]) / 2 > (parts["head"][1] + parts["head"][3]) / 2
        # Feet on the ground line (kneeling: the knee), nothing below it.
        assert joints[:, 1].max() == pytest.approx(200.0)
        wave = fig.pose(posture, "wave", t, place)
        assert wave[fig.J["r_wrist"], 1] < wave[fig.J["neck"], 1] < wave[fig.J["l_wrist"], 1]


def test_walkers_move_and_others_stay(frames_truth):
    by_track = defaultdict(list)
    for rec in frames_truth:
        by_track[(rec["video_id"], rec["person_id"])].append(rec)
    moved = {True: [], False: []}
    for recs in by_track.values():
        recs.sort(key=lambda r: r["frame_index"])
        for a, b in zip(recs, recs[1:]):
            if ("leg: walk with" in a["pasta"]) == ("leg: walk with" in b["pasta"]):
                hip_a = _center(next(p for p in a["part_boxes"] if p["part"] == "hip"))
                hip_b = _center(next(p for p in b["part_boxes"] if p["part"] == "hip"))
                moved["leg: walk with" in a["pasta"]].append(abs(hip_b[0] - hip_a[0]))
    assert moved[True] and moved[False]
    assert np.median(moved[True]) > 2.0  # 5 frames of walking
    assert np.median(moved[False]) <= 1.0


def test_part_boxes_show_the_persons_color(dataset, summary, frames_truth):
    colors = _colors(summary)
    own, checked = 0, 0
    for rec in frames_truth:
        image = np.asarray(Image.open(dataset / "frames" / rec["video_id"] / f"img_{rec['frame_index']:05d}.jpg"),
                           dtype=float)
        right, left = colors[(rec["video_id"], rec["person_id"])]
        others = [c for (vid, pid), pair in colors.items() if vid == rec["video_id"] and pid != rec["person_id"]
                  for c in pair]
        for part in rec["part_boxes"]:
            if part["part"] not in ("head", "hip"):
                continue
            x1, y1, x2, y2 = (int(part[k]) for k in ("px1", "py1", "px2", "py2"))
            patch = image[y1:y2, x1:x2].reshape(-1, 3)
            mine = np.min([np.linalg.norm(patch - right, axis=1), np.linalg.norm(patch - left, axis=1)], axis=0) < 50
            theirs = [int((np.linalg.norm(patch - c, axis=1) < 50).sum()) for c in others]
            checked += 1
            own += mine.sum() >= 8 and mine.sum() >= max(theirs, default=0)
    # Occlusion by a nearer person can hide a part; nearly all parts must show their person's color.
    assert own / checked > 0.9


def test_tracks_are_continuous(frames_truth, summary):
    by_track = defaultdict(list)
    for rec in frames_truth:
        by_track[(rec["video_id"], rec["person_id"])].append(rec)
    for v in summary["videos"]:
        ids = sorted(pid for vid, pid in by_track if vid == v["video_id"])
        assert ids == [p["person_id"] for p in v["people"]] == [0, 1, 2]
    for recs in by_track.values():
        recs.sort(key=lambda r: r["frame_index"])
        assert [r["frame_index"] for r in recs] == list(range(1, 151, 5))
        centers = np.array([(_box(r, "p")[:2] + _box(r, "p")[2:]) / 2 for r in recs])
        # Walking covers < 0.5 * height px/s; posture changes blend over 0.4 s: no jumps between sampled frames.
        assert np.abs(np.diff(centers, axis=0)).max() < 0.2 * CFG.height


# ---------------------------------------------------------------------------------------------------------------
# Read back through the format modules


def _key(rec: dict) -> tuple:
    return rec["video_id"], int(rec["time_s"]), rec["person_id"]


def test_hake_ava_reads_back_to_truth(dataset, truth):
    hake_ava = pytest.importorskip("partwise.data.hake_ava")
    back = {_key(r): r for r in hake_ava.read_records(dataset / "hake_ava").to_pylist()}
    assert back.keys() == {_key(r) for r in truth}
    for rec in truth:
        got = back[_key(rec)]
        assert got["split"] == rec["split"]
        assert got["actions"] == rec["actions"]
        assert sorted(got["pasta"]) == sorted(rec["pasta"])
        np.testing.assert_allclose(_box(got), _box(rec), atol=1e-9)


def test_gio_reads_back_to_truth(dataset, truth):
    gio = pytest.importorskip("partwise.data.gio")
    back = {_key(r): r for r in gio.read_records(dataset / "gio").to_pylist()}
    with_objects = [r for r in truth if r["objects"]]
    assert with_objects and back.keys() == {_key(r) for r in with_objects}
    for rec in with_objects:
        got = back[_key(rec)]
        np.testing.assert_allclose(_box(got), _box(rec), atol=1e-9)
        assert [(o["class_name"], o["class_id"], o["action"]) for o in got["objects"]] == \
            [(o["class_name"], o["class_id"], o["action"]) for o in rec["objects"]]
        for a, b in zip(got["objects"], rec["objects"]):
            np.testing.assert_allclose(_box(a), _box(b), atol=1e-9)


def test_kinetics_tps_reads_back_to_truth(dataset, frames_truth):
    tps = pytest.importorskip("partwise.data.kinetics_tps")
    back = {(r["video_id"], r["frame_index"], r["person_id"]): r
            for r in tps.read_records(dataset / "kinetics_tps").to_pylist()}
    assert back.keys() == {(r["video_id"], r["frame_index"], r["person_id"]) for r in frames_truth}
    frame_objects = defaultdict(set)
    for rec in frames_truth:
        got = back[(rec["video_id"], rec["frame_index"], rec["person_id"])]
        assert (got["split"], got["video_label"]) == (rec["split"], rec["video_label"])
        np.testing.assert_allclose(_box(got, "p"), _box(rec, "p"))
        got_parts = {p["part"]: p for p in got["part_boxes"]}
        assert sorted(got_parts) == sorted(vocab.BODY_PARTS)
        for part in rec["part_boxes"]:
            assert got_parts[part["part"]]["state"] == part["state"]
            np.testing.assert_allclose(_box(got_parts[part["part"]], "p"), _box(part, "p"))
        frame_objects[(rec["video_id"], rec["frame_index"])].update(o["class_name"] for o in rec["objects"])
    for (vid, frame), names in frame_objects.items():
        got_names = {o["class_name"] for (v, f, _), r in back.items() if (v, f) == (vid, frame) for o in r["objects"]}
        assert got_names == names


def test_kinetics_tps_evaluator_ground_truth(dataset, frames_truth, summary):
    tps = pytest.importorskip("partwise.data.kinetics_tps")
    parts = tps.read_part_result(dataset / "kinetics_tps" / "gt_part_result.json", pred=False)
    classes = tps.read_vid_result(dataset / "kinetics_tps" / "gt_vid_result.json")
    val = [v for v in summary["videos"] if v["split"] == "val"]
    assert classes == {v["video_id"]: v["class"] for v in val}
    for v in val:
        frames = parts[v["video_id"]]
        assert sorted(frames) == [f"img_{n:05d}.json" for n in range(1, 151, 5)]
        first = frames["img_00001.json"]["humans"]
        expected = [r for r in frames_truth if r["video_id"] == v["video_id"] and r["frame_index"] == 1]
        assert len(first) == len(expected)
        assert [h["parts"]["head"]["verb"] for h in first] == \
            [next(p["state"] for p in r["part_boxes"] if p["part"] == "head") for r in expected]


def test_ava_reads_back_to_truth(dataset, truth, summary):
    ava = pytest.importorskip("partwise.data.ava")
    if not hasattr(ava, "read_records"):
        pytest.skip("partwise.data.ava.read_records is not written yet")
    back = {}
    for split in ("train", "val"):
        for r in ava.read_records(dataset / "ava" / f"ava_{split}_v2.2.csv").to_pylist():
            back[(r["video_id"], int(r["time_s"]), r["person_id"])] = r
    assert back.keys() == {_key(r) for r in truth}
    for rec in truth:
        got = back[_key(rec)]
        assert sorted(got["actions"]) == rec["actions"]
        np.testing.assert_allclose(_box(got), _box(rec), atol=1e-9)


@pytest.mark.parametrize("name, sub", [("ava", "ava/ava_train_v2.2.csv"), ("ava", "ava/ava_val_v2.2.csv"),
                                       ("hake-ava", "hake_ava"), ("gio", "gio"), ("kinetics-tps", "kinetics_tps")])
def test_written_formats_validate_clean(dataset, name, sub):
    from partwise.data import formats

    assert formats.get_format(name).validate(dataset / sub) == []


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_ava_exclusions_proposals_and_label_map(dataset, truth, summary):
    ava = pytest.importorskip("partwise.data.ava")
    folder = dataset / "ava"
    excluded = {(v["video_id"], t) for v in summary["videos"] for t in v["excluded"]}
    assert excluded  # seed 8 excludes keyframe 902 of the first video
    written = set()
    for split in ("train", "val"):
        rows = ava.read_excluded(folder / f"ava_{split}_excluded_timestamps_v2.2.csv")
        written |= {(v, int(t)) for v, t in zip(rows.video_ids, rows.timestamp)}
    assert written == excluded
    assert not [r for r in truth if (r["video_id"], int(r["time_s"])) in excluded]
    # Proposals at every keyframe (excluded ones too); each GT person is found with a high score.
    proposals = {}
    for split in ("train", "val"):
        proposals.update(ava.read_proposals(folder / f"ava_dense_proposals_{split}.FAIR.recall_93.9.pkl"))
    assert set(proposals) == {f"{v['video_id']},{t:04d}" for v in summary["videos"] for t in summary["keyframes"]}
    for rec in truth:
        boxes = proposals[f"{rec['video_id']},{int(rec['time_s']):04d}"]
        best = max(boxes, key=lambda row: _iou(row[:4], _box(rec)))
        assert _iou(best[:4], _box(rec)) > 0.5 and best[4] >= 0.9
    label_map = vocab.read_label_map(folder / "ava_action_list_v2.2_for_activitynet_2019.pbtxt")
    assert sorted(label_map) == sorted(vocab.load("ava60").ids)


# ---------------------------------------------------------------------------------------------------------------
# Command line


def test_cli(tmp_path, capsys):
    out = tmp_path / "cli"
    code = main(["synth", str(out), "--seed", "1", "--videos", "1", "--seconds", "4", "--size", "96x64",
                 "--people", "2", "--no-frames", "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "wrote 1 videos (1 train, 0 val)" in printed and "truth.parquet" in printed
    assert not (out / "frames").exists()
    assert {r["person_id"] for r in pq.read_table(out / "truth_frames.parquet").to_pylist()} == {0, 1}
    # An existing output is refused (one-line error, exit 2); bad sizes are refused before any work.
    assert main(["synth", str(out), "--videos", "1", "--no-progress"]) == 2
    assert "exists and is not empty" in capsys.readouterr().err
    assert main(["synth", str(tmp_path / "odd"), "--size", "97x64", "--no-progress"]) == 2
    assert "even" in capsys.readouterr().err
    assert not (tmp_path / "odd").exists()
