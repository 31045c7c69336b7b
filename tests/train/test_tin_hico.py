"""TIN trained from HICO-DET files (the synthetic dataset's ``hico_det/`` view, read through partwise.data.hico_det):
HOI targets from the files, per-tensor clipping in the recipes, and the end-of-run HICO-DET mAP + interactiveness AP
next to a frequency prior."""
from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from partwise.data import hico_det  # noqa: E402
from partwise.eval import hico as hico_eval  # noqa: E402
from partwise.train.tasks import load_task, run_task  # noqa: E402

CONFIGS = Path(__file__).parents[2] / "configs"
SMALL = ["model.hidden=32", "model.attention_dim=16", "pos_augment=0", "neg_per_image=2", "data.scale_range=[64,64]",
         "data.test_short_side=64"]


@pytest.fixture(scope="module")
def hico_root(tmp_path_factory) -> Path:
    from partwise.synth.generator import SynthConfig, generate

    root = tmp_path_factory.mktemp("tin_synth") / "data"
    generate(root, SynthConfig(seed=3, videos=4, seconds=6, width=160, height=120, frames=False))
    return root / "hico_det"


def _runner(hico_root, tmp_path, extra=()):
    return load_task(CONFIGS / "synth_tin.yaml", [f"data.root={hico_root}", f"run.out_dir={tmp_path / 'run'}",
                                                  *SMALL, *extra])


def test_hoi_targets_are_the_files_hois_one_multi_hot_row_per_box_pair(hico_root, tmp_path):
    runner = _runner(hico_root, tmp_path)
    train_ds, val_ds = runner.datasets()
    per_image = {im["file_name"]: im for im in hico_det.read_hoi_json(hico_root / "annotations" / "trainval_hico.json")}
    assert {it.video for it in train_ds.items} == set(per_image)
    checked_multi = 0
    for i, item in enumerate(train_ds.items):
        sample = val_ds.__class__(runner.split_data("train"), train_ds.items, train=False)[i]
        hb, ob, hoi, binary, n_pos = runner.pairs(item, sample, None)
        # the JSON: HOI ids per (subject, object) box pair
        image = per_image[item.video]
        expected = defaultdict(set)
        for h, hoi_id in zip(image["hoi_annotation"], hico_det.json_hoi_ids(image)):
            expected[(h["subject_id"], h["object_id"])].add(hoi_id)
        got = sorted(tuple(np.flatnonzero(row) + 1) for row in hoi[:n_pos])
        assert got == sorted(tuple(sorted(v)) for v in expected.values())
        checked_multi += sum(len(v) > 1 for v in expected.values())
        assert (binary[:n_pos] == [1, 0]).all() and (binary[n_pos:] == [0, 1]).all() and not hoi[n_pos:].any()
        positives = {(tuple(h), tuple(o)) for h, o in zip(hb[:n_pos], ob[:n_pos])}
        assert not positives & {(tuple(h), tuple(o)) for h, o in zip(hb[n_pos:], ob[n_pos:])}
    assert checked_multi > 0  # some pairs carry several HOIs (e.g. hold + carry)


def test_recipe_clips_per_tensor_and_reads_anno_bbox_mat(hico_root, tmp_path):
    runner = load_task(CONFIGS / "tin.yaml", [f"data.root={hico_root}", "data.images=images/{split}"])
    assert runner.cfg.run.clip_mode == "per_tensor" and runner.cfg.run.grad_clip == 1.0
    assert runner.cfg.data.annotations == "anno_bbox.mat" and runner.hico_files()[0].name == "anno_bbox.mat"
    mat_train, _ = runner.datasets()
    json_train, _ = _runner(hico_root, tmp_path).datasets()
    def persons(items):  # the .mat lists persons by HOI, the JSON by box: compare as sets
        return {(it.video, tuple(b), tuple(sorted(map(tuple, o)))) for it in items
                for b, o in zip(it.boxes.tolist(), [[(c, a, tuple(box)) for c, a, box in objs] for objs in it.objects])}

    assert persons(mat_train.items) == persons(json_train.items) and len(mat_train.items) == len(json_train.items)


def test_short_run_reports_hico_map_and_interactiveness_next_to_the_prior(hico_root, tmp_path):
    runner = _runner(hico_root, tmp_path, ["run.max_steps=2", "run.checkpoint_every=0"])
    summary = run_task(runner, progress=False)
    assert np.isfinite(summary["final_loss"])
    hoi, inter = summary["eval"]["hoi"], summary["eval"]["interactiveness"]
    for res in (hoi["model"], hoi["model_nis"], hoi["frequency_prior"]):
        assert {"full", "rare", "non_rare", "present_full", "per_class"} <= set(res)
        assert 0 <= res["full"] <= res["present_full"] <= 1 + 1e-12  # 11-point sums: 1 can be 1.0000000000000002
    assert hoi["mAP"] == hoi["model"]["present_full"] and hoi["prior_mAP"] == hoi["frequency_prior"]["present_full"]
    assert "oracle" in hoi["boxes"] and 0 <= inter["mAP"] <= 1 + 1e-12 and 0 <= inter["prior_mAP"] <= 1 + 1e-12
    # the written predictions: 0-based boxes; every GT pair has a detection of its HOI with exactly its boxes
    gt = hico_det.read_gt_pairs(hico_root / "annotations" / "test_hico.json", "test")
    assert hoi["classes"] == len(set(gt.hoi.tolist())) and hoi["n_gt_pairs"] == len(gt.hoi)
    pred = pq.read_table(tmp_path / "run" / "hico_predictions.parquet").to_pydict()
    rows = {(img, hoi_id, tuple(np.array(b) + 1.0)) for img, hoi_id, *b in zip(
        pred["image"], pred["hoi_id"], *(pred[k] for k in ("hx1", "hy1", "hx2", "hy2", "ox1", "oy1", "ox2", "oy2")))}
    for image, hoi_id, boxes in zip(gt.image, gt.hoi, gt.boxes):
        assert (gt.images[image], hoi_id, tuple(boxes)) in rows
    # the file evaluated on its own (the evaluator's readers) gives the reported official Full/Rare/Non-rare
    names, gt_pairs = hico_eval.read_gt(hico_root / "annotations" / "test_hico.json")
    det = hico_eval.read_predictions(tmp_path / "run" / "hico_predictions.parquet", names)
    again = hico_eval.evaluate_hico(gt_pairs, det, len(names), rare=hico_eval.read_rare(
        hico_root / "annotations" / "trainval_hico.json"))["default"]
    assert (again.full, again.rare, again.non_rare) == (hoi["model"]["full"], hoi["model"]["rare"],
                                                          hoi["model"]["non_rare"])


def test_true_scores_give_ap_one_and_the_prior_is_the_training_frequency(hico_root, tmp_path, monkeypatch):
    runner = _runner(hico_root, tmp_path)
    train_ds, val_ds = runner.datasets()
    calls = iter(range(len(val_ds)))

    def oracle(model, image, hb, ob):
        item = val_ds.items[next(calls)]
        own = [runner.hoi_targets(item, objects) for objects in item.objects]
        targets = np.array([own[g][box][0] if box in own[g] else np.zeros(600, np.float32)
                            for g, box, _ in runner.candidate_pairs(item)])
        interactive = targets.any(1).astype(np.float32)
        return {"hoi_scores": torch.from_numpy(targets),
                "binary": torch.from_numpy(np.stack([interactive, 1 - interactive], 1))}

    monkeypatch.setattr(runner, "forward_pairs", oracle)
    out = runner.evaluate_hico(torch.nn.Linear(1, 1), train_ds, val_ds, None)
    assert out["hoi"]["mAP"] == pytest.approx(1.0) and out["interactiveness"]["mAP"] == pytest.approx(1.0)
    assert out["hoi"]["model"]["full"] == pytest.approx(out["hoi"]["classes"] / 600)  # 600-class mean, AP 0 elsewhere
    # the prior ranks all pairs of an object class alike, so it cannot beat the oracle
    assert out["hoi"]["prior_mAP"] < 1.0


def test_frozen_sub_networks_get_no_gradient_and_bad_names_are_config_errors(hico_root, tmp_path):
    from partwise.errors import ConfigError

    model = _runner(hico_root, tmp_path).build_model()  # synth_tin.yaml freezes the random-init ResNet-50 parts
    model.train()
    assert not model.net.backbone.training and not model.net.object_res5.training and model.net.cls_sp.training
    assert not any(p.requires_grad for p in model.net.backbone.parameters())
    assert all(p.requires_grad for p in model.net.cls_sp.parameters())
    with pytest.raises(ConfigError, match="frozen: TIN has no sub-network 'trunk'"):
        _runner(hico_root, tmp_path, ["frozen=[trunk]"]).build_model()


def test_tin_hoi_weights_by_hand():
    from partwise.train.tin import tin_hoi_weights

    counts = np.zeros(600)
    counts[[0, 5, 9]] = [6, 3, 1]  # N = 10
    w = tin_hoi_weights(counts)
    assert w.shape == (600,) and w.dtype == np.float32
    assert np.allclose(w[[0, 5, 9]], [np.log(10 / 6), np.log(10 / 3), np.log(10)], atol=1e-6)
    assert np.isclose(w[1], np.log(10))  # unseen: counted once
    only = np.zeros(600)
    only[3] = 50
    assert np.isclose(tin_hoi_weights(only)[3], 0.1)  # ln(50/50) = 0, floored
