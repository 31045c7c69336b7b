"""Honest models: a model trained on synthetic data warns once per run (stderr, run.json, index.html), and run.json
says where every output came from (weights name, file, family, domain, licence, source)."""
import json
import shutil
from pathlib import Path

import pytest
import torch

from partwise.cli import main
from partwise.infer import provenance
from partwise.models import weights

ROOT = Path(__file__).resolve().parents[2]
BASKETBALL = ROOT / "examples" / "real" / "basketball1.png"
WARNING = ("partwise: warning: --detector synth-person-detector was trained on synthetic stick figures, not real "
           "people: its outputs on real video are not meaningful")


@pytest.fixture(scope="module")
def two_videos(tmp_path_factory):
    """Two 4 s 160x120 synthetic videos with one person each (seed 3)."""
    from partwise.synth.generator import SynthConfig, generate

    root = tmp_path_factory.mktemp("two") / "syn"
    generate(root, SynthConfig(frames=False, seed=3, videos=2, seconds=4, width=160, height=120, people=(1, 1)))
    return root


def _warnings(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("partwise: warning:")]


def test_synthetic_detector_warns_once_per_run_everywhere(two_videos, tmp_path, capfd, monkeypatch):
    monkeypatch.setenv(weights.WEIGHTS_ENV, str(tmp_path / "no_weights"))  # no optional object detector: fast
    out = tmp_path / "out"
    argv = ["run", str(two_videos / "videos"), "--out", str(out), "--detector", "synth-person-detector",
            "--pose", "none", "--no-video", "--no-progress"]
    assert main(argv + ["--workers", "2"]) == 0  # two inputs, two worker processes: still one line
    captured = capfd.readouterr()
    assert _warnings(captured.err) == [WARNING] and "2 processed" in captured.out
    meta = json.loads((out / "run.json").read_text())
    assert meta["warnings"] == [WARNING.removeprefix("partwise: warning: ")]
    detector = meta["sources"]["detector"]
    entry = weights.KNOWN_WEIGHTS["synth-person-detector"]
    assert detector["name"] == "synth-person-detector" and detector["family"] == "person_detector"
    assert detector["domain"] == "synthetic" and detector["licence"] == entry.licence == "Apache-2.0 (partwise)"
    assert detector["published"] == entry.published and Path(detector["path"]).name == "synth_person_detector.pt"
    assert meta["sources"]["pose"] is None and meta["sources"]["model"] is None
    assert meta["detector"]["domain"] == "synthetic"
    # the page shows it in a box above the results table
    page = (out / "index.html").read_text()
    assert "class='warnings'" in page and page.index("was trained on synthetic stick figures") < page.index("<table>")
    assert "trained on synthetic data" in page
    # a re-run that skips both inputs still says it once
    assert main(argv) == 0
    assert _warnings(capfd.readouterr().err) == [WARNING]


def test_real_default_has_no_synthetic_warning_and_names_movenet(tmp_path, capfd, monkeypatch):
    monkeypatch.setenv(weights.WEIGHTS_ENV, str(tmp_path / "no_weights"))  # the embedded MultiPose alone
    out = tmp_path / "out"
    assert main(["run", str(BASKETBALL), "--out", str(out), "--no-video", "--no-progress"]) == 0
    captured = capfd.readouterr()
    assert _warnings(captured.err) == [] and "synthetic" not in captured.err
    meta = json.loads((out / "run.json").read_text())
    assert meta["warnings"] == [] and meta["persons_from"] == "pose"
    (pose,) = meta["sources"]["pose"]
    assert pose["name"] == "movenet-multipose" and pose["family"] == "pose" and pose["domain"] == "real"
    assert pose["licence"].startswith("Apache-2.0") and "TF Hub" in pose["published"]
    assert Path(pose["path"]).is_file()
    assert all(meta["sources"][k] is None for k in ("detector", "object_detector", "model", "video_model"))
    assert "class='warnings'" not in (out / "index.html").read_text()


def test_mediapipe_is_described_as_blazepose():
    from partwise.infer.pipeline import RunOptions

    (pose,) = provenance.describe_pose(RunOptions(pose="mediapipe"))
    assert pose["name"] == "mediapipe" and pose["domain"] == "real" and pose["licence"].startswith("Apache-2.0")
    assert provenance.describe_pose(RunOptions(pose="none")) is None


def test_checkpoint_by_path_domain_from_its_contents(tmp_path, monkeypatch):
    shipped = weights.package_data_dir() / "synth_person_detector.pt"
    # a copy of a shipped synthetic model is still synthetic
    copy = tmp_path / "copy.pt"
    shutil.copy(shipped, copy)
    info = provenance.describe_weights(copy, family="person_detector")
    assert info["domain"] == "synthetic" and info["same_file_as"] == "synth-person-detector"
    assert info["licence"] == "Apache-2.0 (partwise)" and info["name"] is None
    line = provenance.synthetic_warnings({"--detector": info})
    assert line == [f"--detector {copy} was trained on synthetic stick figures, not real people (byte-identical to "
                    "the known weights synth-person-detector): its outputs on real video are not meaningful"]
    record = torch.load(shipped, map_location="cpu", weights_only=True)

    def saved(name: str, extra: dict) -> Path:
        path = tmp_path / name
        torch.save({**record, "extra": extra}, path)
        return path

    # what `partwise train` records: its data config; a root holding partwise synth's synth.json is synthetic
    data = tmp_path / "data" / "synth"
    data.mkdir(parents=True)
    (data / "synth.json").write_text(json.dumps({"config": {}, "videos": []}))
    monkeypatch.chdir(tmp_path)
    runs = tmp_path / "runs" / "x"
    runs.mkdir(parents=True)
    trained = saved("runs/x/model.pt", {"task": "person_detector", "data": {"root": "data/synth"}})
    domain, evidence = provenance.checkpoint_domain(trained)[1:]
    assert domain == "synthetic" and "synth.json" in evidence
    monkeypatch.chdir(runs)  # relative roots are also looked up from the folders above the checkpoint
    assert provenance.checkpoint_domain(trained)[1] == "synthetic"
    # the shipped models name the partwise synth command in place of a root
    named = saved("named.pt", {"data": {"root": "partwise synth DATA --seed 1"}})
    assert provenance.checkpoint_domain(named)[1] == "synthetic"
    # a declared domain wins; real data that is not here, or no data config at all: unknown
    assert provenance.checkpoint_domain(saved("real.pt", {"domain": "real", "data": {"root": "x"}}))[1] == "real"
    other = provenance.describe_weights(saved("other.pt", {"data": {"root": "/data/ava"}}))
    assert other["domain"] == "unknown" and "/data/ava" in other["domain_evidence"]
    assert provenance.synthetic_warnings({"--model": other}) == []
    assert provenance.checkpoint_domain(saved("bare.pt", {}))[1] == "unknown"
    missing = provenance.describe_weights("no-such-model")
    assert missing["domain"] == "unknown" and missing["path"] is None
