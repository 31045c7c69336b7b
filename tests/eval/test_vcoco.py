"""V-COCO role AP: hand-computed scenario 1/2 cases, skipped unannotated persons, 24/25-role means, parsing."""
import json

import numpy as np
import pytest

from partwise.cli import main as cli_main
from partwise.errors import InputError
from partwise.eval import vcoco

GT = {"images": [
    {"image_id": 1, "persons": [
        {"box": [0, 0, 9, 9], "actions": {"hit": {"instr": [20, 20, 29, 29], "obj": None},
                                          "point": {"instr": [20, 20, 29, 29]}}},
        {"box": [50, 50, 59, 59], "actions": {}},
        {"box": [100, 100, 109, 109], "actions": None}]},
    {"image_id": 2, "persons": [
        {"box": [0, 0, 9, 9], "actions": {"hit": {"instr": [30, 30, 39, 39], "obj": [40, 40, 49, 49]}}}]},
]}

DETS = [
    {"image_id": 1, "person_box": [0, 0, 9, 9], "hit_instr": [20, 20, 29, 29, 0.9], "hit_obj": [1, 1, 2, 2, 0.8],
     "point_instr": [20, 20, 29, 29, 0.5]},
    {"image_id": 1, "person_box": [0, 0, 9, 9], "hit_instr": [20, 20, 29, 29, 0.7], "hit_obj": [40, 40, 49, 49, 0.6]},
    # matched to the unannotated person: skipped, although it has the top score
    {"image_id": 1, "person_box": [100, 100, 109, 109], "hit_instr": [20, 20, 29, 29, 0.95]},
    # person without the action: FP
    {"image_id": 1, "person_box": [50, 50, 59, 59], "hit_instr": [20, 20, 29, 29, 0.5]},
    {"image_id": 2, "person_box": [0, 0, 9, 9], "hit_instr": [30, 30, 39, 39, 0.4], "hit_obj": [40, 40, 49, 49, 0.3]},
    {"image_id": 99, "person_box": [0, 0, 9, 9], "hit_instr": [30, 30, 39, 39, 0.4]},  # not a GT image: ignored
]


@pytest.fixture
def files(tmp_path):
    gt, det = tmp_path / "gt.json", tmp_path / "det.json"
    gt.write_text(json.dumps(GT))
    det.write_text(json.dumps(DETS))
    return gt, det


def test_role_aps_scenario_1_and_2(files):
    gt = vcoco.read_gt(files[0])
    det = vcoco.read_detections(files[1], gt)
    assert det.ignored == 1
    s1 = vcoco.evaluate(gt, det, scenario=1)
    s2 = vcoco.evaluate(gt, det, scenario=2)
    # hit-instr: TP(.9) FP(.7 duplicate) FP(.5 no action) TP(.4): rec .5 .5 .5 1, prec 1 .5 1/3 .5 -> .5*1 + .5*.5
    assert s1.per_role["hit-instr"] == pytest.approx(0.75, rel=1e-7)
    assert s1.npos["hit-instr"] == 2
    # hit-obj, scenario 1: GT person 0 has no object, predicted boxes are not empty -> FP, FP, then TP (.3)
    assert s1.per_role["hit-obj"] == pytest.approx(0.5 * (1 / 3), rel=1e-6)
    # scenario 2: the missing role counts as correct -> TP, FP (covered), TP
    assert s2.per_role["hit-obj"] == pytest.approx(0.5 + 0.5 * (2 / 3), rel=1e-6)
    assert s1.per_role["point-instr"] == 1.0
    assert np.isnan(s1.per_role["ride-instr"])  # no GT: excluded from the means
    assert s1.mean_25 == pytest.approx((0.75 + 1 / 6 + 1.0) / 3, rel=1e-6)
    assert s1.mean_24 == pytest.approx((0.75 + 1 / 6) / 2, rel=1e-6)
    assert len(s1.per_role) == 25


def test_scenario_1_accepts_empty_role_box(files, tmp_path):
    dets = [dict(DETS[0], hit_obj=[0, 0, 0, 0, 0.8])]
    path = tmp_path / "d.json"
    path.write_text(json.dumps(dets))
    gt = vcoco.read_gt(files[0])
    res = vcoco.evaluate(gt, vcoco.read_detections(path, gt), scenario=1)
    assert res.per_role["hit-obj"] == pytest.approx(0.5, rel=1e-7)


def test_float32_inclusive_overlap():
    a = np.array([[0, 0, 9, 9]], dtype=np.float32)
    b = np.array([[0, 0, 9, 4]], dtype=np.float32)
    ov = vcoco.overlap(a, b)
    assert ov.dtype == np.float32 and ov[0] == np.float32(0.5)


def test_cli_and_errors(files, tmp_path, capsys):
    assert cli_main(["eval", "vcoco", "--gt", str(files[0]), "--pred", str(files[1]), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["protocol"] == "v-coco role AP scenario 1"
    assert out["mAP"] == pytest.approx((0.75 + 1 / 6 + 1.0) / 3, rel=1e-6)  # the official's Average Role AP
    assert out["role_ap_24_without_point_instr_scenario_1"] == pytest.approx((0.75 + 1 / 6) / 2, rel=1e-6)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"image_id": 1, "person_box": [0, 0, 9, 9], "hit_instr": [1, 2, 3]}]))
    gt = vcoco.read_gt(files[0])
    with pytest.raises(InputError, match=r"bad\.json:\[0\]\.hit_instr: expected \[x1, y1, x2, y2, score\]"):
        vcoco.read_detections(bad, gt)
    bad_gt = tmp_path / "badgt.json"
    bad_gt.write_text(json.dumps({"images": [{"image_id": 1, "persons": [{"box": [0, 0, 1, 1],
                                                                           "actions": {"fly": {}}}]}]}))
    with pytest.raises(InputError, match=r"images\[0\]\.persons\[0\]\.actions\.fly: unknown action"):
        vcoco.read_gt(bad_gt)


def test_image_without_gt_persons_gives_false_positives(tmp_path):
    gt = dict(GT, images=GT["images"] + [{"image_id": 3, "persons": []}])
    gt_path, det_path = tmp_path / "gt.json", tmp_path / "det.json"
    gt_path.write_text(json.dumps(gt))
    det_path.write_text(json.dumps(DETS + [{"image_id": 3, "person_box": [0, 0, 9, 9],
                                            "hit_instr": [20, 20, 29, 29, 0.99]}]))
    g = vcoco.read_gt(gt_path)
    res = vcoco.evaluate(g, vcoco.read_detections(det_path, g), scenario=1)
    # FP(.99) TP FP FP TP: rec 0 .5 .5 .5 1, prec 0 .5 1/3 .25 .4 -> .5 * .5 + .5 * .4
    assert res.per_role["hit-instr"] == pytest.approx(0.45, rel=1e-6)


def _loop_role_ap(gt, dets, action, r, scenario):
    """vsrl_eval._do_role_eval for one (action, role), written as the original loops (float32 arrays)."""
    a = [name for name, _ in vcoco.VCOCO_ACTIONS].index(action)
    role = vcoco.VCOCO_ACTIONS[a][1][r]
    key = f"{action}_{role}"
    tp, fp, sc = [], [], []
    npos = 0
    for image in gt["images"]:
        persons = image["persons"]
        boxes = np.array([p["box"] for p in persons], dtype=np.float32).reshape(-1, 4)
        ignore = [p["actions"] is None for p in persons]
        has = [p["actions"] is not None and action in p["actions"] for p in persons]
        npos += sum(has)
        roles = [np.array((p["actions"] or {}).get(action, {}).get(role) or [-1] * 4, dtype=np.float32)
                 for p in persons]
        mine = [d for d in dets if d["image_id"] == image["image_id"] and d.get(key) is not None]
        scores = np.array([d[key][4] for d in mine], dtype=np.float64)
        covered = [False] * len(persons)
        for j in np.argsort(scores, kind="stable")[::-1]:
            d = mine[j]
            if not persons:
                tp.append(0), fp.append(1), sc.append(d[key][4])
                continue
            ov = vcoco.overlap(boxes, np.tile(np.array(d["person_box"], dtype=np.float32), (len(persons), 1)))
            jmax = int(ov.argmax())
            if ignore[jmax]:
                continue
            pred_role = np.array(d[key][:4], dtype=np.float32)
            if (roles[jmax] == -1).all():
                ov_role = 1.0 if scenario == 2 or (pred_role == 0).all() else 0.0
            else:
                ov_role = vcoco.overlap(roles[jmax][None], pred_role[None])[0]
            sc.append(d[key][4])
            if has[jmax] and ov[jmax] >= 0.5 and ov_role >= 0.5 and not covered[jmax]:
                covered[jmax] = True
                tp.append(1), fp.append(0)
            else:
                tp.append(0), fp.append(1)
    if npos == 0:
        return float("nan")
    order = np.argsort(np.array(sc, dtype=np.float32), kind="stable")[::-1]
    a_tp = np.cumsum(np.array(tp, dtype=np.float32)[order], dtype=np.float32)
    a_fp = np.cumsum(np.array(fp, dtype=np.float32)[order], dtype=np.float32)
    rec = a_tp / np.float32(npos)
    prec = a_tp / np.maximum(a_tp + a_fp, np.float32(np.finfo(np.float64).eps))
    return float(np.float32(vcoco.voc_ap(rec, prec)))


@pytest.mark.parametrize("seed", range(4))
def test_matches_loop_port_on_random_scenes(seed, tmp_path):
    rng = np.random.default_rng(seed)

    def box():
        x, y = rng.integers(0, 8, 2)
        return [int(x), int(y), int(x + rng.integers(0, 8)), int(y + rng.integers(0, 8))]

    images = []
    for i in range(8):
        persons = []
        for _ in range(int(rng.integers(0, 4))):
            if rng.random() < 0.2:
                persons.append({"box": box(), "actions": None})
                continue
            acts = {}
            if rng.random() < 0.7:
                acts["hit"] = {"instr": box() if rng.random() < 0.7 else None, "obj": box() if rng.random() < 0.5 else None}
            persons.append({"box": box(), "actions": acts})
        images.append({"image_id": i, "persons": persons})
    dets = []
    for _ in range(60):
        d = {"image_id": int(rng.integers(0, 8)), "person_box": box()}
        for role in ("instr", "obj"):
            if rng.random() < 0.8:
                rb = box() if rng.random() < 0.8 else [0, 0, 0, 0]
                d[f"hit_{role}"] = rb + [float(rng.integers(0, 6)) / 5]  # ties
        dets.append(d)
    gt = {"images": images}
    gt_path, det_path = tmp_path / "gt.json", tmp_path / "det.json"
    gt_path.write_text(json.dumps(gt))
    det_path.write_text(json.dumps(dets))
    g = vcoco.read_gt(gt_path)
    d = vcoco.read_detections(det_path, g)
    for scenario in (1, 2):
        res = vcoco.evaluate(g, d, scenario)
        for r, role in enumerate(("instr", "obj")):
            expected = _loop_role_ap(gt, dets, "hit", r, scenario)
            got = res.per_role[f"hit-{role}"]
            assert (np.isnan(got) and np.isnan(expected)) or got == expected, (scenario, role)
