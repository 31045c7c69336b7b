"""AVA frame-mAP: the original tools' fixtures reproduced exactly, hand-computed cases, one test per protocol
difference (each profile's own number), the PaSta variant, and malformed inputs through the CLI."""
from __future__ import annotations

import heapq
import json
import math
from pathlib import Path

import numpy as np
import pytest

from partwise.cli import main as cli_main
from partwise.errors import ConfigError, InputError
from partwise.eval import ava
from partwise.eval.ava import evaluate, make_rows
from partwise.vocab import read_label_map

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "ava_eval_small"
LABELS = {1: "one", 3: "three", 5: "five", 7: "seven"}  # tiny label map; 2 is a non-evaluated class

# boxes (x1, y1, x2, y2) far apart, so a detection on one never overlaps another
A = (0.0, 0.0, 0.2, 0.2)
B = (0.5, 0.5, 0.7, 0.7)
C = (0.8, 0.0, 1.0, 0.2)
ZERO = (0.3, 0.3, 0.3, 0.6)  # zero width


def gt_rows(rows):
    """rows: (video, ts, box or None, action) -> GT rows (None box = a 2-column keyframe row)."""
    boxes = [b if b is not None else (np.nan,) * 4 for _, _, b, _ in rows]
    return make_rows([r[0] for r in rows], [r[1] for r in rows], boxes, [r[3] if r[2] is not None else -1
                                                                          for r in rows], path="gt.csv")


def det_rows(rows):
    """rows: (video, ts, box, action, score) -> detection rows."""
    return make_rows([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows],
                     [r[4] for r in rows], path="det.csv")


def run(gt, det, profile="official", labels=LABELS, **kw):
    return evaluate(gt_rows(gt), det_rows(det), labels, profile=profile, **kw)


def same(a, b):
    return (math.isnan(a) and math.isnan(b)) or a == b


# ------------------------------------------------------------------------------------------------------------
# the original implementations' outputs
# ------------------------------------------------------------------------------------------------------------

def test_official_fixture_reproduced_exactly():
    labels = read_label_map(FIX / "labelmap60.pbtxt")
    result = evaluate(FIX / "gt2020.csv", FIX / "det.csv", labels, profile="official")
    expected = json.loads((FIX / "official_per_class.json").read_text())
    assert result.protocol == "ava-official"
    assert result.value == expected["PascalBoxes_Precision/mAP@0.5IOU"]
    for cid, name in labels.items():
        assert same(result.per_class[str(cid)], expected[f"PascalBoxes_PerformanceByCategory/AP@0.5IOU/{name}"]), name
    assert result.class_names["80"] == "watch (a person)"


def test_mmaction2_fixture_reproduced_exactly():
    labels = read_label_map(FIX / "labelmap60.pbtxt")
    result = evaluate(FIX / "gt.csv", FIX / "det.csv", labels, profile="mmaction2", exclusions=FIX / "excl.csv")
    expected = json.loads((FIX / "mmaction2_per_class.json").read_text())
    assert result.protocol == "ava-mmaction2"
    assert result.value == expected["overall"]
    for cid, name in labels.items():
        # classes mmaction2 leaves out (GT but no detection) are absent from its dict: NaN here
        assert same(result.per_class[str(cid)], expected["per_class"].get(name, float("nan"))), name
    groups = result.extra["groups"]
    assert set(groups) == {"person_movement", "object_manipulation", "person_interaction"}
    pm = [v for k, v in result.per_class.items() if int(k) <= 14 and not math.isnan(v)]
    assert groups["person_movement"] == pytest.approx(np.mean(pm), abs=1e-15)


def test_fixture_through_the_cli_json(capsys):
    code = cli_main(["eval", "ava", "--gt", str(FIX / "gt2020.csv"), "--pred", str(FIX / "det.csv"),
                     "--labelmap", str(FIX / "labelmap60.pbtxt"), "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["protocol"] == "ava-official"
    assert out["mAP"] == json.loads((FIX / "official_per_class.json").read_text())["PascalBoxes_Precision/mAP@0.5IOU"]
    assert out["per_class"]["1"] is None  # bend/bow has no GT in the fixture


def test_plot_writes_png(tmp_path, capsys):
    png = tmp_path / "ava.png"
    code = cli_main(["eval", "ava", "--gt", str(FIX / "gt.csv"), "--pred", str(FIX / "det.csv"), "--labelmap",
                     str(FIX / "labelmap60.pbtxt"), "--profile", "mmaction2", "--exclusions", str(FIX / "excl.csv"),
                     "--plot", str(png)])
    assert code == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "person_movement" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------------------------
# hand-computed cases
# ------------------------------------------------------------------------------------------------------------

def test_iou_exactly_half_is_a_match():
    # det (0,0,0.5,1) inside GT (0,0,1,1): intersection 0.5, union 1 -> IoU 0.5 exactly -> TP -> AP 1.
    gt = [("v", 902, (0.0, 0.0, 1.0, 1.0), 1)]
    assert run(gt, [("v", 902, (0.0, 0.0, 0.5, 1.0), 1, 0.9)]).per_class["1"] == 1.0
    # width 0.49: IoU 0.49 -> FP -> AP 0.
    assert run(gt, [("v", 902, (0.0, 0.0, 0.49, 1.0), 1, 0.9)]).per_class["1"] == 0.0


def test_duplicate_detection_is_a_false_positive():
    # GT A and B (class 1). Dets: A 0.9 (TP), A again 0.8 (duplicate: FP), B 0.7 (TP).
    # precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1 -> envelope 1, 2/3, 2/3 -> AP = 1/2*1 + 1/2*2/3 = 5/6.
    gt = [("v", 902, A, 1), ("v", 902, B, 1)]
    det = [("v", 902, A, 1, 0.9), ("v", 902, A, 1, 0.8), ("v", 902, B, 1, 0.7)]
    for profile in ("official", "mmaction2", "slowfast"):
        assert run(gt, det, profile).per_class["1"] == pytest.approx(5 / 6, abs=1e-15), profile


def test_argmax_without_fallback():
    # GT A and A' (A shifted a little) of class 1. Det 1 (0.9) fits A' best, det 2 (0.8) also fits A' best and
    # overlaps A too, but the tools never fall back to the second-best GT: det 2 is an FP.
    a2 = (0.0, 0.0, 0.2, 0.22)
    gt = [("v", 902, A, 1), ("v", 902, a2, 1)]
    det = [("v", 902, (0.0, 0.0, 0.2, 0.215), 1, 0.9), ("v", 902, (0.0, 0.0, 0.2, 0.216), 1, 0.8)]
    # ranked TP, FP with 2 GT -> precision 1 at recall 1/2 -> AP 0.5
    assert run(gt, det).per_class["1"] == 0.5


def test_score_ties_rank_like_argsort_reversed():
    # Keyframe 902: GT A. Keyframe 903: no class-1 GT. Two class-1 detections with the same score 0.5: the FP on
    # 903 and the TP on 902. The tools rank by argsort(scores)[::-1] over the per-class concatenation (keyframes
    # in order of first appearance in the detection file): [TP(902), FP(903)]; numpy's sort keeps equal scores in
    # input order, so the reversal puts the FP first -> precision 1/2 at recall 1 -> AP 0.5 (TP first: AP 1).
    gt = [("v", 902, A, 1), ("v", 903, B, 3)]
    det = [("v", 902, A, 1, 0.5), ("v", 903, B, 1, 0.5)]
    tp_first = np.argsort(np.array([0.5, 0.5]))[::-1][0] == 0
    expected = 1.0 if tp_first else 0.5
    assert run(gt, det).per_class["1"] == expected
    assert run(gt, det, "mmaction2").per_class["1"] == expected


def test_keyframes_without_gt():
    # Official: a detection on a keyframe absent from the GT file is ignored; on a keyframe listed by a 2-column
    # row it is a false positive. GT A on 902 (class 1), det A 0.8 (TP).
    gt = [("v", 902, A, 1), ("v", 905, None, -1)]
    base = [("v", 902, A, 1, 0.8)]
    assert run(gt, base + [("v", 904, B, 1, 0.9)]).per_class["1"] == 1.0      # 904 not in GT: ignored
    # 905 listed (2-column row): FP ranked first -> precision 1/2 at recall 1 -> AP 0.5
    assert run(gt, base + [("v", 905, B, 1, 0.9)]).per_class["1"] == 0.5
    # mmaction2 ignores both (only keyframes with evaluated GT); slowfast counts both as FPs.
    assert run(gt, base + [("v", 905, B, 1, 0.9)], "mmaction2").per_class["1"] == 1.0
    assert run(gt, base + [("v", 904, B, 1, 0.9)], "slowfast").per_class["1"] == 0.5


def test_keyframes_far_apart_in_time_over_many_videos():
    """Timestamps ~1e11 s apart on 40 videos: the one-integer (video, time) key would overflow int64, so keyframes
    are keyed as pairs -- the same APs as the same rows at ordinary timestamps."""
    def rows(t_far):
        gt = [(f"v{i:02d}", t_far if i % 2 else 902, A, 1) for i in range(40)] + [("v00", -t_far, B, 3)]
        det = [(f"v{i:02d}", t_far if i % 2 else 902, A if i % 3 else B, 1, 0.5 + i / 100) for i in range(40)]
        det += [("v00", -t_far, B, 3, 0.7), ("v01", -t_far, B, 3, 0.9)]
        return gt, det
    for profile in ("official", "mmaction2", "slowfast"):
        near, far = run(*rows(903), profile), run(*rows(99_999_999_999), profile)
        assert near.per_class.keys() == far.per_class.keys(), profile
        assert all(same(near.per_class[c], far.per_class[c]) for c in near.per_class), profile
        assert 0 < near.per_class["1"] < 1 and 0 < near.per_class["3"] <= 1, profile


def test_zero_area_detection():
    # GT A (class 1). Dets: zero-width box 0.9, A 0.8.
    # official and slowfast drop the zero-area box: AP 1. mmaction2 keeps it as an FP: [FP, TP] -> AP 0.5.
    gt = [("v", 902, A, 1)]
    det = [("v", 902, ZERO, 1, 0.9), ("v", 902, A, 1, 0.8)]
    assert run(gt, det, "official").per_class["1"] == 1.0
    assert run(gt, det, "slowfast").per_class["1"] == 1.0
    assert run(gt, det, "mmaction2").per_class["1"] == 0.5


def test_zero_area_gt_never_matches():
    gt = [("v", 902, ZERO, 1)]
    for profile in ("official", "mmaction2", "slowfast"):
        assert run(gt, [("v", 902, ZERO, 1, 0.9), ("v", 902, (0.2, 0.2, 0.4, 0.7), 1, 0.8)], profile) \
            .per_class["1"] == 0.0, profile


def test_empty_inputs():
    gt = [("v", 902, A, 1)]
    none = evaluate(gt_rows(gt), det_rows([]), LABELS, profile="official")
    assert none.value == 0.0 and none.per_class["1"] == 0.0 and math.isnan(none.per_class["3"])
    # mmaction2 leaves classes without detections out of the mean: nothing is left.
    assert math.isnan(evaluate(gt_rows(gt), det_rows([]), LABELS, profile="mmaction2").value)
    empty_gt = evaluate(gt_rows([]), det_rows([("v", 902, A, 1, 0.5)]), LABELS, profile="slowfast")
    assert math.isnan(empty_gt.value) and all(math.isnan(v) for v in empty_gt.per_class.values())


def test_empty_detection_file_via_cli(tmp_path, capsys):
    (tmp_path / "det.csv").write_text("")
    code = cli_main(["eval", "ava", "--gt", str(FIX / "gt2020.csv"), "--pred", str(tmp_path / "det.csv"),
                     "--labelmap", str(FIX / "labelmap60.pbtxt"), "--json"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["mAP"] == 0.0


# ------------------------------------------------------------------------------------------------------------
# where the profiles differ: each profile's own number
# ------------------------------------------------------------------------------------------------------------

def test_keyframe_with_only_non_evaluated_classes():
    # 902: GT of class 2 only (not in the label map). 903: GT A class 1.
    # Dets: 902 B class 1 0.9 (no class-1 GT there), 903 A class 1 0.8 (TP).
    # official: 902 is in the GT file -> FP first -> AP 0.5. slowfast: every keyframe counts -> 0.5.
    # mmaction2: 902 has no evaluated GT -> ignored -> AP 1.
    gt = [("v", 902, B, 2), ("v", 903, A, 1)]
    det = [("v", 902, B, 1, 0.9), ("v", 903, A, 1, 0.8)]
    assert run(gt, det, "official").per_class["1"] == 0.5
    assert run(gt, det, "slowfast").per_class["1"] == 0.5
    assert run(gt, det, "mmaction2").per_class["1"] == 1.0


def test_top_50_cap():
    # One keyframe: 50 class-1 detections (no class-1 GT) scored 0.9 and above, then a class-3 TP scored 0.1.
    # official keeps the top 50 across classes: the TP is cut -> class 3 AP 0 -> mAP 0 (class 1 has no GT).
    # mmaction2 and slowfast have no cap: class 3 AP 1 -> mAP 1.
    gt = [("v", 902, A, 3)]
    det = [("v", 902, B, 1, 0.9 + i / 1000) for i in range(50)] + [("v", 902, A, 3, 0.1)]
    assert run(gt, det, "official").value == 0.0
    assert run(gt, det, "mmaction2").value == 1.0
    assert run(gt, det, "slowfast").value == 1.0


def test_top_50_cap_tie_follows_the_heap():
    # File order: X (0.5, class 3, on the class-3 GT), Y (0.5, class 5, on the class-5 GT), then 49 class-1
    # detections at 0.9. The 50th-best score 0.5 ties the 51st. The heap admits X and Y (not yet full); the
    # 50th entry >= 0.5 arrives with the 48th 0.9; the 49th 0.9 then evicts the smallest tuple among the 0.5
    # entries, (0.5, 3, ...) = X. So class 3 AP 0, class 5 AP 1 -- "first in file wins" would give the reverse.
    gt = [("v", 902, A, 3), ("v", 902, C, 5)]
    det = [("v", 902, A, 3, 0.5), ("v", 902, C, 5, 0.5)] + [("v", 902, B, 1, 0.9)] * 49
    result = run(gt, det, "official")
    assert result.per_class["3"] == 0.0 and result.per_class["5"] == 1.0
    nocap = run(gt, det, "slowfast")
    assert nocap.per_class["3"] == 1.0 and nocap.per_class["5"] == 1.0


def test_classes_without_detections():
    # GT of class 1 (A) and class 3 (B); one TP detection of class 1.
    # official / slowfast: class 3 AP 0 counts -> mAP 0.5. mmaction2 drops class 3 -> mAP 1.
    gt = [("v", 902, A, 1), ("v", 902, B, 3)]
    det = [("v", 902, A, 1, 0.9)]
    assert run(gt, det, "official").value == 0.5
    assert run(gt, det, "slowfast").value == 0.5
    mm = run(gt, det, "mmaction2")
    assert mm.value == 1.0 and math.isnan(mm.per_class["3"])


def test_exclusions():
    # 902: GT A; 903 (excluded): GT B. Dets: A 0.8 on 902, B 0.9 on 903.
    # official (no exclusions, both keyframes count): 2 TPs -> AP 1.
    # mmaction2: 903's detections ignored but its GT still counts: 1 TP of 2 GT -> AP 0.5.
    # slowfast: 903 dropped entirely (GT too): 1 TP of 1 GT -> AP 1.
    gt = [("v", 902, A, 1), ("v", 903, B, 1)]
    det = [("v", 902, A, 1, 0.8), ("v", 903, B, 1, 0.9)]
    excl = (["v"], [903])
    assert run(gt, det, "official").per_class["1"] == 1.0
    assert run(gt, det, "mmaction2", exclusions=excl).per_class["1"] == 0.5
    assert run(gt, det, "slowfast", exclusions=excl).per_class["1"] == 1.0
    with pytest.raises(ConfigError):
        run(gt, det, "official", exclusions=excl)


def test_exclusions_file(tmp_path):
    (tmp_path / "excl.csv").write_text("v,0903\n")
    gt = [("v", 902, A, 1), ("v", 903, B, 1)]
    det = [("v", 902, A, 1, 0.8), ("v", 903, B, 1, 0.9)]
    assert run(gt, det, "mmaction2", exclusions=tmp_path / "excl.csv").per_class["1"] == 0.5


@pytest.mark.parametrize("line, reason", [
    ("v,12345678901234567890", "line 2: timestamp 12345678901234567890 out of range (|t| < 1e+12 s)"),
    (",0904", "line 2: empty video id"),
    ("v,nan", "line 2: timestamp is not finite"),
])
def test_a_bad_exclusions_line_is_named(tmp_path, line, reason):
    """A 20-digit second reached the keyframe keys as an int64 overflow (a RuntimeWarning, then a wrong key)."""
    (tmp_path / "excl.csv").write_text(f"v,0903\n{line}\n")
    gt, det = [("v", 902, A, 1)], [("v", 902, A, 1, 0.8)]
    with pytest.raises(InputError) as err:
        run(gt, det, "mmaction2", exclusions=tmp_path / "excl.csv")
    assert str(err.value).startswith(f"{tmp_path / 'excl.csv'}:{reason}")


def test_slowfast_matches_in_file_order():
    # GT A. File order: A at 0.3, then A at 0.9. official / mmaction2 match by score: 0.9 TP, 0.3 FP -> AP 1.
    # slowfast matches in file order: 0.3 takes the GT, 0.9 is an FP ranked first -> AP 0.5.
    gt = [("v", 902, A, 1)]
    det = [("v", 902, A, 1, 0.3), ("v", 902, A, 1, 0.9)]
    assert run(gt, det, "official").per_class["1"] == 1.0
    assert run(gt, det, "mmaction2").per_class["1"] == 1.0
    assert run(gt, det, "slowfast").per_class["1"] == 0.5


def test_mmaction2_scores_are_float32():
    # Keyframe 902: GT A, det A scored 0.50000002 (TP). Keyframe 903: GT of class 3 only, class-1 det scored
    # 0.50000001 (FP). In float64 the TP ranks first -> AP 1 (official, slowfast). mmaction2 ranks float32 scores,
    # where both are 0.5: a tie, ranked by argsort(...)[::-1] over [TP, FP] -> FP first -> AP 0.5.
    gt = [("v", 902, A, 1), ("v", 903, B, 3)]
    det = [("v", 902, A, 1, 0.50000002), ("v", 903, B, 1, 0.50000001)]
    assert np.float32(0.50000002) == np.float32(0.50000001)
    tie_keeps_input_order = np.argsort(np.array([0.5, 0.5], np.float32))[::-1][0] == 1
    assert run(gt, det, "official").per_class["1"] == 1.0
    assert run(gt, det, "slowfast").per_class["1"] == 1.0
    assert run(gt, det, "mmaction2").per_class["1"] == (0.5 if tie_keeps_input_order else 1.0)


def test_detections_without_score_column_and_infinite_scores():
    # A 7-column detection row has score 1.0 (the tools' default); +/-inf scores sort like any other number.
    gt = [("v", 902, A, 1), ("v", 902, B, 1)]
    det = make_rows(["v", "v", "v"], [902, 902, 902], [C, A, B], [1, 1, 1], [np.inf, np.nan, -np.inf],
                    path="det.csv")
    # ranked: C (inf, FP), A (1.0, TP), B (-inf, TP) -> precision 0, 1/2, 2/3 at recall 0, 1/2, 1
    # envelope 2/3 -> AP = 1/2 * 2/3 + 1/2 * 2/3 = 2/3
    result = evaluate(gt_rows(gt), det, LABELS, profile="official")
    assert result.per_class["1"] == pytest.approx(2 / 3, abs=1e-15)


def test_timestamp_keys():
    # official keys keyframes to the microsecond, mmaction2/slowfast by int(ts): a detection at 902.5 is on
    # keyframe 902 for them (TP) and on an unlisted keyframe for official (ignored -> AP 0).
    gt = [("v", 902, A, 1)]
    det = [("v", 902.5, A, 1, 0.9)]
    assert run(gt, det, "official").per_class["1"] == 0.0
    assert run(gt, det, "mmaction2").per_class["1"] == 1.0


# ------------------------------------------------------------------------------------------------------------
# the vectorized official path against a one-keyframe-at-a-time replay of the official tool
# ------------------------------------------------------------------------------------------------------------

def _reference_official(gt, det, labels):
    """Per-keyframe official evaluation with ava.official_keyframe (heap, sort, greedy), then per-class AP."""
    keys_gt, keys_det = {}, {}
    for video, ts, box, action in gt:
        keys_gt.setdefault((video, ts), [])
        if box is not None and action in labels:
            keys_gt[(video, ts)].append((1.0, action, box[1], box[0], box[3], box[2]))
    for video, ts, box, action, score in det:
        if action in labels:
            keys_det.setdefault((video, ts), []).append((score, action, box[1], box[0], box[3], box[2]))
    num_gt = {c: sum(e[1] == c for items in keys_gt.values() for e in items) for c in labels}
    scores, hits = {c: [] for c in labels}, {c: [] for c in labels}
    for key, entries in keys_det.items():
        if key not in keys_gt:
            continue
        for cls, score, hit in ava.official_keyframe(entries, keys_gt[key]):
            scores[cls].append(score)
            hits[cls].append(hit)
    aps = {}
    for c in labels:
        if num_gt[c] == 0:
            aps[c] = float("nan")
            continue
        p, r = ava.precision_recall(np.array(scores[c], float), np.array(hits[c], bool), num_gt[c])
        aps[c] = ava.voc_ap(p, r)
    return aps


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vectorized_official_equals_per_keyframe_replay(seed):
    # Scores from a handful of values make ties everywhere: at the top-50 edge, inside (class, score) runs.
    rng = np.random.default_rng(seed)
    labels = {c: f"c{c}" for c in (1, 3, 4, 6)}
    gt, det = [], []
    for k in range(40):
        ts = 902 + k
        boxes = []
        for _ in range(rng.integers(0, 4)):
            x1, y1 = np.round(rng.uniform(0, 0.6, 2), 2)
            boxes.append((x1, y1, round(x1 + 0.3, 2), round(y1 + 0.3, 2)))
        for box in boxes:
            for action in rng.choice([1, 2, 3, 4, 6], size=rng.integers(1, 3), replace=False):
                gt.append(("v", ts, box, int(action)))
        if not boxes:
            gt.append(("v", ts, None, -1))
        for _ in range(rng.integers(0, 30)):
            if boxes and rng.random() < 0.7:
                x1, y1, x2, y2 = boxes[rng.integers(len(boxes))]
                box = tuple(float(np.clip(v + rng.choice([0, 0.01, -0.01, 0.05]), 0, 1)) for v in (x1, y1, x2, y2))
            else:
                x1, y1 = np.round(rng.uniform(0, 0.6, 2), 2)
                box = (x1, y1, round(x1 + 0.3, 2), round(y1 + 0.3, 2))
            for action in (1, 2, 3, 4, 6):
                det.append(("v", ts, box, action, float(rng.choice([0.1, 0.2, 0.5, 0.7]))))
    result = run(gt, det, "official", labels=labels)
    expected = _reference_official(gt, det, labels)
    for c in labels:
        assert same(result.per_class[str(c)], expected[c]), c


def _np_box_iou(d, g, float32):
    """IoU matrix the way the TF object-detection np_box_ops computes it ([y1, x1, y2, x2] rows)."""
    d = np.asarray(d, np.float32 if float32 else np.float64).reshape(-1, 4)
    g = np.asarray(g, np.float32 if float32 else np.float64).reshape(-1, 4)
    heights = np.maximum(np.zeros((len(d), len(g))),
                         np.minimum(d[:, 2:3], g[:, 2].T) - np.maximum(d[:, 0:1], g[:, 0].T))
    widths = np.maximum(np.zeros((len(d), len(g))),
                        np.minimum(d[:, 3:4], g[:, 3].T) - np.maximum(d[:, 1:2], g[:, 1].T))
    inter = heights * widths
    area_d = (d[:, 2] - d[:, 0]) * (d[:, 3] - d[:, 1])
    area_g = (g[:, 2] - g[:, 0]) * (g[:, 3] - g[:, 1])
    with np.errstate(invalid="ignore", divide="ignore"):
        return inter / (area_d[:, None] + area_g[None, :] - inter)


def _reference_other(gt, det, labels, profile, excluded=()):
    """mmaction2 / slowfast, one keyframe at a time, written from their descriptions (int(ts) keys)."""
    mm = profile == "mmaction2"
    gts, dets = {}, {}
    for video, ts, box, action in gt:
        if box is not None and action in labels:
            gts.setdefault((video, int(ts)), []).append((action, box))
    for video, ts, box, action, score in det:
        if action in labels:
            dets.setdefault((video, int(ts)), []).append((score, action, box))
    excluded = set(excluded)
    if mm:
        num_gt = {c: sum(a == c for items in gts.values() for a, _ in items) for c in labels}
        keys = [k for k in gts if k not in excluded]
    else:
        num_gt = {c: sum(a == c for k, items in gts.items() if k not in excluded for a, _ in items) for c in labels}
        keys = [k for k in dets if k not in excluded]
    scores, hits = {c: [] for c in labels}, {c: [] for c in labels}
    for key in keys:
        items = dets.get(key, [])
        if mm:
            items = sorted(items, key=lambda e: -e[0])
        for c in labels:
            mine = [(s, b) for s, a, b in items if a == c]
            if not mm:
                mine = [(s, b) for s, b in mine if b[0] < b[2] and b[1] < b[3]]
            if not mine:
                continue
            g = [(b[1], b[0], b[3], b[2]) for a, b in gts.get(key, []) if a == c]
            d = [(b[1], b[0], b[3], b[2]) for _, b in mine]
            used, out = set(), []
            if g:
                iou = _np_box_iou(d, g, mm)
                best = np.argmax(iou, axis=1)
                for i in range(len(d)):
                    hit = iou[i, best[i]] >= 0.5 and best[i] not in used
                    if hit:
                        used.add(best[i])
                    out.append(hit)
            else:
                out = [False] * len(d)
            scores[c] += [s for s, _ in mine]
            hits[c] += out
    aps = {}
    for c in labels:
        if (mm and not scores[c]) or num_gt[c] == 0:
            aps[c] = float("nan")
            continue
        s = np.array(scores[c], np.float32 if mm else np.float64)
        p, r = ava.precision_recall(s, np.array(hits[c], bool), num_gt[c])
        aps[c] = ava.voc_ap(p, r)
    return aps


def _random_case(seed, n_frames=40):
    rng = np.random.default_rng(seed)
    gt, det = [], []
    for k in range(n_frames):
        ts = 902 + k
        boxes = []
        for _ in range(rng.integers(0, 4)):
            x1, y1 = np.round(rng.uniform(0, 0.6, 2), 3)
            boxes.append((x1, y1, round(x1 + 0.3, 3), round(y1 + 0.3, 3)))
        for box in boxes:
            for action in rng.choice([1, 2, 3, 4, 6], size=rng.integers(1, 3), replace=False):
                gt.append(("v", ts, box, int(action)))
        for _ in range(rng.integers(0, 12)):
            if boxes and rng.random() < 0.7:
                b = boxes[rng.integers(len(boxes))]
                box = tuple(float(np.clip(v + rng.choice([0, 0.001, -0.001, 0.06]), 0, 1)) for v in b)
            else:
                x1, y1 = np.round(rng.uniform(0, 0.6, 2), 3)
                box = (x1, y1, x1 if rng.random() < 0.1 else round(x1 + 0.3, 3), round(y1 + 0.3, 3))
            for action in (1, 2, 3, 4, 6):
                det.append(("v", ts + (0.4 if rng.random() < 0.05 else 0), box, action,
                            float(rng.choice([0.1, 0.2, 0.5, 0.7, 0.1234567]))))
    return gt, det


@pytest.mark.parametrize("profile", ["mmaction2", "slowfast"])
@pytest.mark.parametrize("seed", [0, 1])
def test_vectorized_equals_per_keyframe_reference(profile, seed):
    labels = {c: f"c{c}" for c in (1, 3, 4, 6)}
    gt, det = _random_case(seed)
    excluded = [("v", 905), ("v", 930)]
    result = run(gt, det, profile, labels=labels, exclusions=(["v", "v"], [905, 930]))
    expected = _reference_other(gt, det, labels, profile, excluded)
    for c in labels:
        assert same(result.per_class[str(c)], expected[c]), (profile, c)


def test_heap_top_k_matches_heapq():
    rng = np.random.default_rng(5)
    for _ in range(20):
        n = int(rng.integers(40, 120))
        score = rng.choice([0.1, 0.2, 0.3], n)
        action = rng.integers(1, 5, n)
        boxes = np.round(rng.uniform(0, 1, (n, 4)), 1)
        heap = []
        for i in range(n):
            entry = (float(score[i]), int(action[i]), boxes[i, 1], boxes[i, 0], boxes[i, 3], boxes[i, 2], i)
            if len(heap) < 50:
                heapq.heappush(heap, entry)
            elif entry[0] > heap[0][0]:
                heapq.heapreplace(heap, entry)
        # multiset of kept (score, class, box) entries
        want = sorted(e[:6] for e in heap)
        order = np.lexsort((np.arange(n), -score))
        kf = np.zeros(n, np.int64)
        keep = ava._heap_top_k(kf, score[order], np.arange(n), order, action, boxes, 50)
        kept = order[keep]
        got = sorted((float(score[i]), int(action[i]), boxes[i, 1], boxes[i, 0], boxes[i, 3], boxes[i, 2])
                     for i in kept)
        assert got == want


# ------------------------------------------------------------------------------------------------------------
# PaSta
# ------------------------------------------------------------------------------------------------------------

def _pasta_labels():
    from partwise import vocab

    v = vocab.load("pasta_ava87")
    return dict(zip(v.ids, v.names))


def test_pasta_part_means():
    labels = _pasta_labels()
    hold = next(k for k, v in labels.items() if v == "hand: hold")        # 35
    touch = next(k for k, v in labels.items() if v == "hand: touch")      # 38
    sit = next(k for k, v in labels.items() if v == "hip: sit on")        # 30
    # hand: hold TP (AP 1), touch GT with an FP-only detection (AP 0) -> hand 0.5; hip: sit on TP -> 1.
    # Other parts have no GT (NaN). Headline = mean of part means = (0.5 + 1) / 2 = 0.75.
    gt = [("v", 902, A, hold), ("v", 902, A, touch), ("v", 902, B, sit)]
    det = [("v", 902, A, hold, 0.9), ("v", 902, C, touch, 0.8), ("v", 902, B, sit, 0.7)]
    result = run(gt, det, "slowfast", labels=labels, pasta=True)
    assert result.protocol == "ava-pasta-slowfast"
    assert result.extra["parts"]["hand"] == 0.5 and result.extra["parts"]["hip"] == 1.0
    assert math.isnan(result.extra["parts"]["foot"])
    assert result.value == 0.75
    assert result.extra["mAP_classes"] == pytest.approx(2 / 3, abs=1e-15)


def test_pasta_cli_and_records(tmp_path, capsys):
    labels = _pasta_labels()
    head_listen = next(k for k, v in labels.items() if v == "head: listen")  # id 87, beyond AVA's 80
    (tmp_path / "gt.csv").write_text(f"vid00000001,0902,0.1,0.1,0.4,0.9,{head_listen},0\n"
                                     f"vid00000001,0902,0.5,0.1,0.8,0.9,30,1\n")
    (tmp_path / "det.csv").write_text(f"vid00000001,0902,0.1,0.1,0.4,0.9,{head_listen},0.8\n"
                                      f"vid00000001,0902,0.5,0.1,0.8,0.9,{head_listen},0.9\n"
                                      f"vid00000001,0902,0.5,0.1,0.8,0.9,30,0.4\n")
    code = cli_main(["eval", "ava", "--pasta", "--gt", str(tmp_path / "gt.csv"), "--pred",
                     str(tmp_path / "det.csv"), "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    # head: listen: FP 0.9 then TP 0.8 -> AP 0.5; hip: sit on TP -> 1.0; headline mean(0.5, 1.0)
    assert out["protocol"] == "ava-pasta-slowfast"
    assert out["parts"]["head"] == 0.5 and out["parts"]["hip"] == 1.0 and out["mAP"] == 0.75

    import pyarrow as pa

    gt_table = pa.table({"video_id": ["vid00000001"] * 2, "time_s": [902.0, 902.0],
                         "x1": [0.1, 0.5], "y1": [0.1, 0.1], "x2": [0.4, 0.8], "y2": [0.9, 0.9],
                         "person_id": [0, 1], "score": pa.array([None, None], pa.float64()),
                         "pasta": [["head: listen"], ["hip: sit on"]]})
    det_table = pa.table({"video_id": ["vid00000001"] * 2, "time_s": [902.0, 902.0],
                          "x1": [0.1, 0.5], "y1": [0.1, 0.1], "x2": [0.4, 0.8], "y2": [0.9, 0.9],
                          "person_id": pa.array([None, None], pa.int64()), "score": [0.8, 0.9],
                          "pasta": [["head: listen"], ["head: listen"]]})
    records = evaluate(gt_table, det_table, labels, profile="slowfast", pasta=True)
    # same head detections as the CSV; hip has GT but no detection here: slowfast gives AP 0 -> hip part 0
    assert records.extra["parts"]["head"] == 0.5 and records.extra["parts"]["hip"] == 0.0
    assert records.value == 0.25
    from partwise.errors import InputError

    bad = det_table.set_column(det_table.column_names.index("pasta"), "pasta",
                               pa.array([["head: listen"], ["hand: juggle"]]))
    with pytest.raises(InputError, match="unknown part state 'hand: juggle'"):
        evaluate(gt_table, bad, labels, profile="slowfast", pasta=True)


# ------------------------------------------------------------------------------------------------------------
# malformed inputs -> exit 2, one line naming file and line
# ------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("bad_line, reason", [
    ("vid00000001,0902,0.1,0.1,0.4\n", "fields"),
    ("vid00000001,0902,0.1,0.1,0.4,0.9,99,0.5\n", "action"),
    ("vid00000001,0902,0.1,0.1,0.4,0.9,1,nan\n", "NaN"),
    ("vid00000001,0902,0.1,0.1,1.4,0.9,1,0.5\n", "[0, 1]"),
])
def test_malformed_detections_exit_2(tmp_path, capsys, bad_line, reason):
    det = tmp_path / "det.csv"
    det.write_text("vid00000001,0902,0.1,0.1,0.4,0.9,1,0.5\n" + bad_line)
    code = cli_main(["eval", "ava", "--gt", str(FIX / "gt.csv"), "--pred", str(det),
                     "--labelmap", str(FIX / "labelmap60.pbtxt")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1
    assert f"{det}:line 2" in err
    assert reason.lower() in err.lower()


def test_in_memory_rows_are_checked():
    from partwise.errors import InputError

    with pytest.raises(InputError, match="det.csv:line 2: detection without a score"):
        evaluate(gt_rows([("v", 902, A, 1)]),
                 make_rows(["v", "v"], [902, 902], [A, A], [1, 1], [0.5, np.nan], [-1, 3], path="det.csv"), LABELS)
    with pytest.raises(InputError, match="gt.csv:line 1: timestamp or box"):
        evaluate(gt_rows([("v", 902, (0.1, np.inf, 0.2, 0.3), 1)]), det_rows([]), LABELS)


def test_unknown_profile_and_missing_labelmap(capsys):
    assert cli_main(["eval", "ava", "--gt", str(FIX / "gt.csv"), "--pred", str(FIX / "det.csv")]) == 2
    assert "--labelmap" in capsys.readouterr().err
    with pytest.raises(ConfigError):
        evaluate(FIX / "gt.csv", FIX / "det.csv", LABELS, profile="voc")
