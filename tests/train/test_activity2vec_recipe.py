"""Activity2Vec's HAKE training recipe: keypoint inputs, non-GT negatives, per-class loss weights, learning."""
from __future__ import annotations

import io
import math
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from partwise import vocab
from partwise.errors import InputError
from partwise.train.activity2vec import frequency_loss_weights, load_loss_weights, negative_targets
from partwise.train.tasks import load_task, run_task

ROOT = Path(__file__).parents[2]
CONFIG = ROOT / "configs" / "synth_activity2vec.yaml"
SMALL = ["data.scale_range=[96,96]", "data.test_short_side=96", "run.num_workers=0"]
PARTS = ("foot", "leg", "hip", "hand", "arm", "head")


def _iou(a, b) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.mark.parametrize("source", ["sampled", "proposals"])
def test_negatives_miss_every_person_and_are_labelled_no_interaction(synth_root, source):
    runner = load_task(CONFIG, [f"data.root={synth_root}", f"negatives={source}", *SMALL])
    train_ds, _ = runner.datasets()
    pasta93 = vocab.load("pasta93")
    no_interaction = sorted(pasta93.part_slice(p).stop - 1 for p in PARTS)
    total = 0
    for encoded in range(12):
        item = train_ds[encoded]
        gt, neg = item["boxes"].numpy(), item["neg_boxes"].numpy()
        assert len(item["positives"]) >= 1 and len(item["positives"]) + len(neg) <= 10
        if source == "sampled":
            assert len(neg) == 10 - len(item["positives"])  # uncrowded images: always found
        h, w = item["image"].shape[-2:]
        for box in neg:
            assert 0 <= box[0] < box[2] <= w + 1e-3 and 0 <= box[1] < box[3] <= h + 1e-3
            assert all(_iou(box, g) < 0.5 for g in gt)
        batch = runner.collate([item])
        (pasta, verbs), = runner.targets(batch, with_negatives=True)
        neg_rows = slice(len(item["positives"]), None)
        assert pasta.shape[0] == len(item["positives"]) + len(neg)
        for row in pasta[neg_rows]:
            assert torch.nonzero(row).flatten().tolist() == no_interaction
        for row in verbs[neg_rows]:
            assert torch.nonzero(row).flatten().tolist() == [57]
        total += len(neg)
    assert total > 0


def test_negative_targets_and_positive_fill():
    pasta, verbs = negative_targets(2)
    names = vocab.load("pasta93").names
    assert [names[i] for i in np.flatnonzero(pasta[0])] == [f"{p}: no_interaction" for p in PARTS]
    assert np.flatnonzero(verbs[1]).tolist() == [57]


def test_frequency_weights_on_a_hand_computed_table():
    pasta93 = vocab.load("pasta93")
    foot = pasta93.part_slice("foot")
    labels = np.zeros((4, 93), np.float32)
    labels[[0, 1], foot.start] = 1        # foot class 0 carried by 2 of 4 persons
    labels[2, foot.start + 1] = 1         # foot class 1 by 1 of 4
    labels[[0, 1, 2, 3], foot.stop - 1] = 1  # foot no_interaction by all
    verbs = np.zeros((4, 157), np.float32)
    verbs[3, 10] = 1
    w = frequency_loss_weights(labels, verbs, k=2.0)
    assert w["foot"].shape == (16,) and w["verb"].shape == (157,) and w["head"].shape == (14,)
    assert w["foot"][0] == pytest.approx(2 * math.log(4.0))   # 2 * log(2 * 4 / 2)
    assert w["foot"][1] == pytest.approx(2 * math.log(8.0))   # 2 * log(2 * 4 / 1)
    assert w["foot"][15] == pytest.approx(2 * math.log(2.0))  # 2 * log(2 * 4 / 4)
    assert np.count_nonzero(w["foot"]) == 3 and np.count_nonzero(w["leg"]) == 0
    assert w["verb"][10] == pytest.approx(2 * math.log(8.0)) and np.count_nonzero(w["verb"]) == 1
    w3 = frequency_loss_weights(labels, verbs, k=3.0)
    assert w3["foot"][0] == pytest.approx(3 * math.log(6.0))  # 3 * log(3 * 4 / 2)


def _save_hake_weights(path: Path, weights: dict) -> None:
    """HAKE's loss_weights.npy: np.save of a dict (a pickled 0-d object array)."""
    np.save(path, np.array(weights, dtype=object), allow_pickle=True)


def test_hake_loss_weights_file_loads_without_plain_pickle_and_rescales_like_the_original(tmp_path):
    pasta93 = vocab.load("pasta93")
    rng = np.random.default_rng(0)
    labels = (rng.random((50, 93)) < 0.2).astype(np.float32)
    verbs = (rng.random((50, 157)) < 0.1).astype(np.float32)
    stored = frequency_loss_weights(labels, verbs, k=2.0)
    path = tmp_path / "loss_weights.npy"
    _save_hake_weights(path, {name: w.astype(np.float64) for name, w in stored.items()})
    loaded = load_loss_weights(path, k=2.0)
    assert all(np.allclose(loaded[n], stored[n]) for n in stored)
    # the original's loss_reweight at another K turns 2*log(2*g) into K*log(K*g): the frequency weights at that K
    rescaled = load_loss_weights(path, k=3.0)
    direct = frequency_loss_weights(labels, verbs, k=3.0)
    assert all(np.allclose(rescaled[n], direct[n], atol=1e-5) for n in stored)
    assert pasta93.part_slice("hand").stop - pasta93.part_slice("hand").start == loaded["hand"].size
    # a plain 250-float array works too (93 PaSta then 157 verbs)
    flat = tmp_path / "flat.npy"
    np.save(flat, np.concatenate([stored[n] for n in (*PARTS, "verb")]))
    assert np.allclose(load_loss_weights(flat)["verb"], stored["verb"])


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_malicious_or_wrong_loss_weight_files_are_one_line_errors(tmp_path):
    evil = tmp_path / "evil.npy"
    with open(evil, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": "|O", "fortran_order": False, "shape": ()})
        fh.write(pickle.dumps(_Evil(), protocol=2))
    with pytest.raises(InputError, match="forbidden global"):
        load_loss_weights(evil)
    short = tmp_path / "short.npy"
    _save_hake_weights(short, {"foot": np.ones(3)})
    with pytest.raises(InputError, match="foot"):
        load_loss_weights(short)


def test_items_carry_skeleton_maps_and_keypoint_part_boxes(synth_root, tmp_path):
    from partwise.models.pose_parts import part_boxes_from_keypoints, skeleton_map

    runner = load_task(CONFIG, [f"data.root={synth_root}", *SMALL])
    _, val_ds = runner.datasets()
    item, source = val_ds[0], val_ds.items[0]
    h, w = item["image"].shape[-2:]
    k = source.keypoints.copy()
    k[..., 0] *= w / source.width
    k[..., 1] *= h / source.height
    expected_parts = part_boxes_from_keypoints(k, item["boxes"].numpy(), image_size=(w, h))
    assert np.allclose(item["part_boxes"].numpy(), expected_parts, atol=1e-3)
    for g in range(len(k)):
        assert np.array_equal(item["skeletons"][g, 0].numpy(), skeleton_map(k[g], (w, h)))
        assert item["skeletons"][g].count_nonzero() > 20
    # records without the keypoints column: zero maps and the records' part boxes
    import pyarrow.parquet as pq

    bare = tmp_path / "bare"
    bare.mkdir()
    for entry in Path(synth_root).iterdir():
        if entry.name != "truth.parquet":
            (bare / entry.name).symlink_to(entry)
    pq.write_table(pq.read_table(Path(synth_root) / "truth.parquet").drop_columns(["keypoints"]), bare / "truth.parquet")
    runner = load_task(CONFIG, [f"data.root={bare}", *SMALL])
    _, val_bare = runner.datasets()
    item_bare = val_bare[0]
    assert item_bare["skeletons"].count_nonzero() == 0
    record_parts = val_bare.items[0].part_boxes * np.array([w, h, w, h])
    assert np.allclose(item_bare["part_boxes"].numpy(), record_parts, atol=1e-3)


def test_short_run_with_keypoints_improves_over_initialization(synth_root, tmp_path):
    """25 steps (50 images) on the tiny synthetic set: the PaSta instance mAP on the val persons rises well above the
    initial model's and the frequency prior's (the weighted val loss is not the measure: it rises as the heads grow
    confident on 9 training images)."""
    out = tmp_path / "run"
    runner = load_task(CONFIG, [f"data.root={synth_root}", f"run.out_dir={out}", "run.max_steps=25", *SMALL])
    train_ds, val_ds = runner.datasets()
    initial = runner.evaluate(runner.build_model(), train_ds, val_ds, None)["instance"]
    trained = run_task(runner, progress=False)["eval"]["instance"]
    assert trained["prior_mAP"] == pytest.approx(initial["prior_mAP"])
    assert trained["mAP"] > initial["mAP"] + 0.05 and trained["mAP"] > trained["prior_mAP"] + 0.03
    from partwise.models.checkpoint import read_checkpoint

    assert read_checkpoint(out / "model.pt")["extra"]["skeletons"] is True
