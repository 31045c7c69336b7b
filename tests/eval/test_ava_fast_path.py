"""The AVA evaluator's file path: typed streaming reading (detections of other classes dropped while reading, many
blocks) gives bit-identical results to rows read by the full parser; the lean ``python -m partwise.eval.ava``
entry; the huge-page setting restored."""
from __future__ import annotations

import functools
import json
import subprocess
import sys

import numpy as np
import pytest

from partwise.data import ava as ava_data
from partwise.data.ava import typed
from partwise.eval import ava

LABELS = {c: f"class {c}" for c in (1, 3, 4, 5, 9, 11, 12, 14, 15, 20, 30, 63, 64, 80)}


def _files(tmp_path, seed=0, keyframes=120):
    """GT (8 columns and a 2020 copy with 2-column rows), detections of all 80 classes with exact score ties,
    exclusions and a label map, written as AVA CSVs."""
    rng = np.random.default_rng(seed)
    videos = [f"v{k:010d}" for k in range(3)]
    gt, gt2020, det = [], [], []
    pid = 0
    for k in range(keyframes):
        video, ts = videos[k % 3], 902 + k // 3
        if rng.random() < 0.2:
            gt2020.append(f"{video},{ts:04d}")
            continue
        persons = []
        for _ in range(int(rng.integers(1, 4))):
            x1, y1 = rng.integers(0, 600, 2) / 1000
            box = (x1, y1, x1 + rng.integers(50, 400) / 1000, y1 + rng.integers(50, 400) / 1000)
            persons.append(box)
            for action in sorted(set(rng.integers(1, 81, int(rng.integers(1, 4))).tolist())):
                row = f"{video},{ts:04d},{box[0]:.3f},{box[1]:.3f},{box[2]:.3f},{box[3]:.3f},{action},{pid}"
                gt.append(row)
                gt2020.append(row)
            pid += 1
        for box in persons + [tuple(np.round(rng.uniform(0, 0.5, 4) * [1, 1, 1, 1] + [0, 0, 0.3, 0.3], 3))]:
            jitter = np.clip(np.asarray(box) + rng.normal(0, 0.02, 4), 0, 1)
            jitter[2:] = np.maximum(jitter[2:], jitter[:2])
            for action in range(1, 81):
                score = round(float(rng.choice([0.5, 0.25, rng.random()])), 4)  # ties on purpose
                det.append(f"{video},{ts:04d},{jitter[0]:.3f},{jitter[1]:.3f},{jitter[2]:.3f},{jitter[3]:.3f},"
                           f"{action},{score}")
    paths = {}
    for name, rows in (("gt.csv", gt), ("gt2020.csv", gt2020), ("det.csv", det),
                       ("excl.csv", [f"{videos[1]},0905", f"{videos[0]},0910"])):
        paths[name] = tmp_path / name
        paths[name].write_text("\n".join(rows) + "\n")
    return paths


@pytest.mark.parametrize("profile", ["official", "mmaction2", "slowfast"])
def test_file_path_equals_fully_parsed_rows(tmp_path, monkeypatch, profile):
    paths = _files(tmp_path)
    # small blocks: the detections are streamed through dozens of them
    monkeypatch.setattr(typed, "read_typed", functools.partial(typed.read_typed, block_size=4096))
    gt = paths["gt2020.csv" if profile == "official" else "gt.csv"]
    excl = None if profile == "official" else paths["excl.csv"]
    from_files = ava.evaluate(gt, paths["det.csv"], LABELS, profile=profile, exclusions=excl)
    # the reference: every row, parsed by the full parser (formats kept, no typed path, nothing dropped)
    det_rows = ava_data.read_csv(paths["det.csv"], kind="det")
    gt_rows = ava_data.read_csv(gt, kind="gt")
    assert len(det_rows) > 5 * from_files.extra["detections_evaluated"] / 4
    reference = ava.evaluate(gt_rows, det_rows, LABELS, profile=profile, exclusions=excl)
    assert from_files.to_json_dict() == reference.to_json_dict()
    assert from_files.value == reference.value and not np.isnan(from_files.value)


def test_lean_entry_prints_what_the_cli_prints(tmp_path):
    paths = _files(tmp_path, seed=1, keyframes=30)
    labelmap = tmp_path / "labels.pbtxt"
    labelmap.write_text("".join(f'item {{\n  name: "{v}"\n  id: {k}\n}}\n' for k, v in LABELS.items()))
    args = ["--gt", str(paths["gt.csv"]), "--pred", str(paths["det.csv"]), "--labelmap", str(labelmap),
            "--profile", "mmaction2", "--exclusions", str(paths["excl.csv"]), "--json"]
    lean = subprocess.run([sys.executable, "-m", "partwise.eval.ava", *args], capture_output=True, text=True)
    assert lean.returncode == 0, lean.stderr
    reference = ava.evaluate(paths["gt.csv"], paths["det.csv"], LABELS, profile="mmaction2",
                             exclusions=paths["excl.csv"])
    assert json.loads(lean.stdout) == json.loads(reference.to_json())


def test_lean_entry_bad_input_is_one_line_exit_2(tmp_path):
    gt = tmp_path / "gt.csv"
    gt.write_text("v0000000000,0902,0.1,0.1,0.2,0.2,3,0\n")
    bad = tmp_path / "det.csv"
    bad.write_text("v0000000000,0902,0.1,0.1,0.2,0.2,3,0.5\nv0000000000,0902,0.1,0.1,1.5,0.2,3,0.5\n")
    labelmap = tmp_path / "labels.pbtxt"
    labelmap.write_text('item {\n  name: "three"\n  id: 3\n}\n')
    done = subprocess.run([sys.executable, "-m", "partwise.eval.ava", "--gt", str(gt), "--pred", str(bad),
                           "--labelmap", str(labelmap)], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"partwise: error: {bad}:line 2: x2=1.5 outside [0, 1]"]


def test_huge_page_advice_is_restored():
    setter = np._core.multiarray._set_madvise_hugepage
    before = setter(True)
    try:
        with ava._no_huge_pages():
            assert setter(False) is False  # off inside
        assert setter(True) is True  # restored to what it was
    finally:
        setter(before)
