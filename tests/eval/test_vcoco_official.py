"""V-COCO from the official release layout (vcoco_*.json + COCO instances + split ids) and the official detections
pickle: ground-truth rules, hand-checked role AP (scenario 1/2), agent AP, CLI names and `data convert`."""
import json
import os
import pickle

import numpy as np
import pytest

from partwise.cli import main as cli_main
from partwise.data import vcoco_official
from partwise.errors import InputError
from partwise.eval import vcoco

NAN = float("nan")


def _coco():
    def ann(i, image, cat, bbox, area=None, **kw):
        return dict(id=i, image_id=image, category_id=cat, bbox=bbox,
                    area=bbox[2] * bbox[3] if area is None else area, iscrowd=0, **kw)

    return {
        "images": [{"id": 1, "width": 100, "height": 80}, {"id": 2, "width": 100, "height": 100},
                   {"id": 7, "width": 10, "height": 10}],  # not in the split
        "categories": [{"id": 1, "name": "person"}, {"id": 37, "name": "sports ball"},
                       {"id": 43, "name": "tennis racket"}],
        "annotations": [
            ann(11, 1, 1, [0, 0, 10, 10]),            # -> [0, 0, 9, 9]
            ann(12, 1, 1, [50, 50, 10, 10]),          # -> [50, 50, 59, 59]
            ann(13, 1, 43, [20, 20, 10, 10]),         # racket -> [20, 20, 29, 29]
            ann(14, 1, 1, [95, 70, 20, 20]),          # unannotated; x2 = 114 -> 99, y2 = 89 -> 79 (clipped)
            ann(15, 1, 1, [0, 0, 10, 10], ignore=1),  # ignored
            ann(16, 1, 1, [0, 0, 10, 10], area=0),    # zero area
            ann(17, 1, 1, [30, 30, 0.5, 5]),          # x2 = 30 + max(0, -0.5) = x1: <= 1 px wide
            ann(21, 2, 1, [0, 0, 10, 10]),
            ann(22, 2, 43, [30, 30, 10, 10]),
            ann(23, 2, 37, [40, 40, 10, 10]),
            ann(71, 7, 1, [0, 0, 5, 5]),
        ]}


def _vcoco():
    base = {"image_id": [1, 1, 2], "ann_id": [11, 12, 21]}
    return [
        dict(base, action_name="hit", role_name=["agent", "instr", "obj"], label=[1, 0, 1],
             role_object_id=[11, 12, 21, 13, 0, 22, 0, 0, 23],
             include=[[], ["tennis racket"], ["sports ball"]]),
        dict(base, action_name="stand", role_name=["agent"], label=[0, 1, 0], role_object_id=[11, 12, 21],
             include=[[]]),
        dict(base, action_name="point", role_name=["agent", "instr"], label=[1, 0, 0],
             role_object_id=[11, 12, 21, 13, 0, 0], include=[[], []]),
    ]


def _det(image, person, agent, roles):
    """An official-layout detection: every key present, numpy arrays, NaN where not predicted."""
    d = {"image_id": image, "person_box": np.array(person, dtype=np.float64)}
    for action, keys in (("hit", ("instr", "obj")), ("stand", ()), ("point", ("instr",))):
        d[f"{action}_agent"] = np.float32(agent.get(action, NAN))
        for role in keys:
            d[f"{action}_{role}"] = np.array(roles.get(f"{action}_{role}", [0, 0, 0, 0, NAN]), dtype=np.float32)
    return d


DETS = [
    _det(1, [0, 0, 9, 9], {"hit": .9, "stand": .92, "point": .5},
         {"hit_instr": [20, 20, 29, 29, .9], "hit_obj": [1, 1, 2, 2, .8], "point_instr": [20, 20, 29, 29, .5]}),
    _det(1, [0, 0, 9, 9], {"hit": .7}, {"hit_instr": [20, 20, 29, 29, .7], "hit_obj": [40, 40, 49, 49, .6]}),
    # matched to the unannotated (clipped) person: skipped although it has the top score
    _det(1, [95, 70, 99, 79], {"hit": .95}, {"hit_instr": [20, 20, 29, 29, .95]}),
    _det(1, [50, 50, 59, 59], {"hit": .5, "stand": .85, "point": .8}, {"hit_instr": [20, 20, 29, 29, .55]}),
    _det(2, [0, 0, 9, 9], {"hit": .4}, {"hit_instr": [30, 30, 39, 39, .4], "hit_obj": [40, 40, 49, 49, .3]}),
    _det(99, [0, 0, 9, 9], {"hit": .99}, {"hit_instr": [30, 30, 39, 39, .45]}),  # not a split image: ignored
]


@pytest.fixture
def release(tmp_path):
    data = tmp_path / "data"
    (data / "vcoco").mkdir(parents=True)
    (data / "splits").mkdir()
    (data / "vcoco" / "vcoco_test.json").write_text(json.dumps(_vcoco()))
    (data / "instances_vcoco_all_2014.json").write_text(json.dumps(_coco()))
    (data / "splits" / "vcoco_test.ids").write_text("2\n1\n")
    with open(tmp_path / "dets.pkl", "wb") as fh:
        pickle.dump(DETS, fh, protocol=2)
    return data, tmp_path / "dets.pkl"


def test_official_ground_truth_rules(release):
    data, _ = release
    gt = vcoco_official.read_official(data / "vcoco" / "vcoco_test.json", data / "instances_vcoco_all_2014.json",
                                      data / "splits" / "vcoco_test.ids")
    assert [im["image_id"] for im in gt["images"]] == [2, 1]  # the split file's order
    persons = gt["images"][1]["persons"]
    assert [p["box"] for p in persons] == [[0, 0, 9, 9], [50, 50, 59, 59], [95, 70, 99, 79]]
    assert persons[0]["actions"] == {"hit": {"instr": [20, 20, 29, 29], "obj": None},
                                     "point": {"instr": [20, 20, 29, 29]}}
    assert persons[1]["actions"] == {"stand": {}}
    assert persons[2]["actions"] is None  # not in the V-COCO json: unannotated
    assert gt["images"][0]["persons"][0]["actions"]["hit"] == {"instr": [30, 30, 39, 39], "obj": [40, 40, 49, 49]}
    assert gt["actions"][0] == {"name": "hit", "roles": ["instr", "obj"]}


def test_official_role_and_agent_ap_hand_checked(release):
    data, dets = release
    gt = vcoco.read_gt(data / "vcoco" / "vcoco_test.json", data / "instances_vcoco_all_2014.json")
    det = vcoco.read_detections(dets, gt)
    assert det.ignored == 1
    s1, s2 = vcoco.evaluate(gt, det, 1), vcoco.evaluate(gt, det, 2)
    # hit-instr: (.95 skipped) TP .9, FP .7 covered, FP .55 no action, TP .4 -> .5 * 1 + .5 * .5
    assert s1.per_role["hit-instr"] == pytest.approx(0.75, rel=1e-7)
    # hit-obj: person 11 has no object; scenario 1: boxes predicted -> FP .8, FP .6, TP .3 -> .5 * 1/3
    assert s1.per_role["hit-obj"] == pytest.approx(1 / 6, rel=1e-6)
    # scenario 2: TP .8, FP .6 (covered), TP .3 -> .5 + .5 * 2/3
    assert s2.per_role["hit-obj"] == pytest.approx(5 / 6, rel=1e-6)
    assert s1.per_role["point-instr"] == 1.0
    assert len(s1.per_role) == 3 and s1.npos["hit-instr"] == 2
    assert s1.mean_25 == pytest.approx((0.75 + 1 / 6 + 1.0) / 3, rel=1e-6)
    assert s1.mean_24 == pytest.approx((0.75 + 1 / 6) / 2, rel=1e-6)
    agent = vcoco.evaluate_agent(gt, det)
    # hit: TP .9, FP .7, FP .5, TP .4 -> .75; stand: FP .92 (person 11), TP .85 -> .5;
    # point: FP .8 (person 12), TP .5 -> .5; "Average Agent AP" = nansum / 3 actions
    assert agent.per_action == pytest.approx({"hit": 0.75, "stand": 0.5, "point": 0.5}, rel=1e-6)
    assert agent.npos == {"hit": 2, "stand": 1, "point": 1}
    assert agent.average == pytest.approx((0.75 + 0.5 + 0.5) / 3, rel=1e-6)


def test_cli_official_files_and_names(release, capsys):
    data, dets = release
    vjson = str(data / "vcoco" / "vcoco_test.json")
    assert cli_main(["eval", "vcoco", "--gt", vjson, "--pred", str(dets), "--json"]) == 0  # instances found
    out = json.loads(capsys.readouterr().out)
    assert out["protocol"] == "v-coco role AP scenario 1"
    assert out["mAP"] == pytest.approx((0.75 + 1 / 6 + 1.0) / 3, rel=1e-6)
    assert out["average_role_ap_scenario_1"] == out["mAP"]
    assert out["average_role_ap_scenario_2"] == pytest.approx((0.75 + 5 / 6 + 1.0) / 3, rel=1e-6)
    assert out["role_ap_24_without_point_instr_scenario_1"] == pytest.approx((0.75 + 1 / 6) / 2, rel=1e-6)
    assert out["average_agent_ap"] == pytest.approx(1.75 / 3, rel=1e-6)
    assert out["agent_ap"]["stand"] == pytest.approx(0.5)
    assert out["per_class"]["hit-obj"] == pytest.approx(1 / 6, rel=1e-6)
    assert cli_main(["eval", "vcoco", "--gt", vjson, "--pred", str(dets), "--scenario", "2"]) == 0
    table = capsys.readouterr().out
    assert "average_role_ap_scenario_2: 86.11" in table and "mAP: 86.11" in table


def test_data_convert_then_evaluate(release, tmp_path, capsys):
    data, dets = release
    out = tmp_path / "gt.json"
    assert cli_main(["data", "convert", "vcoco-official", str(data), "vcoco", str(out), "--split", "test"]) == 0
    assert "converted 2 images (4 persons)" in capsys.readouterr().out
    gt = vcoco.read_gt(out)
    res = vcoco.evaluate(gt, vcoco.read_detections(dets, gt), 2)
    assert res.per_role["hit-obj"] == pytest.approx(5 / 6, rel=1e-6)
    assert cli_main(["data", "convert", "vcoco-official", str(data), "ava", str(tmp_path / "x")]) == 2
    assert "converts only to 'vcoco'" in capsys.readouterr().err


def test_role_object_must_be_a_valid_annotation(release):
    data, _ = release
    bad = _vcoco()
    bad[0]["role_object_id"][3] = 16  # the zero-area annotation
    path = data / "vcoco" / "vcoco_bad.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(InputError, match="hit-instr object 16 of person 11 is not a valid annotation"):
        vcoco_official.read_official(path, data / "instances_vcoco_all_2014.json")


def test_pickle_is_read_with_the_restricted_unpickler(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps([Evil()]))
    with pytest.raises(InputError, match="forbidden global"):
        vcoco_official.read_detections_pickle(path)
