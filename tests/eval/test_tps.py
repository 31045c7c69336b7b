"""The official Kinetics-TPS score: fixture of the organisers' evaluator, and hand-computed cases."""
from __future__ import annotations

import json

import numpy as np
import pytest

from partwise.cli import main
from partwise.errors import InputError
from partwise.eval import tps

FIXTURE = "tps_eval_small"

A_BOX = [0, 0, 9, 9]  # 10 x 10 pixels under the +1 convention


def human(box, parts):
    return {"box": box, "parts": {name: {"box": b, "verb": v} for name, (b, v) in parts.items()}}


def pred_human(box, parts):
    return {"box": box, "parts": {name: {"box": boxes, "verb": verbs} for name, (boxes, verbs) in parts.items()}}


def frames(*humans_per_frame):
    return {f"img_{1 + 5 * k:05d}.json": {"humans": list(h)} for k, h in enumerate(humans_per_frame)}


def plus1_iou(a, b):
    """Independent scalar IoU with +1-pixel areas, -1 when disjoint."""
    w = min(a[2], b[2]) - max(a[0], b[0]) + 1
    h = min(a[3], b[3]) - max(a[1], b[1]) + 1
    if w <= 0 or h <= 0:
        return -1.0
    area = lambda r: (r[2] - r[0] + 1) * (r[3] - r[1] + 1)  # noqa: E731
    return w * h / (area(a) + area(b) - w * h)


# ---------------------------------------------------------------------------------------------------------------
# The organisers' evaluator on the fixture


def _fixture(fixtures_dir):
    base = fixtures_dir / FIXTURE
    return {
        "gt_parts": base / "gt" / "gt_part_result.json",
        "gt_videos": base / "gt" / "gt_vid_result.json",
        "pred_parts": base / "pred" / "pred_part_result.json",
        "pred_videos": base / "pred" / "pred_vid_result.json",
    }, json.loads((base / "official_score.json").read_text())["score"]


def test_fixture_score_is_reproduced_bit_for_bit(fixtures_dir, capsys):
    paths, expected = _fixture(fixtures_dir)
    rc = main(["eval", "tps", "--gt-parts", str(paths["gt_parts"]), "--gt-videos", str(paths["gt_videos"]),
               "--pred-parts", str(paths["pred_parts"]), "--pred-videos", str(paths["pred_videos"]), "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["score"] == expected  # the evaluator's own float, summation rounding included
    assert out["protocol"] == "kinetics-tps (human IoU > 0.5, part IoU >= 0.3)"


def test_fixture_grid_and_per_class(fixtures_dir):
    paths, expected = _fixture(fixtures_dir)
    loaded = [json.loads(paths[k].read_text()) for k in ("gt_parts", "gt_videos", "pred_parts", "pred_videos")]
    result = tps.evaluate(*loaded, grid=True)
    assert result.value == expected
    assert result.extra["grid human 0.5 / part 0.3"]["area"] == expected
    # Looser thresholds can only help; the strictest corner can only hurt.
    loose = result.extra["grid human 0.001 / part 0.001"]["area"]
    strict = result.extra["grid human 0.99 / part 0.99"]["area"]
    assert loose >= expected >= strict
    assert len([k for k in result.extra if k.startswith("grid ")]) == 25
    # Per-class scores are areas over each class's videos: their video-weighted mean is the total.
    gt_videos = loaded[1]
    weights = {c: sum(1 for v in gt_videos.values() if v == c) for c in result.per_class}
    mean = sum(result.per_class[c] * weights[c] for c in weights) / len(gt_videos)
    assert mean == pytest.approx(expected, abs=1e-9)
    assert result.extra["accuracy_at"]["t0.0"] == result.extra["video_accuracy"]


# ---------------------------------------------------------------------------------------------------------------
# Hand-computed cases


def test_iou_plus_one_convention_and_disjoint_is_minus_one():
    cases = [
        ([5, 5, 5, 5], [5, 5, 5, 5], 1.0),           # zero-area box = one pixel
        ([5, 5, 5, 5], [5, 5, 6, 5], 0.5),           # 1 pixel of 2
        ([0, 0, 4, 4], [5, 0, 9, 4], -1.0),          # touching edges: intersection width 0
        ([0, 0, 5, 5], [5, 0, 9, 5], 6 / 60),        # one shared column: 6 / (36 + 30 - 6)
        ([0, 0, 9, 9], [20, 20, 30, 30], -1.0),
    ]
    for a, b, expected in cases:
        got = tps.iou_plus1(np.array([a], float), np.array([b], float))[0, 0]
        assert got == pytest.approx(expected)
        assert got == pytest.approx(plus1_iou(a, b))


def test_hungarian_differs_from_greedy():
    a, b = [0, 0, 9, 9], [3, 0, 12, 9]
    p1, p2 = [1, 0, 10, 9], [-1, 0, 7, 9]
    # IoU(A,P1)=9/11 > IoU(A,P2)=8/11, IoU(B,P1)=2/3, IoU(B,P2)=5/14: greedy gives A->P1 and leaves B unmatched;
    # the assignment maximising total IoU pairs A->P2 and B->P1, both above 0.5.
    assert plus1_iou(a, p1) == pytest.approx(9 / 11) and plus1_iou(a, p2) == pytest.approx(8 / 11)
    assert plus1_iou(b, p1) == pytest.approx(2 / 3) and plus1_iou(b, p2) == pytest.approx(5 / 14)
    matches = tps.match_humans(np.array([a, b], float), np.array([p1, p2], float))
    assert {g: p for g, (p, _) in matches.items()} == {0: 1, 1: 0}
    gt = [human(a, {"head": ([0, 0, 3, 3], "nod")}), human(b, {"head": ([8, 0, 11, 3], "turn")})]
    pred = [pred_human(p1, {"head": ([[8, 0, 11, 3]], ["turn"])}), pred_human(p2, {"head": ([[0, 0, 3, 3]], ["nod"])})]
    assert tps.frame_score(gt, pred) == 1.0  # greedy matching would give 0


def test_human_iou_exactly_half_is_not_matched_part_iou_exactly_0_3_is_credited():
    gt = [human(A_BOX, {"head": ([0, 0, 9, 9], "nod")})]
    half = [pred_human([0, 0, 9, 4], {"head": ([[0, 0, 9, 9]], ["nod"])})]  # 50 / 100
    assert tps.frame_score(gt, half) == 0.0
    part_03 = [pred_human([0, 0, 9, 5], {"head": ([[0, 0, 9, 2]], ["nod"])})]  # human 60/100; part 30/100
    assert plus1_iou([0, 0, 9, 9], [0, 0, 9, 2]) == 0.3
    assert tps.frame_score(gt, part_03) == 1.0
    part_below = [pred_human([0, 0, 9, 5], {"head": ([[0, 0, 9, 1]], ["nod"])})]  # 20/100
    assert tps.frame_score(gt, part_below) == 0.0
    wrong_state = [pred_human([0, 0, 9, 5], {"head": ([[0, 0, 9, 9]], ["Nod"])})]  # exact string equality
    assert tps.frame_score(gt, wrong_state) == 0.0


def test_two_proposals_earn_half_and_single_shape_is_accepted():
    gt = [human(A_BOX, {"head": ([0, 0, 9, 9], "nod"), "hip": ([0, 5, 9, 9], "sit")})]
    pred = [pred_human(A_BOX, {"head": ([[0, 0, 9, 9], [50, 50, 60, 60]], ["nod", "nod"]),
                               "hip": ([0, 5, 9, 9], "sit")})]  # 2022 shape: one box, one state
    # head: 1/2 (N_p = 2); hip: 1 -> (0.5 + 1) / 2 parts
    assert tps.frame_score(gt, pred) == 0.75


def test_unmatched_humans_count_in_the_denominator_and_extra_parts_are_ignored():
    gt = [human(A_BOX, {"head": ([0, 0, 3, 3], "nod")}),
          human([100, 100, 109, 109], {"head": ([100, 100, 103, 103], "nod"), "hip": ([100, 105, 109, 109], "sit")})]
    pred = [pred_human(A_BOX, {"head": ([[0, 0, 3, 3]], ["nod"]), "left_arm": ([[0, 0, 9, 9]], ["bend"])})]
    assert tps.frame_score(gt, pred) == pytest.approx(1 / 3)


def test_frames_missing_empty_or_partless():
    gt_frames = frames(
        [human(A_BOX, {"head": ([0, 0, 9, 9], "nod")})],       # img_00001: predicted right -> 1
        [human(A_BOX, {"head": ([0, 0, 9, 9], "nod")})],       # img_00006: missing -> 0, counted
        [],                                                    # img_00011: no humans -> skipped
        [human(A_BOX, {})],                                    # img_00016: predicted, no parts -> skipped
        [human(A_BOX, {})],                                    # img_00021: missing, no parts -> counted as 0
    )
    right = {"humans": [pred_human(A_BOX, {"head": ([[0, 0, 9, 9]], ["nod"])})]}
    pred_frames = {"img_00001.json": right, "img_00011.json": right, "img_00016.json": right}
    assert tps.video_psc(gt_frames, pred_frames) == pytest.approx(1 / 3)


def test_video_without_countable_frames_has_psc_one():
    gt_frames = frames([], [])
    assert tps.video_psc(gt_frames, {}) == 1.0
    gt_parts = {"v1": gt_frames, "v2": frames([human(A_BOX, {"head": ([0, 0, 9, 9], "nod")})])}
    gt_videos = {"v1": "hopscotch", "v2": "lunge"}
    pred_parts = {"v1": {}, "v2": {}}
    s = tps.score_videos(gt_parts, gt_videos, pred_parts, {"v1": "hopscotch", "v2": "lunge"})
    assert list(s.psc) == [1.0, 0.0]
    # v1 contributes 9999/10000 (t = 1 is never reached), v2 nothing, over N = 2 videos.
    assert s.score == pytest.approx(0.9999 / 2, abs=1e-12)


def test_accuracy_uses_greater_or_equal():
    psc = np.array([0.5, 0.25, 0.9])
    correct = np.array([True, True, False])
    assert tps.conditioned_accuracy(psc, correct, 0.5) == pytest.approx(1 / 3)
    assert tps.conditioned_accuracy(psc, correct, 0.25) == pytest.approx(2 / 3)
    assert tps.conditioned_accuracy(psc, correct, 0.0) == pytest.approx(2 / 3)


def _literal_area(psc, correct):
    """The summation as written: for k = 1..9999, area += 1/10000 * Acc(k/10000), Acc counted one video at a time."""
    area = 0
    for k in range(1, 10000):
        t = k / 10000
        hits = 0
        for p, c in zip(psc, correct):
            if p >= t and c:
                hits += 1
        area += 1.0 / 10000 * (hits / len(psc))
    return area


@pytest.mark.parametrize("seed", [0, 1])
def test_closed_form_matches_literal_summation(seed):
    rng = np.random.default_rng(seed)
    psc = rng.random(40)
    psc[:6] = [0.0, 1.0, 0.5, 0.3, 0.12345, 0.99995]  # grid points, the ends, and one between two steps
    correct = rng.random(40) < 0.7
    literal = _literal_area(list(psc), list(correct))
    assert tps.official_score(psc, correct) == literal  # same float, same rounding
    assert tps.closed_form_score(psc, correct) == pytest.approx(literal, abs=1e-9)
    naive = np.mean(correct * np.minimum(np.floor(psc * 10000), 9999) / 10000)
    assert tps.closed_form_score(psc, correct) == pytest.approx(naive, abs=1e-12)


def test_missing_video_is_an_error_or_zero():
    gt_parts = {"v1": frames([human(A_BOX, {"head": ([0, 0, 9, 9], "nod")})]),
                "v2": frames([human(A_BOX, {"head": ([0, 0, 9, 9], "nod")})])}
    gt_videos = {"v1": "lunge", "v2": "lunge"}
    pred_parts = {"v1": {"img_00001.json": {"humans": [pred_human(A_BOX, {"head": ([[0, 0, 9, 9]], ["nod"])})]}}}
    pred_videos = {"v1": "lunge"}
    with pytest.raises(InputError, match="v2"):
        tps.score_videos(gt_parts, gt_videos, pred_parts, pred_videos)
    s = tps.score_videos(gt_parts, gt_videos, pred_parts, pred_videos, missing_as_zero=True)
    assert list(s.psc) == [1.0, 0.0] and list(s.correct) == [True, False]
    assert s.score == pytest.approx(0.9999 / 2, abs=1e-12)


def test_cli_reports_missing_video_as_one_line(tmp_path, capsys):
    gt_parts = {"v1": frames([human(A_BOX, {"head": ([0, 0, 9, 9], "nod")})])}
    files = {"gp": gt_parts, "gv": {"v1": "lunge"}, "pp": {}, "pv": {}}
    for name, data in files.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(data))
    args = ["eval", "tps", "--gt-parts", str(tmp_path / "gp.json"), "--gt-videos", str(tmp_path / "gv.json"),
            "--pred-parts", str(tmp_path / "pp.json"), "--pred-videos", str(tmp_path / "pv.json")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "pp.json:v1" in err and err.count("\n") == 1
    assert main(args + ["--missing-as-zero", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["score"] == 0.0


def test_prediction_without_human_box_is_an_input_error(tmp_path):
    path = tmp_path / "pred_part_result.json"
    path.write_text(json.dumps({"v1": {"img_00001.json": {"humans": [{"parts": {}}]}}}))
    from partwise.data.kinetics_tps import read_part_result

    with pytest.raises(InputError, match=r"v1\.img_00001\.json\.humans\[0\]\.box"):
        read_part_result(path)
