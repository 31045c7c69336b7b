"""TIN interactiveness AP: GT construction (no_interaction excluded, identical pairs merged), matching, CLI."""
import json

import numpy as np
import pytest

from partwise.cli import main as cli_main
from partwise.eval import hico, interactiveness


def test_thresholds_are_tin_values():
    t = interactiveness.tin_thresholds()
    assert t[3] == 0.3 and t[6] == 0.6


def test_interactive_pairs_from_fixture(fixtures_dir):
    names, gt = hico.read_gt(fixtures_dir / "hico" / "test_hico.json")
    pos = interactiveness.interactive_pairs(gt)
    # image 1: HOI 155 twice on the same boxes (one pair), HOI 154 (another human), HOI 170 no_interaction (out)
    assert pos.image.tolist() == [0, 0, 1]
    assert pos.boxes[0].tolist() == [11, 21, 110, 220, 51, 61, 150, 160]


def _write(tmp_path, dets):
    path = tmp_path / "pred.json"
    path.write_text(json.dumps(dets))
    return path


def test_cli_hand_computed(fixtures_dir, tmp_path, capsys):
    gt = fixtures_dir / "hico" / "test_hico.json"
    h0, o1, h2 = [10, 20, 110, 220], [50, 60, 150, 160], [200, 20, 300, 220]  # 0-based
    dets = {
        "HICO_test2015_00000001.jpg": [
            {"human_box": h0, "object_box": o1, "score": 0.9},   # TP
            {"human_box": h0, "object_box": o1, "score": 0.8},   # duplicate: FP
            {"human_box": h0, "object_box": h2, "score": 0.7}],  # pair labelled no_interaction only: FP
        "HICO_test2015_00000002.jpg": [
            {"human_box": [0, 0, 99, 99], "object_box": [100, 0, 199, 99], "score": 0.6}],  # TP
    }
    assert cli_main(["eval", "interactiveness", "--gt", str(gt), "--pred", str(_write(tmp_path, dets)), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    # npos 3: rec 1/3 1/3 1/3 2/3, prec 1 .5 1/3 .5 -> thresholds 0..0.3 at 1, 0.4..0.6 at .5
    expected = 0.0
    for p in [1.0] * 4 + [0.5] * 3 + [0.0] * 4:
        expected += p / 11
    assert out["mAP"] == expected and out["npos"] == 3


def test_strict_threshold(fixtures_dir, tmp_path, capsys):
    gt = fixtures_dir / "hico" / "test_hico.json"
    # image 2 GT object [101, 1, 200, 100] (1-based, 100x100); predicted object covers half of it: IoU exactly 0.5
    dets = {"HICO_test2015_00000002.jpg": [
        {"human_box": [0, 0, 99, 99], "object_box": [100, 0, 199, 49], "score": 0.6}]}
    pred = _write(tmp_path, dets)
    assert cli_main(["eval", "interactiveness", "--gt", str(gt), "--pred", str(pred), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["mAP"] > 0
    assert cli_main(["eval", "interactiveness", "--gt", str(gt), "--pred", str(pred), "--strict", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["mAP"] == 0.0


def test_missing_score_is_input_error(fixtures_dir, tmp_path, capsys):
    pred = _write(tmp_path, {"1": [{"human_box": [0, 0, 1, 1], "object_box": [0, 0, 1, 1]}]})
    rc = cli_main(["eval", "interactiveness", "--gt", str(fixtures_dir / "hico" / "test_hico.json"),
                   "--pred", str(pred)])
    assert rc == 2 and '["1"][0].score: missing' in capsys.readouterr().err
