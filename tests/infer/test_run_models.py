"""``partwise run`` with models by name, the Activity2Vec and AVA-detector families, a person detector, a video
classifier, and the Kinetics-TPS JSON's vocabulary."""
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from partwise.cli import main
from partwise.errors import ConfigError
from partwise.infer import pipeline
from partwise.infer.pipeline import RunOptions
from partwise.models import weights
from tests.infer.test_pipeline import _StaticPose  # a still person, both wrists above the nose


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """One 4 s 160x120 synthetic video with two people (seed 5) and its ground-truth boxes as one AVA CSV."""
    from partwise.data import ava
    from partwise.synth.generator import SynthConfig, generate

    root = tmp_path_factory.mktemp("clip") / "syn"
    generate(root, SynthConfig(frames=False, seed=5, videos=1, seconds=4, width=160, height=120, people=(2, 2)))
    ava.write_records(pq.read_table(root / "truth.parquet"), root / "gt.csv")
    (video,) = (root / "videos").iterdir()
    return root, video


def _rows(out: Path) -> list[dict]:
    return pq.read_table(out / "persons.parquet").to_pylist()


# ---------------------------------------------------------------------------------------------------------------
# names


def test_known_names_resolve_to_package_data_then_the_weights_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(weights.WEIGHTS_ENV, str(tmp_path / "w"))
    path, entry = weights.resolve("synth-st-activity2vec")
    assert path == weights.package_data_dir() / "synth_st_activity2vec.pt" and entry.family == "st_activity2vec"
    # the shipped file is the trained fixture model
    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "synth_st_a2v" / "model.pt"
    assert path.read_bytes() == fixture.read_bytes()
    with pytest.raises(ConfigError) as err:
        weights.resolve("hake-activity2vec")
    message = str(err.value)
    assert "\n" not in message and str(tmp_path / "w" / "hake" / "pretrained_model.pth") in message
    assert "HAKE-Action-Torch" in message
    (tmp_path / "w" / "hake").mkdir(parents=True)
    (tmp_path / "w" / "hake" / "pretrained_model.pth").write_bytes(b"x")
    assert weights.resolve("hake-activity2vec")[0] == tmp_path / "w" / "hake" / "pretrained_model.pth"
    with pytest.raises(ConfigError, match="neither a checkpoint file nor a known model name"):
        weights.resolve("no-such-model")
    with pytest.raises(ConfigError, match="no such checkpoint file"):
        weights.resolve(str(tmp_path / "missing.pt"))
    assert main(["models", "list"]) == 0
    listing = capsys.readouterr().out
    lines = {line.split()[0]: line for line in listing.splitlines() if line.split()}
    assert lines["synth-st-activity2vec"].split()[-1] == "shipped" and "synthetic" in lines["synth-st-activity2vec"]
    assert lines["hake-activity2vec"].split()[-1] == "yes" and str(tmp_path / "w") in listing
    assert all(name in lines for name in weights.KNOWN_WEIGHTS)
    # a missing name is a usage error (exit 2, one line) before any input is touched
    out = tmp_path / "out"
    (tmp_path / "a.mp4").write_bytes(b"not decoded: the model is checked first")
    (tmp_path / "b.csv").write_text("a,0902,0.1,0.1,0.5,0.9,1,1\n")
    assert main(["run", str(tmp_path / "a.mp4"), "--out", str(out), "--model", "mmaction2-slowonly-r50-4x16-ava21",
                 "--boxes", str(tmp_path / "b.csv")]) == 2
    err_lines = capsys.readouterr().err.strip().splitlines()
    assert len(err_lines) == 1 and "mmaction2 model zoo" in err_lines[0] and not out.exists()


def test_family_mismatch_is_one_line(tmp_path):
    from partwise.errors import InputError

    with pytest.raises(ConfigError, match="--detector synth-st-activity2vec: a st_activity2vec model"):
        pipeline.load_detector("synth-st-activity2vec")
    shipped = weights.package_data_dir() / "synth_st_activity2vec.pt"
    with pytest.raises(InputError, match="--video-model needs a video_classifier checkpoint, got 'st_activity2vec'"):
        pipeline.load_video_model(str(shipped))


# ---------------------------------------------------------------------------------------------------------------
# model families


def test_activity2vec_gives_pasta93_verbs_and_f_pasta(clip, tmp_path):
    """A random small Activity2Vec: each row's probabilities equal the model run directly on the keyframe, and the
    activity vector's language half is the PaSta probabilities times the shipped MiniLM matrix."""
    from partwise import vocab
    from partwise.data.video import read_frames
    from partwise.models.activity2vec import Activity2Vec, Activity2VecConfig, load_language_matrix, preprocess
    from partwise.models.checkpoint import save_model

    root, video = clip
    torch.manual_seed(0)
    model = Activity2Vec(Activity2VecConfig(hidden=16)).eval()
    ckpt = tmp_path / "a2v.pt"
    save_model(model, ckpt)
    out = tmp_path / "out"
    summary = pipeline.run(video, out, RunOptions(boxes=str(root / "gt.csv"), model=str(ckpt), pose="none",
                                                  video=False, progress=False), ava_csv=True, tps_json=True)
    assert summary.failed == []
    rows = _rows(out)
    truth = pq.read_table(root / "truth.parquet")
    assert len(rows) == truth.num_rows
    verbs = vocab.load("verbs157")
    language = load_language_matrix().numpy()
    for row in rows[:3]:
        assert row["pasta_vocab"] == "pasta93" and len(row["pasta_probs"]) == 93
        assert row["pasta"] == [vocab.load("pasta93").names[i] for i in np.argsort(row["pasta_probs"])[::-1][:5]]
        assert row["actions"] == [] and row["action_scores"] is None and row["action_vocab"] is None
        assert len(row["verb_scores"]) == 157
        assert row["verbs"] == [verbs.names[i] for i in np.argsort(row["verb_scores"])[::-1][:5]]
        vector = np.asarray(row["activity_vector"])
        assert len(vector) == 6 * 16 + 768
        assert np.allclose(vector[96:], np.asarray(row["pasta_probs"]) @ language, atol=1e-4)
        frame = read_frames(video, np.array([row["frame_index"]]))[0]
        box = torch.tensor([[0.0, row["px1"], row["py1"], row["px2"], row["py2"]]])
        with torch.no_grad():
            direct = model(preprocess(frame), box, box[:, None].repeat(1, 10, 1), torch.zeros(1, 1, 64, 64))
        assert np.allclose(row["pasta_probs"], direct["p_pasta"][0].numpy(), atol=1e-4)
        assert np.allclose(row["verb_scores"], direct["p_verb"][0].numpy(), atol=1e-4)
    # no AVA actions and no pasta_ava87 rows: the AVA CSVs are empty; no part states without pose or a TPS model
    assert (out / "ava_detections.csv").read_text() == "" and (out / "ava_pasta_detections.csv").read_text() == ""
    part_result = json.loads((out / "kinetics_tps" / "pred_part_result.json").read_text())
    assert all(h["parts"] == {} for frame in part_result[video.stem].values() for h in frame["humans"])
    meta = json.loads((out / "run.json").read_text())
    assert meta["model"]["family"] == "activity2vec" and meta["model"]["pasta_vocab"] == "pasta93"
    assert meta["model"]["verb_vocab"] == "verbs157" and meta["persons_from"] == "boxes"


def test_ava_detector_gives_the_80_actions(clip, tmp_path):
    """A random small mmaction2-style detector (81 outputs, column 0 background): the row's 80 action scores are
    columns 1..80 of the detector run directly on the keyframe's clip."""
    from partwise.data.video import clip_around, probe, read_frames
    from partwise.models import create_model
    from partwise.models.checkpoint import save_model

    root, video = clip
    torch.manual_seed(0)
    model = create_model("slowonly_r50_4x16", base_channels=8).eval()
    ckpt = tmp_path / "det.pt"
    save_model(model, ckpt, extra={"data": {"clip_len": 4, "frame_interval": 4, "test_short_side": 96}})
    out = tmp_path / "out"
    assert pipeline.run(video, out, RunOptions(boxes=str(root / "gt.csv"), model=str(ckpt), pose="none",
                                               video=False, progress=False), ava_csv=True).failed == []
    rows = _rows(out)
    row = rows[0]
    assert len(row["action_scores"]) == 80 and row["action_vocab"] == "ava80"
    assert row["pasta"] == [] and row["pasta_probs"] is None and row["activity_vector"] is None
    info = probe(video)
    frames = read_frames(video, clip_around(row["frame_index"], 4, 4, info.num_frames))
    h, w = 96, int(160 * 96 / 120 + 0.5)
    clip_t = torch.nn.functional.interpolate(torch.from_numpy(frames).float().permute(0, 3, 1, 2), size=(h, w),
                                             mode="bilinear", align_corners=False, antialias=True)
    clip_t = model.normalize(clip_t.permute(1, 0, 2, 3)[None])
    s = w / 160
    roi = torch.tensor([[0.0, row["px1"] * s, row["py1"] * 96 / 120, row["px2"] * s, row["py2"] * 96 / 120]])
    expected = model.predict(clip_t, roi)[0, 1:].numpy()
    assert np.allclose(row["action_scores"], expected, atol=1e-4)
    assert len((out / "ava_detections.csv").read_text().splitlines()) == 80 * len(rows)
    assert (out / "ava_pasta_detections.csv").read_text() == ""


# ---------------------------------------------------------------------------------------------------------------
# person detector and video classifier (fakes with the real APIs; the shipped models are tested below)


class _FakeDetector:
    """``detect_people``-compatible: returns two fixed people per frame and records each call."""

    boxes = np.array([[20.0, 10.0, 60.0, 110.0, 0.9], [90.0, 15.0, 130.0, 115.0, 0.8]])

    def __init__(self):
        self.calls = []

    def __call__(self, model, frames, score_threshold=0.3, nms_iou=0.5, max_people=10):
        assert frames.dtype == np.uint8 and frames.ndim == 4 and frames.shape[1:] == (120, 160, 3)
        self.calls.append((len(frames), score_threshold, nms_iou, max_people))
        return [self.boxes.copy() for _ in frames]


def test_detector_is_the_person_source_without_boxes(clip, tmp_path, monkeypatch):
    root, video = clip
    fake = _FakeDetector()
    monkeypatch.setattr(pipeline, "load_detector", lambda spec: pipeline.LoadedDetector(None, fake, spec, spec))
    out = tmp_path / "out"
    opts = RunOptions(detector="fake", detector_threshold=0.4, max_people=3, pose="none", video=False,
                      progress=False)
    assert pipeline.run(video, out, opts).failed == []
    rows = _rows(out)
    keyframes = sorted({r["frame_index"] for r in rows})
    assert keyframes == [0, 30, 60, 90]  # 1 Hz over 4 s at 30 fps
    assert fake.calls == [(4, 0.4, 0.5, 3)]  # one batch for the (up to 8) keyframes of a prefetch group
    assert len(rows) == 8 and sorted({r["track_id"] for r in rows}) == [1, 2]
    for r in rows:
        expected = _FakeDetector.boxes[0 if r["track_id"] == 1 else 1]
        assert [r["px1"], r["py1"], r["px2"], r["py2"], r["score"]] == pytest.approx(expected.tolist())
    assert json.loads((out / "run.json").read_text())["persons_from"] == "detector"
    # --boxes take precedence: the detector is not asked
    fake.calls.clear()
    opts = RunOptions(boxes=str(root / "gt.csv"), detector="fake", pose="none", video=False, progress=False)
    assert pipeline.run(video, tmp_path / "out2", opts).failed == [] and fake.calls == []


def _fake_predict(model, read_frames, num_frames):
    """``predict_video``-compatible: P(bright) = mean intensity of the first and last frames / 255."""
    frames = read_frames(np.array([0, num_frames - 1]))
    assert frames.shape[0] == 2 and frames.dtype == np.uint8
    bright = frames.mean() / 255
    return np.array([bright, 1 - bright, 0.0])


def test_video_classifier_writes_the_class_everywhere(clip, tmp_path, monkeypatch, capsys):
    from partwise.data.video import probe, read_frames

    root, video = clip
    monkeypatch.setattr(pipeline, "load_video_model", lambda spec: pipeline.LoadedVideoModel(
        None, _fake_predict, ("bright", "dark", "never"), spec, spec))
    n = probe(video).num_frames
    bright = read_frames(video, np.array([0, n - 1])).mean() / 255
    expected = [("bright", bright), ("dark", 1 - bright), ("never", 0.0)]
    expected.sort(key=lambda c: -c[1])
    out = tmp_path / "out"
    argv = ["run", str(video), "--out", str(out), "--boxes", str(root / "gt.csv"), "--pose", "none",
            "--no-video", "--no-progress", "--tps-json"]
    assert main(argv + ["--video-model", "fake"]) == 0
    stdout = capsys.readouterr().out
    assert "note:" not in stdout
    assert json.loads((out / "kinetics_tps" / "pred_vid_result.json").read_text()) == {video.stem: expected[0][0]}
    meta = json.loads((out / "run.json").read_text())
    got = meta["videos"][video.stem]["classes"]
    assert [c for c, _ in got] == [c for c, _ in expected] and np.allclose([p for _, p in got],
                                                                           [p for _, p in expected])
    assert {r["video_label"] for r in _rows(out)} == {expected[0][0]}
    assert f"{expected[0][0]} ({expected[0][1]:.2f})" in (out / "index.html").read_text()
    # without --video-model: only the part file, and one line saying why
    assert main(argv + ["--overwrite"]) == 0
    notes = [line for line in capsys.readouterr().out.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "pred_vid_result.json needs --video-model" in notes[0]
    assert not (out / "kinetics_tps" / "pred_vid_result.json").exists()
    assert (out / "kinetics_tps" / "pred_part_result.json").is_file()
    assert {r["video_label"] for r in _rows(out)} == {None}


# ---------------------------------------------------------------------------------------------------------------
# Kinetics-TPS JSON: TPS state tags only


def test_learned_pasta_never_enters_the_tps_json(clip, tmp_path, monkeypatch):
    """With a PaSta model (the shipped synthetic ST-Activity2Vec, by name) and pose, the part states and the TPS JSON
    hold the kinematic states only; the model's PaSta names are in the PaSta columns."""
    from partwise.infer import outputs
    from partwise.infer.pipeline import InputItem, process_item

    root, video = clip
    model = pipeline.load_run_model("synth-st-activity2vec")
    assert model.pasta_vocab == "pasta_ava87" and model.name == "synth-st-activity2vec"
    opts = RunOptions(progress=False, state_threshold=0.0)  # a threshold every PaSta state passes
    result = process_item(InputItem(video, video.stem, "video"), opts, boxes=pipeline.load_boxes(root / "gt.csv"),
                          model=model, pose=_StaticPose())
    kinematic = {"head": "none", "hip": "stand", "left_arm": "none", "right_arm": "none", "left_hand": "raise",
                 "right_hand": "raise", "left_leg": "stand", "right_leg": "stand", "left_foot": "none",
                 "right_foot": "none"}
    table = outputs.rows_to_table(result.rows)
    for row in table.to_pylist():
        assert {p["part"]: p["state"] for p in row["part_boxes"]} == kinematic
        assert row["pasta_vocab"] == "pasta_ava87" and all(": " in s for s in row["pasta"])
    verbs = {v for frame in outputs.tps_part_result(table)[video.stem].values() for h in frame["humans"]
             for part in h["parts"].values() for v in part["verb"]}
    assert verbs == {"none", "stand", "raise"}


def test_tps_state_overrides_take_each_parts_best_tps_state():
    names = ("right_hand: raise", "right_hand: swing", "head: turn", "hand: hold", "left_leg: bend")
    probs = np.array([0.6, 0.7, 0.4, 0.99, 0.5])
    assert pipeline.tps_state_overrides(probs, names, 0.5) == {"right_hand": "swing", "left_leg": "bend"}
    assert pipeline.tps_state_overrides(probs, names, 0.8) == {}


def test_hake_activity2vec_by_name_with_pose_uses_part_boxes_and_skeletons(clip, tmp_path, monkeypatch):
    """HAKE's released checkpoint layout (random weights of its exact keys and shapes) put where the name
    ``hake-activity2vec`` looks: the run feeds the pose's part boxes and skeleton maps, as a direct forward does."""
    from partwise.data.video import read_frames
    from partwise.infer.pipeline import InputItem, process_item
    from partwise.models.activity2vec import preprocess
    from partwise.models.pose_parts import skeleton_map
    from tests.models.test_activity2vec import hake_state_dict

    root, video = clip
    monkeypatch.setenv(weights.WEIGHTS_ENV, str(tmp_path))
    (tmp_path / "hake").mkdir()
    torch.save({"model_state_dict": hake_state_dict(seed=3)}, tmp_path / "hake" / "pretrained_model.pth")
    model = pipeline.load_run_model("hake-activity2vec")
    assert model.family == "activity2vec" and model.skeletons and model.clip.short_side == 0
    result = process_item(InputItem(video, video.stem, "video"), RunOptions(progress=False),
                          boxes=pipeline.load_boxes(root / "gt.csv"), model=model, pose=_StaticPose())
    row = result.rows[0]
    frame = read_frames(video, np.array([row["frame_index"]]))[0]
    keypoints = np.asarray(row["keypoints"])
    human = torch.tensor([[0.0, *row["box_px"]]])
    parts = torch.tensor([[[0.0, *p["box_px"]] for p in row["part_boxes"]]])
    assert not torch.equal(parts[0, :, 1:], human[:, 1:].repeat(10, 1))  # pose gave real part boxes
    skeleton = torch.from_numpy(skeleton_map(keypoints, (160, 120)))[None, None]
    assert skeleton.sum() > 0
    with torch.no_grad():
        direct = model.model(preprocess(frame), human, parts, skeleton)
    assert np.allclose(row["pasta_probs"], direct["p_pasta"][0].numpy(), atol=1e-4)
    assert np.allclose(row["activity_vector"], direct["f_pasta"][0].numpy(), atol=1e-3)
    assert len(row["activity_vector"]) == 3072 + 768


# ---------------------------------------------------------------------------------------------------------------
# the shipped synthetic person detector and video classifier, end to end


def _shipped(name: str) -> None:
    if weights.find_file(weights.KNOWN_WEIGHTS[name]) is None:
        pytest.skip(f"{weights.KNOWN_WEIGHTS[name].file} is not shipped in this checkout")


@pytest.fixture(scope="module")
def four_videos(tmp_path_factory):
    """``partwise synth --seed 5 --videos 4 --seconds 10`` at the default size (one video per synthetic class), and
    every video's ground-truth boxes in one AVA CSV."""
    from partwise.data import ava

    root = tmp_path_factory.mktemp("four") / "syn"
    assert main(["synth", str(root), "--seed", "5", "--videos", "4", "--seconds", "10", "--no-progress"]) == 0
    ava.write_records(pq.read_table(root / "truth.parquet"), root / "gt.csv")
    return root


def test_shipped_detector_finds_and_tracks_the_truth_people(four_videos, tmp_path, capsys):
    _shipped("synth-person-detector")
    all_truth = pq.read_table(four_videos / "truth.parquet").to_pylist()
    people = {}
    for r in all_truth:
        people.setdefault(r["video_id"], set()).add(r["person_id"])
    crowded = max(sorted(people), key=lambda v: len(people[v]))  # the video with the most people
    video = four_videos / "videos" / f"{crowded}.mp4"
    out = tmp_path / "out"
    assert main(["run", str(video), "--out", str(out), "--detector", "synth-person-detector", "--pose", "none",
                 "--no-video", "--no-progress"]) == 0
    capsys.readouterr()
    truth = [r for r in all_truth if r["video_id"] == crowded]
    frames = sorted({r["frame_index"] for r in truth})
    rows = _rows(out)
    assert set(frames) <= {r["frame_index"] for r in rows}  # the run's 1 Hz keyframes include the truth's
    rows = [r for r in rows if r["frame_index"] in frames]
    matched, tracks = 0, {}
    for f in frames:
        gt = [r for r in truth if r["frame_index"] == f]
        pred = [r for r in rows if r["frame_index"] == f]
        if not pred:
            continue
        iou = _iou_px(gt, pred)
        for g, p in enumerate(iou.argmax(1)):
            if iou[g, p] >= 0.5:
                matched += 1
                tracks.setdefault(gt[g]["person_id"], []).append(pred[p]["track_id"])
    precision = sum(_iou_px([r], [t for t in truth if t["frame_index"] == r["frame_index"]]).max() >= 0.5
                    for r in rows) / max(len(rows), 1)
    recall = matched / len(truth)
    # identity consistency: the share of each person's matched keyframes that carry that person's usual track id
    usual = {person: max(set(ids), key=ids.count) for person, ids in tracks.items()}
    consistency = sum(ids.count(usual[person]) for person, ids in tracks.items()) / max(matched, 1)
    print(f"detector on {video.stem}: recall {recall:.2f}, precision {precision:.2f}, identity consistency "
          f"{consistency:.2f}, tracks {tracks}")
    # measured with the shipped detector: recall 0.89, precision 1.00, consistency 0.80 (one person hidden behind
    # another for a keyframe swaps two ids); one new id per keyframe would score about 1 / 7
    assert recall >= 0.8 and precision >= 0.8
    assert consistency >= 0.7 and len(set(usual.values())) == len(usual)  # different people, different ids


def _iou_px(a: list[dict], b: list[dict]) -> np.ndarray:
    from partwise.infer.tracking import iou_matrix

    box = lambda r: [r["px1"], r["py1"], r["px2"], r["py2"]]  # noqa: E731
    return iou_matrix(np.array([box(r) for r in a]).reshape(-1, 4), np.array([box(r) for r in b]).reshape(-1, 4))


def test_shipped_video_classifier_names_the_synthetic_classes(four_videos, tmp_path, capsys):
    _shipped("synth-video-classifier")
    out = tmp_path / "out"
    assert main(["run", str(four_videos / "videos"), "--out", str(out), "--video-model", "synth-video-classifier",
                 "--boxes", str(four_videos / "gt.csv"), "--pose", "none", "--no-video",
                 "--no-progress", "--tps-json"]) == 0
    capsys.readouterr()
    from partwise.data.video import probe, read_frames
    from partwise.models.video_classifier import predict_video

    truth = pq.read_table(four_videos / "truth.parquet").to_pylist()
    labels = {r["video_id"]: r["video_label"] for r in truth}
    predicted = json.loads((out / "kinetics_tps" / "pred_vid_result.json").read_text())
    assert sorted(predicted) == sorted(labels)
    # the run's classes are the classifier's own reading of each whole video
    model = weights.load("synth-video-classifier", ("video_classifier",)).model
    meta = json.loads((out / "run.json").read_text())["videos"]
    for vid in labels:
        path = four_videos / "videos" / f"{vid}.mp4"
        probs = predict_video(model, lambda idx: read_frames(path, idx), probe(path).num_frames)
        top = np.argsort(-probs, kind="stable")[:3]
        assert [c for c, _ in meta[vid]["classes"][:3]] == [model.cfg.class_names[i] for i in top]
        assert np.allclose([p for _, p in meta[vid]["classes"][:3]], probs[top], atol=1e-6)
    correct = sum(predicted[v] == labels[v] for v in labels)
    print(f"video classes: {correct} of {len(labels)} right: {predicted} vs {labels}")
    # chance is 1 of 4 per video; the shipped model of 01:45 measured 2 of 4 here (an earlier one 3 of 4; 2 to 4 of
    # 4 on seeds 3, 5, 7): a weak bound on accuracy, the plumbing is checked exactly above
    assert correct >= 2


def test_mmaction2_checkpoint_by_name_gets_the_tables_sampling(clip, tmp_path, monkeypatch):
    """An mmaction2-named AVA detector file (a small SlowOnly R50 in mmaction2's key names) where the name
    ``mmaction2-slowonly-r50-4x16-ava21`` looks: rebuilt from its weights, sampled 4x16 at short side 256."""
    from partwise.models import create_model

    root, video = clip
    torch.manual_seed(1)
    model = create_model("slowonly_r50_8x8", base_channels=8).eval()
    state = {("roi_head.bbox_head." + k[len("head."):] if k.startswith("head.") else k): v
             for k, v in model.state_dict().items()}
    entry = weights.KNOWN_WEIGHTS["mmaction2-slowonly-r50-4x16-ava21"]
    monkeypatch.setenv(weights.WEIGHTS_ENV, str(tmp_path))
    (tmp_path / entry.file).parent.mkdir(parents=True)
    torch.save({"state_dict": state, "meta": {}}, tmp_path / entry.file)
    loaded = pipeline.load_run_model(entry.name)
    assert loaded.family == "ava_detector" and loaded.pasta_vocab is None
    assert (loaded.clip.clip_len, loaded.clip.frame_interval, loaded.clip.short_side) == (4, 16, 256)
    # the weights arrive whole: the run's (BatchNorm-folded, fused) model gives the original's outputs
    clip_in = torch.rand(1, 3, 4, 64, 64, generator=torch.Generator().manual_seed(0))
    rois = torch.tensor([[0, 4.0, 6.0, 40.0, 60.0], [0, 20.0, 2.0, 62.0, 50.0]])
    with torch.no_grad():
        assert torch.allclose(loaded.model(clip_in, rois), model(clip_in, rois), atol=1e-4, rtol=0)
    out = tmp_path / "out"
    assert pipeline.run(video, out, RunOptions(boxes=str(root / "gt.csv"), model=entry.name, pose="none",
                                               video=False, progress=False)).failed == []
    assert all(len(r["action_scores"]) == 80 for r in _rows(out))


def test_shipped_activity2vec_gets_its_training_inputs():
    """The shipped synthetic Activity2Vec was trained on keypoint skeleton maps at short side 240: the run feeds it
    the same, and its activity vector carries the MiniLM language half."""
    _shipped("synth-activity2vec")
    from partwise.models.activity2vec import load_language_matrix

    loaded = pipeline.load_run_model("synth-activity2vec")
    extra = weights.load("synth-activity2vec", ("activity2vec",)).extra
    assert loaded.skeletons == bool(extra.get("skeletons"))
    assert loaded.clip.short_side == extra["data"]["test_short_side"]
    assert torch.equal(loaded.model.language_matrix, load_language_matrix())


def test_top_states_skip_no_interaction_and_keep_order():
    from partwise.infer.pipeline import top_states

    names = ["hand: no_interaction", "hand: hold", "foot: walk", "foot: no_interaction", "head: look at"]
    probs = np.array([0.99, 0.40, 0.70, 0.95, 0.40])
    assert top_states(probs, names, 2).tolist() == [2, 1]
    assert top_states(probs, names, 5).tolist() == [2, 1, 4]  # ties keep vocabulary order; only 3 real states
