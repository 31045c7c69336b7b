"""The person_detector task: AP and targets against hand-computed values, a short run that learns, the shipped
synthetic checkpoint on a freshly generated clip, and one-line config errors."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from partwise.errors import ConfigError
from partwise.models.checkpoint import load_model
from partwise.models.person_detector import SYNTH_CHECKPOINT, PersonDetector
from partwise.train.person_detector import (box_prior, center_targets, focal_heatmap_loss, giou_loss, person_ap)
from partwise.train.tasks import TrainModel, load_task, run_task

ROOT = Path(__file__).parents[2]
CONFIG = ROOT / "configs" / "synth_person_detector.yaml"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def test_person_ap_hand_computed():
    gt_image = np.array([0, 0, 1])
    gt_boxes = np.array([[0, 0, 10, 10], [20, 20, 30, 30], [0, 0, 10, 10]], float)
    # listed out of score order on purpose; ranked: TP (A), FP (A already taken), TP (IoU exactly 0.5), FP
    det_image = np.array([1, 0, 0, 0])
    det_boxes = np.array([[0, 0, 10, 20], [1, 1, 10, 10], [0, 0, 10, 10], [50, 50, 60, 60]], float)
    det_scores = np.array([0.7, 0.8, 0.9, 0.6])
    res = person_ap(det_image, det_boxes, det_scores, gt_image, gt_boxes, 0.5)
    # precision 1, 1/2, 2/3, 1/2 at recall 1/3, 1/3, 2/3, 2/3 -> AP = 1/3 * 1 + 1/3 * 2/3
    assert res["AP"] == pytest.approx(5 / 9)
    np.testing.assert_allclose(res["precision"], [1, 1 / 2, 2 / 3, 1 / 2])
    np.testing.assert_allclose(res["recall"], [1 / 3, 1 / 3, 2 / 3, 2 / 3])
    assert person_ap(det_image, det_boxes, det_scores, gt_image, gt_boxes, 0.51)["AP"] == pytest.approx(1 / 3)
    assert person_ap(np.zeros(0), np.zeros((0, 4)), np.zeros(0), gt_image, gt_boxes)["AP"] == 0.0


def test_box_prior_clusters_and_shares():
    left = np.array([[0.1, 0.5, 0.2, 0.9], [0.12, 0.5, 0.22, 0.9], [0.08, 0.5, 0.18, 0.9]])
    right = np.array([[0.7, 0.4, 0.8, 0.8]])
    centres, share = box_prior(np.concatenate([left, right]), k=2)
    order = np.argsort(centres[:, 0])
    np.testing.assert_allclose(centres[order], [left.mean(0), right[0]], atol=1e-12)
    np.testing.assert_allclose(share[order], [0.75, 0.25])


def test_center_targets_and_losses_hand_computed():
    t = center_targets(torch.tensor([[8.0, 8.0, 24.0, 40.0]]), height=12, width=10, stride=4)
    # centre (16, 24) px = (4, 6) cells; 4 x 8 cells
    assert t["cells"].tolist() == [6 * 10 + 4]
    torch.testing.assert_close(t["offset"], torch.zeros(1, 2))
    torch.testing.assert_close(t["size"], torch.tensor([[math.log(4), math.log(8)]]))
    assert t["heatmap"][6, 4] == 1 and (t["heatmap"] < 1).sum() == 12 * 10 - 1
    sigma_x, sigma_y = max(0.54 * 4 / 6, 1 / 3), 0.54 * 8 / 6
    assert float(t["heatmap"][6, 5]) == pytest.approx(math.exp(-1 / (2 * sigma_x ** 2)), rel=1e-5)
    assert float(t["heatmap"][8, 4]) == pytest.approx(math.exp(-4 / (2 * sigma_y ** 2)), rel=1e-5)
    positive = torch.zeros(12, 10, dtype=torch.bool)
    positive[6, 4] = True
    good = torch.where(positive, torch.tensor(6.0), torch.tensor(-6.0))
    assert focal_heatmap_loss(good, t["heatmap"], positive) < 0.01 < focal_heatmap_loss(-good, t["heatmap"], positive)
    box = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    assert float(giou_loss(box, box)[0]) == pytest.approx(0.0)
    # disjoint boxes: IoU 0, hull 4 x 2 = 8, union 8 -> 1 - 0 + 0 = 1; half overlap: IoU 1/3, hull = union -> 2/3
    assert float(giou_loss(box, torch.tensor([[2.0, 0.0, 4.0, 2.0]]))[0]) == pytest.approx(1.0)
    assert float(giou_loss(box, torch.tensor([[1.0, 0.0, 3.0, 2.0]]))[0]) == pytest.approx(2 / 3)
    assert float(giou_loss(box, torch.tensor([[3.0, 0.0, 5.0, 2.0]]))[0]) == pytest.approx(1 + 2 / 10)


SMALL = ["data.scale_range=[64,80]", "data.test_short_side=72", "run.batch_size=6", "run.checkpoint_every=0",
         "optim.lr=0.005", "schedule.warmup_steps=5"]


def test_short_run_lowers_validation_loss_and_evaluates(tmp_path, synth_root):
    runner = load_task(CONFIG, [f"data.root={synth_root}", f"run.out_dir={tmp_path / 'run'}", "run.max_steps=80",
                                *SMALL])
    train_ds, val_ds = runner.datasets()
    initial = runner.validation_loss(runner.build_model(), val_ds)
    summary = run_task(runner, progress=False, evaluate=True)
    model = load_model(tmp_path / "run" / "model.pt")
    assert isinstance(model, PersonDetector) and model.cfg.test_short_side == 72
    trained = runner.validation_loss(TrainModel(model), val_ds)
    assert trained < 0.6 * initial, (initial, trained)
    report = json.loads((tmp_path / "run" / "eval.json").read_text())
    assert set(report) == {"val_loss", "person"}
    person = report["person"]
    assert person["mAP"] == summary["eval"]["person"]["mAP"] and 0 <= person["prior_mAP"] <= 1
    assert person["model"]["num_gt"] == sum(len(f.boxes) for f in val_ds.items)
    assert (tmp_path / "run" / "eval_person.png").stat().st_size > 0


def test_shipped_checkpoint_finds_the_people_of_a_fresh_clip(tmp_path):
    from partwise.synth.generator import SynthConfig, generate

    assert SYNTH_CHECKPOINT.stat().st_size <= 3 * 2**20
    model = load_model(SYNTH_CHECKPOINT)
    assert isinstance(model, PersonDetector)
    root = tmp_path / "fresh"
    generate(root, SynthConfig(seed=5, videos=6, seconds=8))  # 4 train + 2 val videos, 6 keyframes each
    runner = load_task(CONFIG, [f"data.root={root}", f"run.out_dir={tmp_path / 'unused'}",
                                f"data.test_short_side={model.cfg.test_short_side}"])
    train_ds, val_ds = runner.datasets()
    assert sum(len(f.boxes) for f in val_ds.items) >= 20
    # the baseline: the box prior fitted on the fresh train split, scored on the val frames like the detector
    result = runner.evaluate(model, train_ds, val_ds, None)["person"]
    assert result["mAP"] >= 0.7 and result["mAP"] >= result["prior_mAP"] + 0.4, result
    assert result["whole_frame_AP"] < 0.1


@pytest.mark.parametrize("override, message", [
    ("model.depth=18", "model.depth: unknown key"),
    ("model.stride=32", "model: stride must be one of the stage strides [4, 8, 16], got 32"),
    ("model.test_short_side=96", "model.test_short_side: set data.test_short_side instead"),
    ("loss.giou=-1", "loss.giou: expected a non-negative weight, got -1.0"),
    ("eval.iou_threshold=0", "eval.iou_threshold: expected a value in (0, 1], got 0.0"),
    ("run.batch_size=1", "run.batch_size: the detector's BatchNorm needs at least 2 images, got 1"),
    ("data.scale_range=[0,10]", "data.scale_range: expected [low, high]"),
])
def test_config_errors_are_one_line(override, message, synth_root):
    with pytest.raises(ConfigError) as info:
        load_task(CONFIG, [f"data.root={synth_root}", override])
    text = str(info.value)
    assert "\n" not in text and text.startswith(f"{CONFIG}: ") and message in text, text


def test_cli_finds_the_task_and_reports_errors_in_one_line(synth_root):
    ok = subprocess.run([sys.executable, "-m", "partwise", "train", str(CONFIG), f"data.root={synth_root}", "--check"],
                        capture_output=True, text=True, env=ENV, cwd=ROOT)
    assert ok.returncode == 0, ok.stderr
    assert "person_detector" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "partwise", "train", str(CONFIG), "data.root=/nonexistent/x"],
                         capture_output=True, text=True, env=ENV, cwd=ROOT)
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and "data.root: /nonexistent/x is not a folder" in bad.stderr


def test_resumed_run_ends_with_the_same_weights(tmp_path, synth_root):
    # a constant learning rate: the schedule must not depend on max_steps, which differs between the two runs
    common = [f"data.root={synth_root}", "model.width=8", "model.neck_channels=8", "model.head_channels=8",
              "eval.enabled=false", *SMALL, "schedule.name=constant", "schedule.warmup_steps=0"]
    straight = load_task(CONFIG, common + [f"run.out_dir={tmp_path / 'a'}", "run.max_steps=12"])
    run_task(straight, progress=False)
    first = load_task(CONFIG, common + [f"run.out_dir={tmp_path / 'b'}", "run.max_steps=6"])
    run_task(first, progress=False)
    resumed = load_task(CONFIG, common + [f"run.out_dir={tmp_path / 'b'}", "run.max_steps=12"])
    run_task(resumed, resume=True, progress=False)
    a, b = load_model(tmp_path / "a" / "model.pt"), load_model(tmp_path / "b" / "model.pt")
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), name
