"""HICO-DET evaluator: hand-computed tiny cases, the ho-rcnn fixture, prediction parsing and the CLI."""
import json
import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from partwise.cli import main as cli_main
from partwise.data import hico_det
from partwise.errors import InputError
from partwise.eval import hico

A = [1, 1, 10, 10]  # 1-based inclusive box: 10 x 10 pixels
B = [101, 101, 120, 120]


def seq_ap(precisions):
    """11-point AP summed in order as ho-rcnn does (11 x 1/11 is 1.0000000000000002, not 1)."""
    ap = 0.0
    for p in precisions:
        ap += p / 11
    return ap


FULL = seq_ap([1.0] * 11)


def pairs(rows, scores=None):
    """rows: (image, class, human box, object box)."""
    image = np.array([r[0] for r in rows], dtype=np.int64)
    cls = np.array([r[1] for r in rows], dtype=np.int64)
    boxes = np.array([list(r[2]) + list(r[3]) for r in rows], dtype=np.float64).reshape(-1, 8)
    return hico.Pairs(image, cls, boxes, None if scores is None else np.asarray(scores, dtype=np.float64))


def ap_of(gt_rows, det_rows, scores, *, n_classes=1, n_images=3, profile="official"):
    return hico.evaluate_pairs(pairs(gt_rows), pairs(det_rows, scores), n_classes, n_images, profile=profile).ap


def test_thresholds_are_matlab_colon_values():
    t = hico.matlab_thresholds()
    assert t[3] == 0.30000000000000004 and t[6] == 0.6 and t[7] == 0.7
    a = hico.arange_thresholds()
    assert a[6] == 0.6000000000000001 and a[7] == 0.7000000000000001


def test_score_ties_keep_input_order():
    gt = [(0, 0, A, A)]
    fp, tp = (1, 0, A, A), (0, 0, A, A)
    # tied scores: the FP listed first stays first -> precision 1/2 at recall 1
    assert ap_of(gt, [fp, tp], [0.9, 0.9])[0] == pytest.approx(0.5, abs=1e-15)
    assert ap_of(gt, [tp, fp], [0.9, 0.9])[0] == pytest.approx(1.0, abs=1e-15)


def test_evaluate_hico_breaks_ties_by_image_index_like_eval_one():
    gt = pairs([(0, 0, A, A)])
    # file order lists image 1 first; ho-rcnn concatenates detections in image order -> the TP of image 0 wins
    det = pairs([(1, 0, [0, 0, 9, 9], [0, 0, 9, 9]), (0, 0, [0, 0, 9, 9], [0, 0, 9, 9])], [0.5, 0.5])
    res = hico.evaluate_hico(gt, det, 2)["default"]
    assert res.classes.ap[0] == pytest.approx(1.0, abs=1e-15)


def test_iou_exactly_half_is_a_hit():
    gt = [(0, 0, A, A)]
    half = [1, 1, 10, 5]  # inclusive: 10 x 5 = 50 px inside a 100 px box -> IoU 0.5
    less = [1, 1, 10, 4]  # 40 / 100
    assert ap_of(gt, [(0, 0, A, half)], [1.0])[0] == FULL
    assert ap_of(gt, [(0, 0, A, less)], [1.0])[0] == 0.0


def test_duplicate_detection_is_false_positive():
    gt = [(0, 0, A, A), (1, 0, A, A)]
    dets = [(0, 0, A, A), (0, 0, A, A), (1, 0, A, A)]
    # TP, FP (duplicate), TP: rec .5 .5 1, prec 1 .5 2/3 -> 6 thresholds at 1, 5 at 2/3
    expected = seq_ap([1.0] * 6 + [2 / 3] * 5)
    assert ap_of(gt, dets, [0.9, 0.8, 0.7])[0] == expected


def test_duplicate_gt_counts_twice_and_no_fallback_to_second_gt():
    gt = [(0, 0, A, A), (0, 0, A, A)]
    # one detection: recall 1/2
    assert ap_of(gt, [(0, 0, A, A)], [0.9])[0] == pytest.approx(6 / 11, abs=1e-15)
    # a second identical detection picks the same (first) GT again: FP, recall stays 1/2
    assert ap_of(gt, [(0, 0, A, A), (0, 0, A, A)], [0.9, 0.8])[0] == pytest.approx(6 / 11, abs=1e-15)
    res = hico.evaluate_pairs(pairs(gt), pairs([(0, 0, A, A)], [0.9]), 1, 1)
    assert res.npos[0] == 2 and res.recall[0] == 0.5


def test_detection_in_image_without_gt_is_false_positive():
    gt = [(0, 0, A, A)]
    assert ap_of(gt, [(2, 0, A, A), (0, 0, A, A)], [0.9, 0.8])[0] == pytest.approx(0.5, abs=1e-15)


def test_class_without_detections_and_class_without_gt_have_ap_zero():
    gt = [(0, 0, A, A), (0, 1, B, B)]
    ap = ap_of(gt, [(0, 0, A, A), (0, 2, A, A)], [0.9, 0.9], n_classes=3)
    assert list(ap) == [FULL, 0.0, 0.0]


def test_zero_area_boxes_are_one_pixel_wide():
    gt = pairs([(0, 0, [5, 5, 5, 5], [7, 7, 7, 7])])
    det = pairs([(0, 0, [4, 4, 4, 4], [6, 6, 6, 6])], [0.3])  # 0-based, +1 -> identical single pixels
    assert hico.evaluate_hico(gt, det, 1)["default"].classes.ap[0] == FULL
    # the legacy port compares as given with continuous IoU: a zero-area box never overlaps
    det_same = pairs([(0, 0, [5, 5, 5, 5], [7, 7, 7, 7])], [0.3])
    assert hico.evaluate_hico(gt, det_same, 1, profile="legacy")["default"].classes.ap[0] == 0.0


def test_empty_inputs():
    empty = pairs([], [])
    res = hico.evaluate_hico(empty, empty, 5, rare=np.zeros(600, dtype=bool))["default"]
    assert res.full == 0.0 and res.rare is None and res.non_rare == 0.0
    assert res.classes.ap.shape == (600,)


def test_best_gt_first_on_ties_and_lower_overlap_gt_not_used():
    # det overlaps GT0 and GT1 equally -> takes GT0; second det, same boxes -> GT0 again -> FP
    g0 = (0, 0, A, A)
    g1 = (0, 0, A, A)
    res = hico.evaluate_pairs(pairs([g0, g1]), pairs([(0, 0, A, A)] * 2, [0.9, 0.8]), 1, 1)
    assert res.recall[0] == 0.5


def test_fixture_ap_official_and_arange_reproduced(fixtures_dir):
    data = json.loads((fixtures_dir / "hico_ap_small.json").read_text())
    for k, case in enumerate(data["classes"]):
        gt_rows = [(int(i) - 1, 0, r[:4], r[4:]) for i, rows in case["gt"].items() for r in rows]
        dets = np.array(case["dets"], dtype=np.float64)
        det = hico.Pairs(dets[:, 0].astype(np.int64) - 1, np.zeros(len(dets), dtype=np.int64), dets[:, 1:9], dets[:, 9])
        res = hico.evaluate_pairs(pairs(gt_rows), det, 1, case["n_images"])
        assert res.ap[0] == case["ap_official"], k  # bit-exact
        order = np.argsort(-det.score, kind="stable")
        tp = hico.match_pairs(det.take(order), pairs(gt_rows), case["n_images"], inclusive=True)
        ap_arange, _, _ = hico.ap_11_point(tp, len(gt_rows), hico.arange_thresholds())
        assert ap_arange == case["ap_arange_thresholds"], k
    differing = [k for k, c in enumerate(data["classes"]) if c["ap_official"] != c["ap_arange_thresholds"]]
    assert differing == [0, 1, 3]


def test_legacy_keeps_top_100_per_image():
    gt = [(0, 0, A, A)]
    misses = [(0, 1, B, B)] * 100
    dets = misses + [(0, 0, A, A)]
    scores = [0.9] * 100 + [0.1]
    p_gt, p_det = pairs(gt), pairs(dets, scores)
    assert hico.evaluate_hico(p_gt, p_det, 1, pred_one_based=True)["default"].classes.ap[0] == FULL
    legacy = hico.evaluate_hico(p_gt, p_det, 1, profile="legacy")["default"]
    assert legacy.classes.ap[0] == 0.0
    # legacy averages over classes with GT only (class 0 here)
    assert legacy.full == 0.0


def test_legacy_uses_continuous_iou_and_arange_thresholds():
    gt = [(0, 0, [0, 0, 10, 10], [0, 0, 10, 10])]
    half = [0, 0, 10, 5]  # continuous: 50 / 100
    assert ap_of(gt, [(0, 0, gt[0][2], half)], [1.0], profile="legacy")[0] == FULL
    # 5 GT, 3 TP then an FP: recall exactly 0.6 at precision 1; np.arange's 0.6000000000000001 misses it
    gts = [(i, 0, A, A) for i in range(5)]
    dets = [(i, 0, A, A) for i in range(3)] + [(4, 0, B, B)]
    official = ap_of(gts, dets, [0.9, 0.8, 0.7, 0.6], n_images=5)[0]
    gts_c = [(i, 0, [0, 0, 10, 10], [0, 0, 10, 10]) for i in range(5)]
    legacy = hico.evaluate_pairs(pairs(gts_c), pairs([(i, 0, [0, 0, 10, 10], [0, 0, 10, 10]) for i in range(3)]
                                                     + [(4, 0, B, B)], [0.9, 0.8, 0.7, 0.6]),
                                 1, 5, profile="legacy").ap[0]
    assert official == pytest.approx(7 / 11, abs=1e-15)
    assert legacy == pytest.approx(6 / 11, abs=1e-15)


def test_known_object_drops_detections_outside_known_images():
    gt = pairs([(0, 154, A, A)])  # HOI 155 (sit_on motorcycle), object 45
    det = pairs([(1, 154, [0, 0, 9, 9], [0, 0, 9, 9]), (0, 154, [0, 0, 9, 9], [0, 0, 9, 9])], [0.9, 0.8])
    labels = np.full((600, 2), np.nan)
    labels[153, 0] = 1  # HOI 154 (ride motorcycle) positive in image 0: motorcycle known there
    labels[154, 1] = -1
    known = hico.known_object_mask(labels, ["a", "b"], ["a", "b"])
    assert known.shape == (80, 2) and known[44, 0] and not known[44, 1]
    res = hico.evaluate_hico(gt, det, 2, known_object=known)
    assert res["default"].classes.ap[154] == pytest.approx(0.5, abs=1e-15)
    assert res["known_object"].classes.ap[154] == FULL


def test_rare_split_from_counts():
    counts = np.zeros(601, dtype=np.int64)
    counts[1:] = 10
    counts[5] = 9
    mask = hico.rare_mask_from_counts(counts)
    assert mask.sum() == 1 and mask[4]


# ------------------------------------------------------------------------------------------------ prediction files

NAMES = ["HICO_test2015_00000001.jpg", "HICO_test2015_00000002.jpg"]


def write(tmp_path, name, obj):
    path = tmp_path / name
    path.write_text(json.dumps(obj) if not isinstance(obj, str) else obj)
    return path


def test_json_list_and_dict_forms(tmp_path):
    det = {"hoi": 155, "human_box": [0, 1, 2, 3], "object_box": [4, 5, 6, 7], "score": 0.5}
    vo = {"verb": 88, "object": 45, "human_box": [0, 1, 2, 3], "object_box": [4, 5, 6, 7], "score": 0.25}
    p1 = hico.read_predictions(write(tmp_path, "a.json", [{"image": NAMES[1], "detections": [det, vo]}]), NAMES)
    p2 = hico.read_predictions(write(tmp_path, "b.json", {"2": [det, vo]}), NAMES)
    for p in (p1, p2):
        assert list(p.image) == [1, 1] and list(p.cls) == [154, 154]
        assert p.boxes[0].tolist() == [0, 1, 2, 3, 4, 5, 6, 7] and list(p.score) == [0.5, 0.25]


@pytest.mark.parametrize("det, where", [
    ({"hoi": 601, "human_box": [0, 0, 1, 1], "object_box": [0, 0, 1, 1], "score": 0.5}, "[0].detections[1].hoi"),
    ({"verb": 1, "object": 45, "human_box": [0, 0, 1, 1], "object_box": [0, 0, 1, 1], "score": 0.5},
     "[0].detections[1].hoi"),
    ({"hoi": 1, "human_box": [0, 0, 1], "object_box": [0, 0, 1, 1], "score": 0.5}, "[0].detections[1].human_box"),
    ({"hoi": 1, "human_box": [0, 0, 1, 1], "object_box": [0, 0, 1, 1]}, "[0].detections[1].score"),
    ({"hoi": 1, "human_box": [0, 0, 1, 1], "object_box": [0, 0, 1, 1], "score": "high"}, "[0].detections[1].score"),
    ({"hoi": 1, "human_box": [5, 0, 1, 1], "object_box": [0, 0, 1, 1], "score": 0.1}, "[0].detections[1].human_box"),
])
def test_malformed_json_predictions_name_the_key(tmp_path, det, where):
    good = {"hoi": 1, "human_box": [0, 0, 1, 1], "object_box": [0, 0, 1, 1], "score": 0.5}
    path = write(tmp_path, "p.json", [{"image": NAMES[0], "detections": [good, det]}])
    with pytest.raises(InputError) as err:
        hico.read_predictions(path, NAMES)
    assert str(err.value).startswith(f"{path}:{where}:")


def test_nan_score_and_unknown_image_and_bad_json(tmp_path):
    path = write(tmp_path, "n.json", '[{"image": 1, "detections": [{"hoi": 3, "human_box": [0,0,1,1], '
                                     '"object_box": [0,0,1,1], "score": NaN}]}]')
    with pytest.raises(InputError, match=r"n\.json:\[0\]\.detections\[0\]\.score: score is NaN"):
        hico.read_predictions(path, NAMES)
    path = write(tmp_path, "u.json", {"HICO_nope.jpg": []})
    with pytest.raises(InputError, match="unknown image"):
        hico.read_predictions(path, NAMES)
    path = write(tmp_path, "bad.json", '[{"image": 1,\n "detections": [}]')
    with pytest.raises(InputError, match=r"bad\.json:line 2: invalid JSON"):
        hico.read_predictions(path, NAMES)


def _parquet(tmp_path, **overrides):
    cols = {"image": NAMES, "hoi_id": [155, 3], "hx1": [0.0, 1], "hy1": [0.0, 1], "hx2": [9.0, 5], "hy2": [9.0, 5],
            "ox1": [0.0, 1], "oy1": [0.0, 1], "ox2": [9.0, 5], "oy2": [9.0, 5], "score": [0.5, 0.25]}
    cols.update(overrides)
    cols = {k: v for k, v in cols.items() if v is not None}
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table(cols), path)
    return path


def test_parquet_predictions(tmp_path):
    p = hico.read_predictions(_parquet(tmp_path), NAMES)
    assert list(p.image) == [0, 1] and list(p.cls) == [154, 2] and p.boxes[1].tolist() == [1, 1, 5, 5] * 2
    p = hico.read_predictions(_parquet(tmp_path, image=[2, 1]), NAMES)
    assert list(p.image) == [1, 0]


@pytest.mark.parametrize("override, where", [
    ({"score": None}, "column score: missing"),
    ({"hoi_id": [1, 700]}, "row 2.hoi_id: unknown HOI class"),
    ({"score": [0.5, float("nan")]}, "row 2.score: score is NaN"),
    ({"image": ["HICO_test2015_00000001.jpg", "x.jpg"]}, "row 2.image: unknown image"),
    ({"hoi_id": [1.0, 2.0]}, "column hoi_id: must be integer"),
])
def test_malformed_parquet_names_column_and_row(tmp_path, override, where):
    path = _parquet(tmp_path, **override)
    with pytest.raises(InputError) as err:
        hico.read_predictions(path, NAMES)
    assert str(err.value).startswith(f"{path}:{where}")


# ------------------------------------------------------------------------------------------------------------ CLI

def test_cli_json_gt_with_rare_from_sibling_and_known_object(tmp_path, fixtures_dir, capsys):
    gt = fixtures_dir / "hico" / "test_hico.json"
    # image 1: HOI 155 twice (duplicate GT) -> one detection gives recall 1/2; image 2 HOI 155 detected too
    preds = {
        "HICO_test2015_00000001.jpg": [
            {"hoi": 155, "human_box": [10, 20, 110, 220], "object_box": [50, 60, 150, 160], "score": 0.9},
            {"hoi": 170, "human_box": [10, 20, 110, 220], "object_box": [200, 20, 300, 220], "score": 0.8}],
        "HICO_test2015_00000002.jpg": [
            {"hoi": 155, "human_box": [0, 0, 99, 99], "object_box": [100, 0, 199, 99], "score": 0.7}],
        "HICO_test2015_00000003.jpg": [
            {"hoi": 154, "human_box": [0, 0, 99, 99], "object_box": [100, 0, 199, 99], "score": 0.95}],
    }
    pred = write(tmp_path, "pred.json", preds)
    labels = hico_det.AnnoLabels(["HICO_train2015_00000001.jpg"], [f"HICO_test2015_0000000{i}.jpg" for i in (1, 2, 3)],
                                 np.zeros((600, 1)), np.full((600, 3), np.nan))
    labels.anno_test[154, 0] = 1  # motorcycle known in image 1 only
    labels.anno_test[161, 0] = 1  # HOI 162 (greet person): person known in image 1
    anno = tmp_path / "anno.mat"
    hico_det.write_anno_labels(labels, anno)
    rc = cli_main(["eval", "hico", "--gt", str(gt), "--pred", str(pred), "--anno", str(anno), "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["protocol"] == "hico-det official"
    pc = out["per_class"]
    assert len(pc) == 600
    # HOI 155: npos 3; dets 0.9 TP, 0.7 TP -> rec 1/3, 2/3, prec 1 -> 7 thresholds (0..0.6) at 1
    assert pc["155"] == pytest.approx(7 / 11, abs=1e-15)
    assert pc["170"] == FULL
    assert pc["154"] == 0.0  # its only detection is in an image without GT
    assert out["mAP"] == pytest.approx((7 / 11 + 1) / 600, abs=1e-15)
    # rare from trainval_hico.json beside the GT: every class has < 10 training instances
    assert out["default"]["rare"] == pytest.approx(out["mAP"]) and out["default"]["non_rare"] is None
    # known object: HOI 155 loses the image-2 detection (motorcycle not known there) -> recall 1/3 -> AP 4/11
    ko = out["known_object"]["full"]
    assert ko == pytest.approx((4 / 11 + 1) / 600, abs=1e-15)
    assert out["known_object"]["rare"] == pytest.approx(ko)


def test_cli_anno_bbox_mat_gt_and_parquet_legacy(tmp_path, capsys):
    test = [hico_det.HicoImage("img1.jpg", 100, 100, 3, [hico_det.HicoHoi(
        3, np.array([[1.0, 1, 10, 10]]), np.array([[1.0, 1, 10, 10], [50, 50, 60, 60]]), np.array([[1, 1], [1, 2]]))]),
        hico_det.HicoImage("img2.jpg", 100, 100, 3, [])]
    train = [hico_det.HicoImage("tr.jpg", 100, 100, 3, [hico_det.HicoHoi(
        3, np.array([[1.0, 1, 10, 10]]), np.array([[1.0, 1, 10, 10]]), np.array([[1, 1]] * 12))])]
    mat = tmp_path / "anno_bbox.mat"
    hico_det.write_anno_bbox(hico_det.AnnoBbox(train, test), mat)
    pred = tmp_path / "p.parquet"
    pq.write_table(pa.table({"image": ["img1.jpg"], "hoi_id": [3], "hx1": [0.0], "hy1": [0.0], "hx2": [9.0],
                             "hy2": [9.0], "ox1": [0.0], "oy1": [0.0], "ox2": [9.0], "oy2": [9.0], "score": [1.0]}), pred)
    assert cli_main(["eval", "hico", "--gt", str(mat), "--pred", str(pred), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["per_class"]["3"] == pytest.approx(6 / 11, abs=1e-15)  # npos 2, one TP
    assert out["default"]["non_rare"] == pytest.approx(6 / 11, abs=1e-15)  # 12 training connections: non-rare
    assert out["default"]["rare"] == 0.0
    assert cli_main(["eval", "hico", "--gt", str(mat), "--pred", str(pred), "--profile", "legacy", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    # legacy compares [0,0,9,9] with [1,1,10,10] as given: continuous IoU 64/98 >= 0.5 -> TP; mean over class 3 only
    assert out["protocol"] == "hico-det legacy" and out["mAP"] == pytest.approx(6 / 11, abs=1e-15)


def test_cli_bad_prediction_is_one_line_error(tmp_path, fixtures_dir, capsys):
    pred = write(tmp_path, "p.json", {"1": [{"hoi": 0, "human_box": [0, 0, 1, 1], "object_box": [0, 0, 1, 1],
                                             "score": 1}]})
    rc = cli_main(["eval", "hico", "--gt", str(fixtures_dir / "hico" / "test_hico.json"), "--pred", str(pred)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and '[\"1\"][0].hoi: unknown HOI class' in err


# ------------------------------------------------------------------------ independent loop implementations (random)

def _loop_iou(a, b, inclusive):
    one = 1.0 if inclusive else 0.0
    iw = min(a[2], b[2]) - max(a[0], b[0]) + one
    ih = min(a[3], b[3]) - max(a[1], b[1]) + one
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / ((a[2] - a[0] + one) * (a[3] - a[1] + one) + (b[2] - b[0] + one) * (b[3] - b[1] + one) - inter)


def _loop_ap(flags, npos, thresholds):
    tp = np.cumsum([1.0 if f else 0.0 for f in flags])
    fp = np.cumsum([0.0 if f else 1.0 for f in flags])
    if not len(flags) or npos == 0:
        return 0.0
    rec, prec = tp / npos, tp / (tp + fp)
    ap = 0.0
    for t in thresholds:
        sel = prec[rec >= t]
        ap += (sel.max() if sel.size else 0.0) / 11
    return ap


def _official_loop(gt_rows, det_rows, scores, n_classes):
    """ho-rcnn's loop, per class: stable sort, best GT (first on ties), >= 0.5, duplicates FP."""
    aps = []
    for c in range(n_classes):
        gts = [g for g in gt_rows if g[1] == c]
        dets = sorted([(d, s) for d, s in zip(det_rows, scores) if d[1] == c], key=lambda x: -x[1])
        used = set()
        flags = []
        for (img, _, hb, ob), _ in dets:
            best, best_j = -1.0, None
            for j, g in enumerate(gts):
                if g[0] != img:
                    continue
                ov = min(_loop_iou(hb, g[2], True), _loop_iou(ob, g[3], True))
                if ov > best:
                    best, best_j = ov, j
            ok = best >= 0.5 and best_j not in used
            if ok:
                used.add(best_j)
            flags.append(ok)
        aps.append(_loop_ap(flags, len(gts), hico.matlab_thresholds()))
    return aps


def _qpic_loop(gt_rows, det_rows, scores, n_classes, n_images):
    """QPIC's hico_eval: per image top-100, per-image matching, per-triplet np.argsort(-score), np.arange AP."""
    tp = {c: [] for c in range(n_classes)}
    sc = {c: [] for c in range(n_classes)}
    for img in range(n_images):
        preds = sorted([(d, s) for d, s in zip(det_rows, scores) if d[0] == img], key=lambda x: -x[1])[:100]
        gts = [g for g in gt_rows if g[0] == img]
        vis = [False] * len(gts)
        for (_, c, hb, ob), s in preds:
            max_ov, max_j = 0.0, None
            for j, g in enumerate(gts):
                ov_h, ov_o = _loop_iou(hb, g[2], False), _loop_iou(ob, g[3], False)
                if g[1] == c and ov_h >= 0.5 and ov_o >= 0.5 and min(ov_h, ov_o) > max_ov:
                    max_ov, max_j = min(ov_h, ov_o), j
            hit = max_j is not None and not vis[max_j]
            if hit:
                vis[max_j] = True
            tp[c].append(hit)
            sc[c].append(s)
    aps = []
    for c in range(n_classes):
        order = np.argsort(-np.array(sc[c], dtype=np.float64))
        aps.append(_loop_ap([tp[c][k] for k in order], sum(g[1] == c for g in gt_rows), hico.arange_thresholds()))
    return aps


@pytest.mark.parametrize("seed", range(6))
def test_matches_independent_loops_on_random_scenes(seed):
    rng = np.random.default_rng(seed)
    n_images, n_classes = 12, 4

    def box():
        x, y = rng.integers(0, 6, 2)
        return [float(x), float(y), float(x + rng.integers(0, 6)), float(y + rng.integers(0, 6))]

    gt_rows = [(int(rng.integers(n_images)), int(rng.integers(n_classes)), box(), box()) for _ in range(30)]
    det_rows, scores = [], []
    for _ in range(150):
        if rng.random() < 0.6:
            g = gt_rows[rng.integers(len(gt_rows))]
            det_rows.append((g[0], g[1], [v + rng.integers(-1, 2) for v in g[2]], [v + rng.integers(-1, 2) for v in g[3]]))
        else:
            det_rows.append((int(rng.integers(n_images)), int(rng.integers(n_classes)), box(), box()))
        det_rows[-1] = (det_rows[-1][0], det_rows[-1][1], sorted_box(det_rows[-1][2]), sorted_box(det_rows[-1][3]))
        scores.append(float(rng.integers(0, 5)) / 4)  # many ties
    # official: detections listed in image order (as evaluate_hico does)
    listed = sorted(range(len(det_rows)), key=lambda k: det_rows[k][0])
    det_sorted = [det_rows[k] for k in listed]
    sc_sorted = [scores[k] for k in listed]
    got = hico.evaluate_pairs(pairs(gt_rows), pairs(det_sorted, sc_sorted), n_classes, n_images).ap
    assert got.tolist() == _official_loop(gt_rows, det_sorted, sc_sorted, n_classes)
    got = hico.evaluate_pairs(pairs(gt_rows), pairs(det_rows, scores), n_classes, n_images, profile="legacy").ap
    assert got.tolist() == _qpic_loop(gt_rows, det_rows, scores, n_classes, n_images)


def sorted_box(b):
    return [min(b[0], b[2]), min(b[1], b[3]), max(b[0], b[2]), max(b[1], b[3])]


def test_chart_shows_only_classes_with_ground_truth(tmp_path, fixtures_dir):
    """The HICO-DET AP chart: HOIs without a ground-truth pair are listed as "no GT", not drawn as AP 0 bars."""
    import argparse

    from partwise.eval.report import ap_bar_data

    gt = fixtures_dir / "hico" / "test_hico.json"
    pred = write(tmp_path, "pred.json", {"HICO_test2015_00000001.jpg": [
        {"hoi": 155, "human_box": [10, 20, 110, 220], "object_box": [50, 60, 150, 160], "score": 0.9}]})
    parser = argparse.ArgumentParser()
    hico.add_arguments(parser)
    args = parser.parse_args(["--gt", str(gt), "--pred", str(pred)])
    args.plot = None  # added by the eval CLI for every metric
    result = hico.run(args)
    data = ap_bar_data(result)
    with_gt = {k for k, n in result.gt_counts.items() if n > 0}
    assert 0 < len(with_gt) < 600
    assert len(data["bars"]) == len(with_gt) and len(data["no_gt"]) == 600 - len(with_gt)
