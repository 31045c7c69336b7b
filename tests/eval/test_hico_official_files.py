"""HICO-DET: ho-rcnn detections_XX.mat round trip, iCAN/TIN pickles, mRec and Known-Object per-class AP in --json,
and the official profile's duplicate-entry, NaN-score and degenerate-box rules (hand-computed APs)."""
import json
import os
import pickle

import numpy as np
import pytest

from partwise.cli import main as cli_main
from partwise.data import hico_det
from partwise.errors import InputError
from partwise.eval import hico
from tests.eval.test_hico import seq_ap  # 11-point AP summed as ho-rcnn does

P1 = [1.0, 1, 10, 10]      # 1-based GT boxes
P2 = [101.0, 101, 120, 120]
D1 = [0, 0, 9, 9]          # 0-based detections of P1 / P2
D2 = [100, 100, 119, 119]


def hoi(id_, pair_boxes, invis=0):
    """One hoi entry with one connection per (human, object) pair."""
    humans = np.array([h for h, _ in pair_boxes], dtype=np.float64).reshape(-1, 4)
    objects = np.array([o for _, o in pair_boxes], dtype=np.float64).reshape(-1, 4)
    conn = np.array([[k + 1, k + 1] for k in range(len(pair_boxes))], dtype=np.int64).reshape(-1, 2)
    return hico_det.HicoHoi(id_, humans, objects, conn, invis)


@pytest.fixture
def anno_bbox(tmp_path):
    test = [
        # HOI 3 listed twice: only the last visible entry (P2) counts in the official profile
        hico_det.HicoImage("HICO_test2015_00000001.jpg", 200, 200, 3, [hoi(3, [(P1, P1)]), hoi(3, [(P2, P2)])]),
        # a later entry without connections erases the earlier one
        hico_det.HicoImage("HICO_test2015_00000002.jpg", 200, 200, 3, [hoi(3, [(P1, P1)]), hoi(3, [])]),
        # a later *invisible* entry changes nothing
        hico_det.HicoImage("HICO_test2015_00000003.jpg", 200, 200, 3, [hoi(3, [(P1, P1)]), hoi(3, [(P2, P2)], 1)]),
    ]
    train = [hico_det.HicoImage("HICO_train2015_00000001.jpg", 200, 200, 3, [hoi(3, [(P1, P1)] * 12)])]
    path = tmp_path / "anno_bbox.mat"
    hico_det.write_anno_bbox(hico_det.AnnoBbox(train, test), path)
    return path


def dets(rows):
    """rows: (image index, hoi id, human box, object box, score) -> Pairs with 0-based boxes."""
    return hico.Pairs(np.array([r[0] for r in rows], dtype=np.int64), np.array([r[1] - 1 for r in rows]),
                      np.array([list(r[2]) + list(r[3]) for r in rows], dtype=np.float64).reshape(-1, 8),
                      np.array([r[4] for r in rows], dtype=np.float64))


def test_official_duplicate_entries_nan_scores_and_degenerate_boxes(anno_bbox, tmp_path, capsys):
    names, gt = hico.read_gt(anno_bbox, "official")
    assert sorted(zip(gt.image.tolist(), gt.boxes[:, 0].tolist())) == [(0, 101.0), (2, 1.0)]  # npos 2
    _, legacy_gt = hico.read_gt(anno_bbox, "legacy")
    assert len(legacy_gt) == 4  # the legacy profile keeps every connection
    det = dets([(0, 3, D1, D1, 0.9),           # the replaced entry's pair: FP
                (0, 3, D2, D2, 0.8),           # TP
                (1, 3, D1, D1, 0.7),           # erased by the empty entry: FP
                (2, 3, [9, 0, 0, 9], D1, 0.6),  # x2 < x1: no overlap -> FP
                (2, 3, D1, D1, float("nan"))])  # NaN: ranked last, still a TP
    out = tmp_path / "dets"
    hico.write_detections_mat(det, 3, out)
    rc = cli_main(["eval", "hico", "--gt", str(anno_bbox), "--pred", str(out), "--json"])
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    # .9 FP, .8 TP, .7 FP, .6 FP, NaN TP: rec 0 .5 .5 .5 1, prec 0 .5 1/3 .25 .4
    expected = seq_ap([0.5] * 6 + [0.4] * 5)
    assert res["per_class"]["3"] == expected
    assert res["per_class_recall"]["default"]["3"] == 1.0
    assert res["default"]["mrec_full"] == pytest.approx(1 / 600, abs=1e-15)
    # HOI 3 has 12 training instances: the only non-rare class
    assert res["default"]["mrec_non_rare"] == 1.0 and res["default"]["mrec_rare"] == 0.0
    # the legacy profile is unchanged: it refuses NaN scores and degenerate boxes
    rc = cli_main(["eval", "hico", "--gt", str(anno_bbox), "--pred", str(out), "--profile", "legacy"])
    assert rc == 2 and "score is NaN or infinite" in capsys.readouterr().err


def test_detections_mat_round_trip(tmp_path, fixtures_dir, capsys):
    gt = fixtures_dir / "hico" / "test_hico.json"
    names, gt_pairs = hico.read_gt(gt)
    rng = np.random.default_rng(0)
    rows = []
    for k in range(60):
        img = int(rng.integers(0, len(names)))
        h = rng.integers(0, 120, 2).tolist()
        o = rng.integers(0, 120, 2).tolist()
        rows.append((img, int(rng.choice([154, 155, 170, 1])), [h[0], h[1], h[0] + 99, h[1] + 199],
                     [o[0], o[1], o[0] + 99, o[1] + 99], float(rng.random())))
    det = dets(rows)
    base = hico.evaluate_hico(gt_pairs, det, len(names))["default"]
    folder, single = tmp_path / "per_object", tmp_path / "detections.mat"
    written = hico.write_detections_mat(det, len(names), folder)
    assert len(written) == 80 and (folder / "detections_04.mat").is_file()  # motorcycle = COCO class 4
    hico.write_detections_mat(det, len(names), single, per_object=False)
    for source in (folder, single, folder / "detections_04.mat"):
        back = hico.read_predictions(source, names, strict=False)
        res = hico.evaluate_hico(gt_pairs, back, len(names))["default"]
        if source.name == "detections_04.mat":  # one object's file: only its HOIs (147..160)
            keep = (det.cls >= 146) & (det.cls <= 159)
            ref = hico.evaluate_hico(gt_pairs, det.take(np.flatnonzero(keep)), len(names))["default"]
            assert np.array_equal(res.classes.ap, ref.classes.ap)
            continue
        assert np.array_equal(res.classes.ap, base.classes.ap) and res.full == base.full
        order = np.lexsort((np.arange(len(det)), det.image, det.cls))
        assert np.array_equal(back.boxes, det.boxes[order]) and np.array_equal(back.score, det.score[order])
    cli_main(["eval", "hico", "--gt", str(gt), "--pred", str(folder), "--json"])
    assert json.loads(capsys.readouterr().out)["mAP"] == base.full
    with pytest.raises(InputError, match="2 image columns, the GT has 3 images"):
        hico.write_detections_mat(det.take(np.flatnonzero(det.image < 2)), 2, tmp_path / "two")
        hico.read_predictions(tmp_path / "two", names)


def test_known_object_per_class_ap_and_mrec_in_json(tmp_path, fixtures_dir, capsys):
    gt = fixtures_dir / "hico" / "test_hico.json"
    preds = {
        "HICO_test2015_00000001.jpg": [
            {"hoi": 155, "human_box": [10, 20, 110, 220], "object_box": [50, 60, 150, 160], "score": 0.9},
            {"hoi": 170, "human_box": [10, 20, 110, 220], "object_box": [200, 20, 300, 220], "score": 0.8}],
        "HICO_test2015_00000002.jpg": [
            {"hoi": 155, "human_box": [0, 0, 99, 99], "object_box": [100, 0, 199, 99], "score": 0.7}],
    }
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps(preds))
    labels = hico_det.AnnoLabels(["HICO_train2015_00000001.jpg"], [f"HICO_test2015_0000000{i}.jpg" for i in (1, 2, 3)],
                                 np.zeros((600, 1)), np.full((600, 3), np.nan))
    labels.anno_test[154, 0] = 1  # motorcycle known in image 1 only
    labels.anno_test[161, 0] = 1  # person known in image 1
    anno = tmp_path / "anno.mat"
    hico_det.write_anno_labels(labels, anno)
    assert cli_main(["eval", "hico", "--gt", str(gt), "--pred", str(pred), "--anno", str(anno), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    # default: HOI 155 npos 3, TP .9 and .7 -> AP 7/11, recall 2/3; HOI 170: AP 1, recall 1
    assert out["default"]["mrec_full"] == pytest.approx((2 / 3 + 1) / 600, abs=1e-15)
    assert out["per_class_recall"]["default"]["155"] == pytest.approx(2 / 3)
    # known object: the image-2 detection of HOI 155 is dropped -> AP 4/11, recall 1/3
    ko = out["per_class_known_object"]["ap"]
    assert len(ko) == 600 and ko["155"] == pytest.approx(4 / 11, abs=1e-15) and ko["170"] == seq_ap([1.0] * 11)
    assert out["per_class_recall"]["known_object"]["155"] == pytest.approx(1 / 3)
    assert out["known_object"]["mrec_full"] == pytest.approx((1 / 3 + 1) / 600, abs=1e-15)
    assert cli_main(["eval", "hico", "--gt", str(gt), "--pred", str(pred), "--anno", str(anno)]) == 0
    table = capsys.readouterr().out
    assert "known_object: full" in table and "mrec_full" in table and "per_class_known_object" not in table


def test_ican_style_pickle(tmp_path, fixtures_dir):
    names, _ = hico.read_gt(fixtures_dir / "hico" / "test_hico.json")
    scores = np.linspace(0, 1, 600, dtype=np.float32)
    data = {1: [[np.array([0, 0, 9, 9.0]), np.array([1, 1, 5, 5.0]), 4, scores, np.float32(0.5), 0.8, "ignored"]],
            3: []}
    path = tmp_path / "pred.pkl"
    path.write_bytes(pickle.dumps(data, protocol=2))
    det = hico.read_predictions(path, names)
    motorcycle = hico_det.object_hoi_range(45)  # HICO object 45 = motorcycle = COCO class 4
    assert np.array_equal(det.cls + 1, motorcycle) and motorcycle[0] == 147 and len(motorcycle) == 14
    assert np.allclose(det.score, scores[motorcycle - 1] * 0.5 * 0.8)
    assert (det.image == 0).all() and np.array_equal(det.boxes[0], [0, 0, 9, 9, 1, 1, 5, 5])
    det_hoi = hico.read_predictions(path, names, score_mode="hoi")
    assert np.allclose(det_hoi.score, scores[motorcycle - 1])

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    path.write_bytes(pickle.dumps({1: [Evil()]}))
    with pytest.raises(InputError, match="forbidden global"):
        hico.read_predictions(path, names)
