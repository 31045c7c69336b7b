"""The Python API: ``partwise.run(source, **options) -> Results`` (in memory, or through the CLI's files with
``out=DIR``), per-keyframe arrays, the persons table and ``plot()``."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

import partwise

ROOT = Path(__file__).resolve().parents[1]
BASKETBALL = ROOT / "examples" / "real" / "basketball1.png"


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """One 6 s 160x120 synthetic video with two people (seed 5; keyframes 902-904) and its ground-truth boxes as an
    AVA CSV."""
    from partwise.data import ava
    from partwise.synth.generator import SynthConfig, generate

    root = tmp_path_factory.mktemp("clip") / "syn"
    generate(root, SynthConfig(frames=False, seed=5, videos=1, seconds=6, width=160, height=120, people=(2, 2)))
    ava.write_records(pq.read_table(root / "truth.parquet"), root / "gt.csv")
    (video,) = (root / "videos").iterdir()
    return root, video


def test_import_stays_light():
    code = "import sys, partwise; print(sorted(m for m in ('torch', 'partwise.infer.pipeline') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert partwise.run is partwise.api.run


def test_real_image_two_people_with_keypoints_inside_their_boxes():
    results = partwise.run(str(BASKETBALL), progress=False)
    assert results.warnings == [] and results.failed == []
    assert len(results) == 1 and results.videos == ["basketball1.png"]
    frame = results[0]
    assert results["basketball1.png"] == [frame]
    assert len(frame) == 2 and frame.boxes.shape == (2, 4) and frame.keypoints.shape == (2, 17, 3)
    assert frame.part_boxes.shape == (2, 10, 4) and len(frame.part_states) == 2
    for box, keypoints in zip(frame.boxes, frame.keypoints):
        grow = np.array([-1, -1, 1, 1]) * 0.1 * np.tile(box[2:] - box[:2], 2)
        x1, y1, x2, y2 = box + grow
        seen = keypoints[keypoints[:, 2] > 0.3]
        inside = (seen[:, 0] >= x1) & (seen[:, 0] <= x2) & (seen[:, 1] >= y1) & (seen[:, 1] <= y2)
        assert len(seen) >= 5 and inside.mean() >= 0.8, (box, seen)
    assert results.table().num_rows == 2
    assert results.metadata["sources"]["pose"][0]["name"] == "movenet-multipose"
    original = np.asarray(Image.open(BASKETBALL).convert("RGB"))
    drawn = frame.plot()
    assert drawn.shape == original.shape == (480, 640, 3) and drawn.dtype == np.uint8
    assert (drawn != original).any(axis=2).mean() > 0.005  # boxes, skeletons and labels


def test_video_with_boxes_arrays_match_the_table_and_the_files(clip, tmp_path, monkeypatch):
    monkeypatch.setenv("PARTWISE_WEIGHTS", str(tmp_path / "no_weights"))  # no optional object detector: fast
    root, video = clip
    results = partwise.run(video, boxes=str(root / "gt.csv"), pose="none", progress=False)
    table = results.table()
    assert isinstance(table, pa.Table) and table.num_rows > 0
    assert sum(len(f) for f in results) == table.num_rows
    truth = pq.read_table(root / "truth.parquet")
    assert sorted({f.frame_index for f in results}) == sorted(set(truth.column("frame_index").to_pylist()))
    for frame in results:
        n = len(frame)
        assert frame.boxes.shape == (n, 4) and frame.scores.shape == (n,) and frame.track_ids.shape == (n,)
        assert frame.keypoints.shape == (n, 17, 3) and frame.part_boxes.shape == (n, 10, 4)
        assert len(frame.part_states) == len(frame.pasta) == len(frame.actions) == len(frame.objects) == n
        rows = [r for r in table.to_pylist() if r["frame_index"] == frame.frame_index]
        assert frame.track_ids.tolist() == [r["track_id"] for r in rows] == [r["person_id"] for r in rows]
        assert frame.boxes.tolist() == [[r["px1"], r["py1"], r["px2"], r["py2"]] for r in rows]
        # without pose every part box is the person box
        assert np.allclose(frame.part_boxes, frame.boxes[:, None, :])
    assert len({tuple(f.track_ids) for f in results}) == 1 and len(results[0]) == 2  # two people, tracked
    assert results.videos == [video.stem] and results[video.stem] == list(results) == results.frames
    with pytest.raises(KeyError, match="no such input"):
        results["other"]
    # plot: the decoded frame with the people drawn on it; save_plot writes it as PNG
    frame = results[-1]
    from partwise.data.video import read_frames

    original = read_frames(video, np.array([frame.frame_index]))[0]
    drawn = frame.plot()
    assert drawn.shape == original.shape == (120, 160, 3) and (drawn != original).any()
    path = results.save_plot(tmp_path / "frame.png", frame=(frame.video_id, frame.frame_index))
    assert np.array_equal(np.asarray(Image.open(path)), drawn)
    # out=DIR: the CLI's files, and the same results read back
    out = tmp_path / "out"
    on_disk = partwise.run(video, out=out, boxes=str(root / "gt.csv"), pose="none", video=False, progress=False)
    assert (out / "persons.parquet").is_file() and (out / "run.json").is_file() and on_disk.out == out
    assert on_disk.table().equals(table)
    assert [f.track_ids.tolist() for f in on_disk] == [f.track_ids.tolist() for f in results]


def test_synthetic_model_warns_once_and_bad_options_are_errors(clip, tmp_path, monkeypatch):
    from partwise.api import SyntheticWeightsWarning
    from partwise.errors import ConfigError

    monkeypatch.setenv("PARTWISE_WEIGHTS", str(tmp_path / "no_weights"))
    root, video = clip
    with pytest.warns(SyntheticWeightsWarning, match="synth-person-detector was trained on synthetic") as caught:
        results = partwise.run(video, detector="synth-person-detector", pose="none", progress=False)
    assert len([w for w in caught if issubclass(w.category, SyntheticWeightsWarning)]) == 1
    assert len(results.warnings) == 1 and results.metadata["sources"]["detector"]["domain"] == "synthetic"
    with pytest.raises(TypeError, match="unknown option"):
        partwise.run(video, no_such_option=1)
    with pytest.raises(ConfigError, match="--fps must be a positive number, got 0"):
        partwise.run(video, fps=0)
    with pytest.raises(TypeError, match="out=DIR"):
        partwise.run(video, boxes=str(root / "gt.csv"), pose="none", tps_json=True)
