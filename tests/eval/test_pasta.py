import argparse
import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from partwise import vocab
from partwise.data.records import RecordBuilder
from partwise.errors import InputError
from partwise.eval import pasta as P

INSTANCE = Path(__file__).parent.parent / "fixtures" / "hake" / "hico-det-training-set-instance-level.json"


def _ap(det_image, det_boxes, scores, gt_image, gt_boxes, labels):
    labels = np.array(labels, bool)
    ap, _, _ = P.class_ap(np.array(det_image), np.array(det_boxes, float).reshape(-1, 4),
                          np.array(scores, float).reshape(len(det_image), labels.shape[1]), np.array(gt_image),
                          np.array(gt_boxes, float).reshape(-1, 4), labels)
    return ap


def test_iou_is_continuous_without_plus_one():
    iou = P.box_iou_pairs(np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 0, 0]], float),
                          np.array([[5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 0, 0]], float))
    assert iou.tolist() == [50 / 150, 0.0, 0.0]


def test_iou_exactly_threshold_is_not_a_hit():
    gt = [[0, 0, 10, 10]]
    assert _ap(["a"], [[0, 0, 3, 10]], [[1.0]], ["a"], gt, [[True]]).tolist() == [0.0]  # IoU 30/100 == 0.3
    assert _ap(["a"], [[0, 0, 3.01, 10]], [[1.0]], ["a"], gt, [[True]]).tolist() == [1.0]


def test_score_ties_rank_the_later_detection_first():
    gt = [[0, 0, 10, 10]]
    far = [50, 50, 60, 60]
    # [miss, hit] with equal scores: the hit (later) ranks first -> precision 1 at recall 1
    assert _ap(["a", "a"], [far, gt[0]], [[0.5], [0.5]], ["a"], gt, [[True]]).tolist() == [1.0]
    # [hit, miss]: the miss ranks first -> precision (0, 1/2), recall (0, 1): every threshold sees 1/2
    assert _ap(["a", "a"], [gt[0], far], [[0.5], [0.5]], ["a"], gt, [[True]]).tolist() == [0.5]


def test_duplicate_detection_is_a_false_positive():
    gts = [[0, 0, 10, 10], [0, 0, 10, 10]]
    dets = [[0, 0, 10, 10], [1, 0, 10, 10], [0, 0, 10, 10]]
    ap = _ap(["a", "a", "b"], dets, [[0.9], [0.8], [0.7]], ["a", "b"], gts, [[True], [True]])
    # ranks: hit (recall .5, precision 1), duplicate (.5, .5), hit (1, 2/3)
    # thresholds 0..0.5 (6 of them) see precision 1; 0.6..1.0 (5) see 2/3
    assert ap[0] == pytest.approx((6 * 1 + 5 * (2 / 3)) / 11)


def test_detection_takes_the_unmatched_box_with_the_highest_iou():
    gts = [[0, 0, 10, 10], [2, 0, 12, 10]]
    dets = [[1, 0, 11, 10], [2, 0, 12, 10]]
    # det 0 (score .9) overlaps both (IoU 9/11 each); ties go to the first GT, so det 1 still finds GT 1
    ap = _ap(["a", "a"], dets, [[0.9], [0.8]], ["a", "a"], gts, [[True], [True]])
    assert ap.tolist() == [1.0]
    # only one GT has the label: the second detection is a false positive
    ap = _ap(["a", "a"], dets, [[0.9], [0.8]], ["a", "a"], gts, [[False], [True]])
    assert ap.tolist() == [1.0]  # det 0 matches GT 1 (IoU 9/11), det 1 ranks after recall 1
    ap = _ap(["a", "a"], dets, [[0.8], [0.9]], ["a", "a"], gts, [[True], [False]])
    assert ap.tolist() == [1.0]  # det 1 (IoU 80/120 with GT 0) ranks first and hits; det 0 comes after recall 1


def test_images_without_ground_truth_and_classes_without_detections_or_gt():
    gt = [[0, 0, 10, 10]]
    # a top-scored detection in an image without GT is a false positive
    ap = _ap(["x", "a"], [[0, 0, 10, 10], [0, 0, 10, 10]], [[0.9, 0.1], [0.8, 0.2]], ["a"], gt, [[True, False]])
    assert ap[0] == pytest.approx(0.5) and math.isnan(ap[1])  # class 1: no GT -> NaN
    # no detections at all: classes with GT get 0, others NaN
    ap = _ap([], [], np.zeros((0, 2)), ["a"], gt, [[True, False]])
    assert ap[0] == 0.0 and math.isnan(ap[1])


def test_empty_inputs_give_nan_headline():
    det = P.Detections(np.array([], object), np.zeros((0, 4)), np.zeros((0, 93)), np.zeros((0, 157)))
    gt = P.GroundTruth(np.array([], object), np.zeros((0, 4)), np.zeros((0, 93), bool), np.zeros((0, 157), bool))
    result = P.evaluate(det, gt)
    assert math.isnan(result.value) and all(math.isnan(v) for v in result.per_class.values())
    assert json.loads(result.to_json())["mAP"] is None


def test_summaries_with_and_without_no_interaction():
    pasta_ap = np.full(93, np.nan)
    pasta_ap[0], pasta_ap[1], pasta_ap[15] = 1.0, 0.5, 0.0  # foot: two states and no_interaction (15)
    pasta_ap[31], pasta_ap[36] = 0.25, 0.75  # hip: sit on, no_interaction
    verb_ap = np.full(157, np.nan)
    verb_ap[0], verb_ap[57], verb_ap[120] = 0.2, 0.8, 0.5
    out = P.summarize(pasta_ap, verb_ap)
    assert out["part_mAP"]["foot"] == pytest.approx(0.5) and out["part_mAP_without_no_interaction"]["foot"] == 0.75
    assert out["part_mAP"]["hip"] == 0.5 and out["part_mAP_without_no_interaction"]["hip"] == 0.25
    assert math.isnan(out["part_mAP"]["leg"])
    assert out["pasta_mAP"] == pytest.approx(0.5) and out["pasta_mAP_without_no_interaction"] == pytest.approx(0.5)
    assert out["verb_mAP_157"] == pytest.approx(0.5) and out["verb_mAP_157_without_no_interaction"] == pytest.approx(0.35)
    assert out["verb_mAP_117"] == pytest.approx(0.5) and out["verb_mAP_117_without_no_interaction"] == pytest.approx(0.2)


def _reference_ap(det_image, det_boxes, scores, gt_image, gt_boxes, labels, thr=0.3):
    """Straightforward per-class, per-detection loop written from the protocol text."""
    n, k = scores.shape
    out = []
    for c in range(k):
        npos = labels[:, c].sum()
        if npos == 0:
            out.append(np.nan)
            continue
        used = np.zeros(len(gt_image), bool)
        tp = []
        for j in sorted(range(n), key=lambda j: (-scores[j, c], -j)):
            best, best_iou = -1, 0.0
            for g in range(len(gt_image)):
                if gt_image[g] != det_image[j] or not labels[g, c] or used[g]:
                    continue
                a, b = det_boxes[j], gt_boxes[g]
                inter = max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
                union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
                iou = inter / union if union > 0 else 0
                if iou > thr and iou > best_iou:
                    best, best_iou = g, iou
            if best >= 0:
                used[best] = True
            tp.append(best >= 0)
        hits = np.cumsum(tp)
        precision, recall = hits / np.arange(1, n + 1), hits / npos
        ap = 0.0
        for t in (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0):
            if (recall >= t).any():
                ap += precision[recall >= t].max()
        out.append(ap / 11)
    return np.array(out)


@pytest.mark.parametrize("seed", range(6))
def test_vectorized_matches_a_plain_loop(seed):
    rng = np.random.default_rng(seed)
    n_img, n, m, k = 4, 40, 14, 6
    gt_image = rng.integers(0, n_img + 1, m).astype(str)
    xy = rng.integers(0, 20, (m, 2)).astype(float)
    gt_boxes = np.concatenate([xy, xy + rng.integers(2, 15, (m, 2))], axis=1)
    det_boxes = gt_boxes[rng.integers(0, m, n)] + rng.integers(-3, 4, (n, 4))
    det_boxes[:, 2:] = np.maximum(det_boxes[:, 2:], det_boxes[:, :2] + 1)
    det_image = rng.integers(0, n_img, n).astype(str)
    scores = rng.integers(0, 5, (n, k)) / 4.0  # many ties
    labels = rng.random((m, k)) < 0.4
    got = P.class_ap(det_image, det_boxes, scores, gt_image, gt_boxes, labels)[0]
    np.testing.assert_allclose(got, _reference_ap(det_image, det_boxes, scores, gt_image, gt_boxes, labels), equal_nan=True)


def test_ground_truth_from_instance_json_maps_76_to_93_and_hoi_to_verb():
    gt = P.read_ground_truth(INSTANCE)
    pasta93, verbs = vocab.load("pasta93"), vocab.load("verbs157")
    assert gt.image.tolist() == ["HICO_train2015_00000001.jpg"] * 2 + ["HICO_train2015_00000002.jpg"]
    first = {pasta93.names[i] for i in np.flatnonzero(gt.pasta[0])}
    assert first == {"hip: sit on", "hand: hold", "head: inspect", "foot: no_interaction", "leg: no_interaction",
                     "arm: no_interaction"}
    assert {verbs.names[i] for i in np.flatnonzero(gt.verb[0])} == {"race", "ride"}
    assert {verbs.names[i] for i in np.flatnonzero(gt.verb[2])} == {"no_interaction"}
    assert gt.boxes[0].tolist() == [208, 33, 427, 300]
    plain = P.read_ground_truth(INSTANCE, fill_no_interaction=False)
    assert plain.pasta[1].sum() == 0


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _prediction(image, box, pasta_hot=(), verb_hot=(), score=0.9):
    pasta = [0.0] * 93
    verb = [0.0] * 157
    for i in pasta_hot:
        pasta[i] = score
    for i in verb_hot:
        verb[i] = score
    return {"image": image, "box": box, "pasta": pasta, "verb": verb}


def test_cli_run_end_to_end_on_files(tmp_path):
    pasta93 = vocab.load("pasta93")
    hold, sit = pasta93.id_of("hand: hold"), pasta93.id_of("hip: sit on")
    preds = [
        _prediction("HICO_train2015_00000001.jpg", [209, 34, 426, 301], [hold, sit], [72, 76]),  # race, ride
        _prediction("HICO_train2015_00000001.jpg", [10, 20, 110, 220], [sit], [], 0.95),  # person without sit on
    ]
    path = tmp_path / "pred.jsonl"
    _write_jsonl(path, preds)
    parser = argparse.ArgumentParser()
    P.add_arguments(parser)
    result = P.run(parser.parse_args([str(path), "--gt", str(INSTANCE)]))
    assert result.per_class[str(hold)] == 1.0
    # "sit on": the 0.95 detection is a false positive, then the hit -> precision 1/2 at recall 1
    assert result.per_class[str(sit)] == pytest.approx(0.5)
    assert result.class_names[str(hold)] == "hand: hold"
    # ride: person 1 (ride motorcycle) and person 2 (ride surfboard) are both found -- every detection is ranked
    # for every class, the second one with score 0
    assert result.extra["verb_per_class"]["76"] == {"name": "ride", "AP": 1.0}
    # no_interaction: only the zebra person (other image, not detected) has it -> AP 0
    assert result.extra["verb_per_class"]["57"]["AP"] == 0.0
    assert result.extra["verb_per_class"]["72"]["AP"] == 1.0
    assert math.isnan(result.per_class[str(pasta93.id_of("hand: carry"))])
    assert set(result.extra) >= {"pasta_mAP_without_no_interaction", "part_mAP", "part_mAP_without_no_interaction",
                                 "verb_mAP_157", "verb_mAP_157_without_no_interaction", "verb_mAP_117",
                                 "verb_mAP_117_without_no_interaction"}
    parquet = tmp_path / "pred.parquet"
    pq.write_table(pa.Table.from_pylist(preds), parquet)
    again = P.run(parser.parse_args([str(parquet), "--gt", str(INSTANCE)]))
    assert list(again.per_class) == list(result.per_class)
    np.testing.assert_array_equal(list(again.per_class.values()), list(result.per_class.values()))


def test_records_ground_truth_in_pasta93_and_verbs157(tmp_path):
    b = RecordBuilder()
    b.append(dataset="g", video_id="i.jpg", px1=0.0, py1=0.0, px2=10.0, py2=10.0, actions=[146], action_vocab="verbs157",
             pasta=["hand: hold", "head: listen"], pasta_vocab="pasta93")
    path = tmp_path / "gt.parquet"
    pq.write_table(b.to_table(), path)
    gt = P.read_ground_truth(path)
    assert np.flatnonzero(gt.verb[0]).tolist() == [146]
    assert np.flatnonzero(gt.pasta[0]).tolist() == [15, 30, 36, 37, 78, 91]


@pytest.mark.parametrize("lines,where,reason", [
    (['{"image": "a", "box": [0, 0, 1, 1], "pasta": [0.1]}'], "line 1", "pasta has 1 values, expected 93"),
    (['{"image": "a", "box": [0, 0, 1, 1], "pasta": ' + json.dumps([0.0] * 93) + "}", '{"image": "a", "box": [0, 0'],
     "line 2", "bad JSON"),
    (['{"image": "a", "pasta": ' + json.dumps([0.0] * 93) + "}"], None, "missing column 'box'"),
    (['{"image": "a", "box": [5, 0, 1, 1], "verb": ' + json.dumps([0.0] * 157) + "}"], "line 1", "x2 < x1"),
    (['{"image": "a", "box": [0, 0, 1, 1]}'], None, "needs a 'pasta'"),
])
def test_malformed_predictions(tmp_path, lines, where, reason):
    path = tmp_path / "p.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as err:
        P.read_predictions(path)
    assert reason in str(err.value)
    if where:
        assert str(err.value).startswith(f"{path}:{where}: ")


def test_empty_prediction_file(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text("")
    with pytest.raises(InputError, match="empty file"):
        P.read_predictions(path)


def test_jsonl_field_of_another_type_names_the_line_and_key(tmp_path):

    path = tmp_path / "pred.jsonl"
    path.write_text('{"image": "a.jpg", "box": [0, 0, 1, 1]}\n{"image": "b.jpg", "box": [0, 0, 1, 1]}\n'
                    '{"image": 7, "box": [0, 0, 1, 1]}\n')
    with pytest.raises(InputError, match=r"pred\.jsonl:line 3\.image: a number here, text on line 1"):
        P.read_predictions(path)
    path.write_text('{"image": "a.jpg", "box": ' + "[" * 200 + "]" * 200 + "}\n")
    with pytest.raises(InputError, match="nested more than 64 levels"):
        P.read_predictions(path)
