import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from partwise.infer import outputs, pipeline
from partwise.infer.pipeline import RunOptions


def _synth(root: Path, **kwargs) -> Path:
    from partwise.synth.generator import SynthConfig, generate

    generate(root, SynthConfig(frames=False, **kwargs))
    return root


@pytest.fixture(scope="module")
def crossing(tmp_path_factory):
    """One 8 s video with three people, two of whom walk through each other (seed 0; checked in the test)."""
    return _synth(tmp_path_factory.mktemp("crossing") / "syn", seed=0, videos=1, seconds=8, people=(3, 3))


@pytest.fixture(scope="module")
def three(tmp_path_factory):
    """Three short small videos and one AVA GT CSV covering all of them."""
    from partwise.data import ava

    root = _synth(tmp_path_factory.mktemp("three") / "syn", seed=2, videos=3, seconds=5, width=160, height=120,
                  people=(2, 2))
    truth = pq.read_table(root / "truth.parquet")
    ava.write_records(truth, root / "all_gt.csv")
    return root


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    import torch

    from partwise.models.checkpoint import save_model
    from partwise.models.resnet3d import SlowFastConfig
    from partwise.models.st_activity2vec import STActivity2Vec, STActivity2VecConfig

    torch.manual_seed(0)
    backbone = SlowFastConfig(depth=50, resample_rate=4, speed_ratio=4, channel_ratio=8, fusion_kernel=7,
                              base_channels=8)
    model = STActivity2Vec(STActivity2VecConfig(backbone=backbone, pasta_hidden=(8, 16, 8, 8, 8, 8))).eval()
    path = tmp_path_factory.mktemp("model") / "model.pt"
    save_model(model, path, extra={"data": {"clip_len": 4, "frame_interval": 4, "test_short_side": 96}})
    return path


def test_keyframes_follow_the_box_file_or_the_rate():
    opts = RunOptions()
    kfs, start = pipeline.keyframes_for(240, 30.0, opts, [903.0, 902.0])
    assert start == 900 and [(k.time_s, k.frame_index) for k in kfs] == [(902.0, 60), (903.0, 90)]
    kfs, start = pipeline.keyframes_for(240, 30.0, opts, [1.5, 7.0])  # within the video: seconds from its start
    assert start == 0 and [k.frame_index for k in kfs] == [45, 210]
    kfs, _ = pipeline.keyframes_for(240, 30.0, RunOptions(fps=2), None)
    assert [k.frame_index for k in kfs] == list(range(0, 240, 15))
    kfs, _ = pipeline.keyframes_for(240, 30.0, RunOptions(timestamp_start=0), [902.0])
    assert kfs == []  # outside the video


def test_buffered_boxes_and_box_selection():
    assert pipeline.buffered_boxes(np.array([[10, 20, 30, 60]]), 0.5).tolist() == [[0, 0, 40, 80]]
    boxes = np.array([[0, 0, 10, 10, 0.95], [1, 0, 11, 10, 0.92], [20, 20, 30, 30, 0.99], [40, 40, 50, 50, 0.5]])
    kept = pipeline.select_boxes(boxes, threshold=0.9, nms_iou=0.7, max_people=10)
    assert kept[:, 4].tolist() == [0.99, 0.95]  # IoU(0, 1) = 9/11 > 0.7; the 0.5 box is below the threshold
    assert len(pipeline.select_boxes(boxes, 0.9, 0.9, max_people=1)) == 1


def test_load_boxes_gives_each_ground_truth_person_once(crossing):
    truth = pq.read_table(crossing / "truth.parquet").to_pylist()
    boxes = pipeline.load_boxes(crossing / "ava" / "ava_train_v2.2.csv")
    (vid,) = boxes
    for ts, array in boxes[vid].items():
        expected = sorted([round(r[k], 3) for k in ("x1", "y1", "x2", "y2")] for r in truth if r["time_s"] == ts)
        assert sorted(array[:, :4].round(3).tolist()) == expected
        assert (array[:, 4] == 1.0).all()
    proposals = pipeline.load_boxes(crossing / "ava" / "ava_dense_proposals_train.FAIR.recall_93.9.pkl")
    assert sorted(proposals[vid]) == sorted(boxes[vid])


def _iou(a, b):
    from partwise.infer.tracking import iou_matrix

    return iou_matrix(np.asarray(a), np.asarray(b))


def test_track_ids_stay_constant_when_people_cross(crossing, tmp_path):
    truth = pq.read_table(crossing / "truth.parquet").to_pylist()
    times = sorted({r["time_s"] for r in truth})
    centre = {(r["time_s"], r["person_id"]): (r["px1"] + r["px2"]) / 2 for r in truth}
    people = sorted({r["person_id"] for r in truth})
    # the clip is a real test: some pair of people swaps its left-right order between keyframes
    orders = [tuple(sorted(people, key=lambda p: centre[(t, p)])) for t in times]
    assert len(set(orders)) > 1
    summary = pipeline.run(crossing / "videos", tmp_path / "out",
                           RunOptions(boxes=str(crossing / "ava" / "ava_dense_proposals_train.FAIR.recall_93.9.pkl"),
                                      pose="none", video=False, progress=False))
    assert summary.failed == [] and len(summary.done) == 1
    rows = pq.read_table(tmp_path / "out" / "persons.parquet").to_pylist()
    assignment: dict[int, set[int]] = {}
    for t in times:
        gt = [r for r in truth if r["time_s"] == t]
        pred = [r for r in rows if r["time_s"] == t]
        assert len(pred) == len(gt)
        iou = _iou([[r["px1"], r["py1"], r["px2"], r["py2"]] for r in gt], [[r["px1"], r["py1"], r["px2"], r["py2"]] for r in pred])
        for g, p in enumerate(iou.argmax(1)):
            assert iou[g, p] > 0.5
            assignment.setdefault(gt[g]["person_id"], set()).add(pred[p]["track_id"])
    assert all(len(ids) == 1 for ids in assignment.values()), assignment
    assert len({next(iter(ids)) for ids in assignment.values()}) == len(people)


def test_a_note_says_when_keyframes_reach_max_people(crossing, tmp_path):
    truth = pq.read_table(crossing / "truth.parquet").to_pylist()
    per_time: dict[float, int] = {}
    for r in truth:
        per_time[r["time_s"]] = per_time.get(r["time_s"], 0) + 1
    most = max(per_time.values())
    full = sum(n == most for n in per_time.values())
    proposals = str(crossing / "ava" / "ava_dense_proposals_train.FAIR.recall_93.9.pkl")
    for cap, expected in ((most, [f"{full} of {len(per_time)} keyframes hold {most} people, the cap"]),
                          (most + 1, [])):
        summary = pipeline.run(crossing / "videos", tmp_path / f"out{cap}",
                               RunOptions(boxes=proposals, pose="none", video=False, progress=False, max_people=cap))
        assert [n.split(":")[0] for n in summary.notes if "the cap" in n] == expected


def _corrupt_folder(three: Path, tmp_path: Path) -> tuple[Path, str]:
    folder = tmp_path / "in"
    shutil.copytree(three / "videos", folder)
    victim = sorted(folder.iterdir())[1]
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])  # truncated download: no index at the end
    return folder, victim.stem


def test_corrupt_video_is_reported_and_skipped(three, tmp_path, capsys):
    from partwise.cli import main

    folder, bad = _corrupt_folder(three, tmp_path)
    out = tmp_path / "out"
    argv = ["run", str(folder), "--out", str(out), "--boxes", str(three / "all_gt.csv"), "--pose", "none",
            "--no-progress", "--ava-csv", "--tps-json"]
    assert main(argv) == 1
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("partwise: error: ") and f"{bad}.mp4" in errors[0]
    good = sorted(p.stem for p in folder.iterdir() if p.stem != bad)
    assert sorted(p.name for p in (out / "videos").iterdir() if (p / "persons.parquet").is_file()) == good
    assert all((out / "videos" / v / "annotated.mp4").is_file() for v in good)
    merged = pq.read_table(out / "persons.parquet")
    assert sorted(set(merged.column("video_id").to_pylist())) == good
    truth = pq.read_table(three / "truth.parquet")
    assert merged.num_rows == sum(v in good for v in truth.column("video_id").to_pylist())
    assert "1 failed" in captured.out
    # a re-run skips what is done and still reports the bad file
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert "0 processed, 2 already done, 1 failed" in captured.out
    assert pq.read_table(out / "persons.parquet").equals(merged)


def test_model_outputs_and_workers(three, small_model, tmp_path):
    folder = tmp_path / "in"
    shutil.copytree(three / "videos", folder)
    opts = RunOptions(boxes=str(three / "all_gt.csv"), model=str(small_model), pose="none", video=False,
                      progress=False)
    one = pipeline.run(folder, tmp_path / "one", opts, ava_csv=True)
    two = pipeline.run(folder, tmp_path / "two", opts, workers=2, ava_csv=True)
    assert one.failed == two.failed == [] and sorted(one.done) == sorted(two.done)
    a, b = (pq.read_table(s.merged["parquet"]) for s in (one, two))
    assert a.equals(b)
    row = a.to_pylist()[0]
    assert len(row["action_scores"]) == 80 and len(row["pasta_probs"]) == 87 and len(row["pasta"]) == 5
    assert row["pasta_scores"] == sorted(row["pasta_scores"], reverse=True)
    assert row["pasta_scores"][0] == pytest.approx(max(row["pasta_probs"]))
    assert len(row["activity_vector"]) == 2304 * 8 // 64  # SlowFast 2048 + 256 channels at base width 8 of 64
    assert row["actions"] == [i + 1 for i, s in enumerate(row["action_scores"]) if s >= 0.5]
    # without pose every part box is the person box and its state comes from the model alone
    assert all([p["px1"], p["py1"], p["px2"], p["py2"]] == [row["px1"], row["py1"], row["px2"], row["py2"]]
               for p in row["part_boxes"])
    lines = (tmp_path / "one" / "ava_detections.csv").read_text().splitlines()
    assert len(lines) == 80 * a.num_rows


def test_model_clip_matches_the_training_test_transform(three, small_model):
    """The clip fed to the model equals partwise.train.data's evaluation clip for the same keyframe."""
    import torch

    from partwise.data.video import clip_around, read_frames
    from partwise.train.data import resize_clip, short_side_size

    loaded = pipeline.load_run_model(small_model)
    assert (loaded.clip.clip_len, loaded.clip.frame_interval, loaded.clip.short_side) == (4, 4, 96)
    video = sorted((three / "videos").iterdir())[0]
    frames = read_frames(video, clip_around(60, 4, 4, 150))
    clip, scale = pipeline.clip_tensor(frames, loaded.clip)
    h, w = short_side_size(120, 160, 96)
    expected = (resize_clip(frames, (h, w)) - torch.tensor(loaded.clip.mean).view(3, 1, 1, 1)) / torch.tensor(
        loaded.clip.std).view(3, 1, 1, 1)
    assert torch.allclose(clip[0], expected, atol=1e-4)
    assert scale == (w / 160, h / 120)


def test_torchrun_splits_inputs_across_ranks_and_merges_once(three, tmp_path):
    import os
    import subprocess
    import sys

    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           "-m", "partwise", "run", str(three / "videos"), "--out", str(out), "--boxes", str(three / "all_gt.csv"),
           "--pose", "none", "--no-video", "--no-progress"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "rank 0 of 2: 2 processed" in proc.stdout and "rank 1 of 2: 1 processed" in proc.stdout
    merged = pq.read_table(out / "persons.parquet").to_pylist()
    truth = pq.read_table(three / "truth.parquet")
    assert len(merged) == truth.num_rows
    assert len({(r["video_id"], r["time_s"], r["track_id"]) for r in merged}) == len(merged)
    assert sorted({r["video_id"] for r in merged}) == sorted(set(truth.column("video_id").to_pylist()))


class _StaticPose:
    """Stands in for MediaPipe: a still, upright person with both wrists above the nose, placed in the box."""

    calls = 0

    def estimate(self, frame, box):
        type(self).calls += 1
        x1, y1, x2, y2 = box
        w, h, cx = x2 - x1, y2 - y1, (x1 + x2) / 2
        rel = [(0, 0.10), (-0.02, 0.08), (0.02, 0.08), (-0.04, 0.09), (0.04, 0.09), (0.15, 0.2), (-0.15, 0.2),
               (0.2, 0.1), (-0.2, 0.1), (0.2, 0.02), (-0.2, 0.02), (0.1, 0.5), (-0.1, 0.5), (0.1, 0.72),
               (-0.1, 0.72), (0.1, 0.95), (-0.1, 0.95)]
        return np.array([[cx + dx * w, y1 + dy * h, 0.9] for dx, dy in rel])


def test_pose_gives_part_boxes_and_kinematic_states(crossing, tmp_path):
    from partwise.infer.kinematics import TPS_PARTS
    from partwise.infer.pipeline import InputItem, process_item

    (video,) = (crossing / "videos").iterdir()
    boxes = pipeline.load_boxes(crossing / "ava" / "ava_train_v2.2.csv")
    opts = RunOptions(progress=False, pose_fps=10, pose_window_s=0.3)
    _StaticPose.calls = 0
    result = process_item(InputItem(video, video.stem, "video"), opts, boxes=boxes, pose=_StaticPose())
    n_rows = len(result.rows)
    assert n_rows == 15 and _StaticPose.calls == n_rows * 7  # 30 fps / 10 -> every 3rd frame, +-3 samples
    expected = {"head": "none", "hip": "stand", "left_arm": "none", "right_arm": "none", "left_hand": "raise",
                "right_hand": "raise", "left_leg": "stand", "right_leg": "stand", "left_foot": "none",
                "right_foot": "none"}
    for row in result.rows:
        assert row["kinematic"] == [f"{p}: {expected[p]}" for p in TPS_PARTS]
        states = {p["part"]: p["state"] for p in row["part_boxes"]}
        assert states == expected
        x1, y1, x2, y2 = row["box_px"]
        parts = {p["part"]: p["box_px"] for p in row["part_boxes"]}
        k = np.asarray(row["keypoints"])
        hip = parts["hip"]
        pelvis = (k[11, :2] + k[12, :2]) / 2
        assert hip[0] < pelvis[0] < hip[2] and hip[1] < pelvis[1] < hip[3]
        assert all(b[0] >= x1 and b[1] >= y1 and b[2] <= x2 and b[3] <= y2 for b in parts.values())
    table = outputs.rows_to_table(result.rows)
    assert table.column("pasta_vocab").to_pylist() == ["kinetics-tps"] * n_rows


FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "synth_st_a2v"


@pytest.fixture(scope="module")
def heldout(tmp_path_factory):
    """Four 10 s synthetic videos (one per video class) from a seed the fixture model never saw, GT for all in one
    CSV, their proposals in one pickle."""
    from partwise.data import ava

    root = _synth(tmp_path_factory.mktemp("heldout") / "syn", seed=7, videos=4, seconds=10)
    ava.write_records(pq.read_table(root / "truth.parquet"), root / "gt.csv")
    proposals = {}
    for path in (root / "ava").glob("ava_dense_proposals_*.pkl"):
        proposals.update(ava.read_proposals(path))
    ava.write_proposals(proposals, root / "proposals.pkl")
    return root


def _eval_json(argv, capsys) -> dict:
    import json

    from partwise.cli import main

    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_trained_model_output_matches_ground_truth_well_above_the_prior(heldout, tmp_path, capsys):
    """partwise run with the fixture model (trained on other synthetic videos), scored by partwise eval ava for
    actions and PaSta, against the same boxes scored by the training set's label frequencies."""
    import json

    import pyarrow as pa

    from partwise import vocab
    from partwise.cli import main

    out = tmp_path / "out"
    # by name: the shipped copy of the fixture model (partwise/models/data/synth_st_activity2vec.pt)
    assert main(["run", str(heldout / "videos"), "--out", str(out), "--model", "synth-st-activity2vec",
                 "--boxes", str(heldout / "proposals.pkl"), "--pose", "none", "--no-video", "--ava-csv",
                 "--no-progress"]) == 0
    capsys.readouterr()
    table = pq.read_table(out / "persons.parquet")
    prior = json.loads((FIXTURE / "prior.json").read_text())
    action_prior = np.zeros(80, np.float32)
    for action, freq in prior["actions"].items():
        action_prior[int(action) - 1] = freq
    pasta_vocab = vocab.load("pasta_ava87")
    pasta_prior = np.zeros(87, np.float32)
    for name, freq in prior["pasta"].items():
        pasta_prior[pasta_vocab.id_of(name) - 1] = freq
    priored = table.set_column(table.schema.get_field_index("action_scores"), "action_scores",
                               pa.array([action_prior.tolist()] * table.num_rows, pa.list_(pa.float32())))
    priored = priored.set_column(table.schema.get_field_index("pasta_probs"), "pasta_probs",
                                 pa.array([pasta_prior.tolist()] * table.num_rows, pa.list_(pa.float32())))
    outputs.write_ava_detections(priored, tmp_path / "prior_actions.csv")
    outputs.write_ava_detections(priored, tmp_path / "prior_pasta.csv", "pasta_probs", 87)

    labelmap = str(heldout / "ava" / "ava_action_list_v2.2_for_activitynet_2019.pbtxt")
    common = ["eval", "ava", "--gt", str(heldout / "gt.csv"), "--labelmap", labelmap, "--json"]
    model_actions = _eval_json(common + ["--pred", str(out / "ava_detections.csv")], capsys)["mAP"]
    prior_actions = _eval_json(common + ["--pred", str(tmp_path / "prior_actions.csv")], capsys)["mAP"]

    # PaSta GT as an AVA-style CSV with PaSta ids 1..87 in the action column (what --pasta reads)
    from partwise.data import ava

    truth = pq.read_table(heldout / "truth.parquet")
    ids = [[pasta_vocab.id_of(n) for n in names] for names in truth.column("pasta").to_pylist()]
    pasta_truth = truth.set_column(truth.schema.get_field_index("actions"), "actions", pa.array(ids, pa.list_(pa.int32())))
    ava.write_csv(ava.records_to_csv_table(pasta_truth, str(tmp_path / "pasta_gt.csv")), tmp_path / "pasta_gt.csv")
    common = ["eval", "ava", "--pasta", "--gt", str(tmp_path / "pasta_gt.csv"), "--json"]
    model_pasta = _eval_json(common + ["--pred", str(out / "ava_pasta_detections.csv")], capsys)["mAP"]
    prior_pasta = _eval_json(common + ["--pred", str(tmp_path / "prior_pasta.csv")], capsys)["mAP"]
    print(f"actions {model_actions:.3f} vs prior {prior_actions:.3f}; pasta {model_pasta:.3f} vs prior {prior_pasta:.3f}")
    # measured when the fixture was made: actions 0.38 vs 0.28, PaSta 0.36 vs 0.22 (another seed, 3: 0.50 vs 0.29,
    # 0.36 vs 0.23); a pipeline that fed the model wrong clips, boxes or scales falls to the prior or below
    assert model_actions > max(prior_actions + 0.08, 1.25 * prior_actions)
    assert model_pasta > max(prior_pasta + 0.08, 1.25 * prior_pasta)


def test_window_velocities_by_hand():
    from partwise.infer.pipeline import window_velocities

    tracks = np.zeros((2, 3, 17, 3))
    tracks[0, :, :, 2] = 0.9
    tracks[0, :, :, 0] = np.array([0.0, 10.0, 20.0])[:, None]      # x moves 10 px per sample
    tracks[0, :, :, 1] = 50.0
    tracks[1, :, :, 2] = 0.1                                       # never seen well: unknown
    v = window_velocities(tracks, np.array([10, 12, 14]))           # samples 2 frames apart
    np.testing.assert_allclose(v[0], [5.0, 0.0])
    assert np.isnan(v[1]).all()
