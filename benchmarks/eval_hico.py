"""Time partwise's HICO-DET evaluator on a HICO-DET-test-sized input (its real peers cannot be installed here).

Generates, in a temporary folder, ``test_hico.json`` GT (9,658 images, ~33k GT pairs over 600 classes, 112 images
without GT) and ``pred.json`` / ``pred.parquet`` with 100 pair detections per image (jittered copies of GT pairs,
wrong-class and random pairs), then times ``partwise eval hico`` end to end (parsing included) in-process, reports
peak memory (tracemalloc peak of the evaluation and the process's max RSS), and cross-checks the APs of a subset of
classes against a per-detection Python loop of ho-rcnn's matching (a correctness check, not timed: the real peers,
ho-rcnn's MATLAB code and its Python ports, are not on a package registry, so no speed ratio is claimed).

Usage: ``python benchmarks/eval_hico.py [--images 9658] [--per-image 100] [--baseline-classes 30] [--seed 0]``.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

#: No speed ratio is claimed for HICO-DET: its peers are not on a package registry, and a loop written here would
#: not be the peer.
PEER_MISSING = ("peer missing: ho-rcnn's MATLAB evaluation (eval_one.m, VOCevaldet_bboxpair.m) and its Python ports "
                "(PPDM/QPIC hico_eval.py) are not on a package registry; no HICO-DET speed ratio is printed")


def _coco_of_object() -> dict[int, int]:
    from partwise.data.hico_det import COCO91_TO_HICO_OBJECT

    return {hico: coco for coco, hico in COCO91_TO_HICO_OBJECT.items()}


def generate(folder: Path, n_images: int, per_image: int, seed: int) -> dict[str, Path]:
    """Write test_hico.json, pred.json and pred.parquet into ``folder``; returns their paths.

    GT: 1-3 humans per image, Poisson(2.5)+1 pairs drawn from a long-tailed class distribution, 112/9658 of the
    images without GT. Detections (0-based): for each GT pair three jittered copies (some with another class of the
    same object), the rest random pairs of random classes with lower scores.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from partwise.data.hico_det import hoi_verb_object

    rng = np.random.default_rng(seed)
    verb_of, object_of = hoi_verb_object()
    coco_of = _coco_of_object()
    weights = rng.pareto(1.2, 600) + 0.05
    weights /= weights.sum()
    names = [f"HICO_test2015_{i + 1:08d}.jpg" for i in range(n_images)]
    sizes = rng.integers(300, 641, size=(n_images, 2))
    n_pairs = rng.poisson(2.5, n_images) + 1
    n_pairs[rng.choice(n_images, max(1, n_images * 112 // 9658), replace=False)] = 0
    n_pairs = np.minimum(n_pairs, per_image // 3)
    total = int(n_pairs.sum())
    pair_image = np.repeat(np.arange(n_images), n_pairs)
    pair_hoi = rng.choice(600, total, p=weights) + 1
    human_slot = rng.integers(0, 2, total)
    humans = _random_boxes(rng, np.repeat(sizes, 2, axis=0), n_images * 2).reshape(n_images, 2, 4)
    pair_h = humans[pair_image, human_slot]
    pair_o = _random_boxes(rng, sizes[pair_image], total)
    is_person = object_of[pair_hoi] == 50
    pair_o[is_person] = humans[pair_image[is_person], 1 - human_slot[is_person]]
    gt_images = []
    starts = np.cumsum(n_pairs) - n_pairs
    for i in range(n_images):
        annotations, hois = [], []
        for p in range(starts[i], starts[i] + n_pairs[i]):
            annotations.append({"bbox": pair_h[p].tolist(), "category_id": 1})
            annotations.append({"bbox": pair_o[p].tolist(), "category_id": coco_of[int(object_of[pair_hoi[p]])]})
            hois.append({"subject_id": len(annotations) - 2, "object_id": len(annotations) - 1,
                         "category_id": int(verb_of[pair_hoi[p]])})
        gt_images.append({"file_name": names[i], "width": int(sizes[i, 0]), "height": int(sizes[i, 1]),
                          "annotations": annotations, "hoi_annotation": hois})
    paths = {"gt": folder / "test_hico.json", "json": folder / "pred.json", "parquet": folder / "pred.parquet"}
    paths["gt"].write_text(json.dumps(gt_images))

    # detections: 3 jittered copies of each GT pair, then random pairs up to per_image per image
    copies = np.repeat(np.arange(total), 3)
    c_image, c_hoi = pair_image[copies], pair_hoi[copies].copy()
    relabel = rng.random(copies.size) < 0.25
    same_object = [np.flatnonzero(object_of[1:] == o) + 1 for o in range(81)]
    for k in np.flatnonzero(relabel):
        c_hoi[k] = rng.choice(same_object[object_of[c_hoi[k]]])
    c_h, c_o = _jitter(rng, pair_h[copies]), _jitter(rng, pair_o[copies])
    c_score = rng.beta(4, 2, copies.size)
    n_random = per_image - 3 * n_pairs
    r_image = np.repeat(np.arange(n_images), n_random)
    r_hoi = rng.choice(600, r_image.size, p=weights) + 1
    r_h = _random_boxes(rng, sizes[r_image], r_image.size)
    r_o = _random_boxes(rng, sizes[r_image], r_image.size)
    r_score = rng.beta(1.5, 5, r_image.size)
    image = np.concatenate([c_image, r_image])
    order = np.argsort(image, kind="stable")
    image = image[order]
    hoi = np.concatenate([c_hoi, r_hoi])[order]
    hbox = (np.concatenate([c_h, r_h]) - 1.0)[order]  # predictions are 0-based
    obox = (np.concatenate([c_o, r_o]) - 1.0)[order]
    score = np.round(np.concatenate([c_score, r_score]), 6)[order]
    det_starts = np.searchsorted(image, np.arange(n_images + 1))
    hb, ob, hl, sl = hbox.tolist(), obox.tolist(), hoi.tolist(), score.tolist()
    preds = [{"image": names[i], "detections": [
        {"hoi": hl[k], "human_box": hb[k], "object_box": ob[k], "score": sl[k]}
        for k in range(det_starts[i], det_starts[i + 1])]} for i in range(n_images)]
    paths["json"].write_text(json.dumps(preds))
    columns = {"image": pa.array(np.asarray(names, dtype=object)[image]), "hoi_id": hoi}
    for j, key in enumerate(("hx1", "hy1", "hx2", "hy2")):
        columns[key] = hbox[:, j]
    for j, key in enumerate(("ox1", "oy1", "ox2", "oy2")):
        columns[key] = obox[:, j]
    columns["score"] = score
    pq.write_table(pa.table(columns), paths["parquet"])
    return paths


def _random_boxes(rng, sizes: np.ndarray, n: int) -> np.ndarray:
    """(n,4) 1-based integer boxes inside images of ``sizes`` (n,2) (width, height)."""
    w, h = sizes[:, 0].astype(float), sizes[:, 1].astype(float)
    x1 = np.floor(rng.random(n) * (w / 2)) + 1
    y1 = np.floor(rng.random(n) * (h / 2)) + 1
    x2 = np.minimum(w, x1 + 10 + np.floor(rng.random(n) * (w / 2)))
    y2 = np.minimum(h, y1 + 10 + np.floor(rng.random(n) * (h / 2)))
    return np.stack([x1, y1, x2, y2], axis=1)


def _jitter(rng, boxes: np.ndarray) -> np.ndarray:
    """Boxes moved by Gaussian noise of ~6% of their size, rounded, corners re-ordered."""
    size = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])[:, None]
    out = np.round(boxes + rng.normal(0, 1, boxes.shape) * 0.06 * size)
    return np.concatenate([np.minimum(out[:, :2], out[:, 2:]), np.maximum(out[:, :2], out[:, 2:])], axis=1)


def baseline_class_ap(gt_by_class_image: dict, dets: list[tuple[int, float, list[float]]], npos: int) -> float:
    """Straightforward ho-rcnn loop: rank, then for each detection loop over the image's GT in Python."""
    order = sorted(range(len(dets)), key=lambda k: -dets[k][1])  # Python's sort is stable
    used: dict[int, list[bool]] = {}
    tp, fp = [], []
    for k in order:
        image, _, box = dets[k]
        gts = gt_by_class_image.get(image, [])
        best, best_j = -1.0, -1
        for j, g in enumerate(gts):
            ov = min(_iou_incl(box[:4], g[:4]), _iou_incl(box[4:], g[4:]))
            if ov > best:
                best, best_j = ov, j
        flags = used.setdefault(image, [False] * len(gts))
        if best >= 0.5 and not flags[best_j]:
            flags[best_j] = True
            tp.append(1)
            fp.append(0)
        else:
            tp.append(0)
            fp.append(1)
    ctp = np.cumsum(tp, dtype=float)
    cfp = np.cumsum(fp, dtype=float)
    if not len(ctp) or npos == 0:
        return 0.0
    rec, prec = ctp / npos, ctp / (ctp + cfp)
    from partwise.eval.hico import matlab_thresholds

    ap = 0.0
    for t in matlab_thresholds():
        sel = prec[rec >= t]
        ap += (float(sel.max()) if sel.size else 0.0) / 11
    return ap


def _iou_incl(a, b) -> float:
    iw = min(a[2], b[2]) - max(a[0], b[0]) + 1
    ih = min(a[3], b[3]) - max(a[1], b[1]) + 1
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / ((a[2] - a[0] + 1) * (a[3] - a[1] + 1) + (b[2] - b[0] + 1) * (b[3] - b[1] + 1) - inter)


def _run_partwise(gt: Path, pred: Path):
    from partwise.eval import hico

    parser = argparse.ArgumentParser()
    hico.add_arguments(parser)
    args = parser.parse_args(["--gt", str(gt), "--pred", str(pred)])
    args.plot = None
    return hico.run(args)


def _peak_rss_mib() -> float:
    """Peak resident memory of this process in MiB: Linux VmHWM (reset by exec, unlike ru_maxrss, which a child
    inherits from the parent that forked it), else ru_maxrss."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(gt: str, pred: str) -> int:
    """Evaluate once in this fresh process and print the figures as one JSON line."""
    import partwise.eval.hico  # noqa: F401  (imports are not part of the timing)
    import partwise.eval.report  # noqa: F401

    base = _peak_rss_mib()
    t0 = time.perf_counter()
    result = _run_partwise(Path(gt), Path(pred))
    seconds = time.perf_counter() - t0
    print(json.dumps({"seconds": seconds, "max_rss_mib": _peak_rss_mib(),
                      "base_rss_mib": base, "gt_pairs": result.extra["n_gt_pairs"],
                      "detections": result.extra["n_detections"], "map": result.value}))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        return _child(argv[1], argv[2])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=9658)
    parser.add_argument("--per-image", type=int, default=100)
    parser.add_argument("--baseline-classes", type=int, default=30, help="classes the cross-check loop evaluates")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="partwise-bench-hico-") as tmp:
        t0 = time.perf_counter()
        paths = generate(Path(tmp), args.images, args.per_image, args.seed)
        print(f"generated {args.images} images x {args.per_image} detections in {time.perf_counter() - t0:.1f} s "
              f"(pred.json {paths['json'].stat().st_size / 2**20:.0f} MiB, "
              f"pred.parquet {paths['parquet'].stat().st_size / 2**20:.0f} MiB)")
        for kind in ("json", "parquet"):
            # a fresh process per input: its max RSS is the evaluator's peak, not the generator's
            child = subprocess.run([sys.executable, __file__, "--child", str(paths["gt"]), str(paths[kind])],
                                   capture_output=True, text=True, check=True)
            figures = json.loads(child.stdout.strip().splitlines()[-1])
            print(f"partwise eval hico ({kind} predictions, end to end incl. parsing): {figures['seconds']:.2f} s, "
                  f"peak RSS {figures['max_rss_mib']:.0f} MiB (interpreter + imports {figures['base_rss_mib']:.0f} MiB), "
                  f"{figures['gt_pairs']} GT pairs, {figures['detections']} detections, "
                  f"Full mAP {100 * figures['map']:.2f}")
        tracemalloc.start()
        t0 = time.perf_counter()
        _run_partwise(paths["gt"], paths["parquet"])
        traced = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"tracemalloc peak of the evaluation (parquet input): {peak / 2**20:.0f} MiB ({traced:.1f} s traced)")

        # baseline on a subset of classes (same parsed inputs; the loop is what is timed)
        from partwise.eval import hico

        names, gt = hico.read_gt(paths["gt"])
        det = hico.read_predictions(paths["parquet"], names)
        rng = np.random.default_rng(args.seed)
        subset = rng.choice(600, min(args.baseline_classes, 600), replace=False)
        part = hico.evaluate_hico(gt, det.take(np.flatnonzero(np.isin(det.cls, subset))), len(names))
        order = np.argsort(det.image, kind="stable")
        det_sorted = det.take(order)
        det_sorted.boxes = det_sorted.boxes + 1.0
        max_diff = 0.0
        for c in subset:
            gsel = np.flatnonzero(gt.cls == c)
            by_image: dict[int, list] = {}
            for g in gsel:
                by_image.setdefault(int(gt.image[g]), []).append(gt.boxes[g].tolist())
            dsel = np.flatnonzero(det_sorted.cls == c)
            dets = [(int(det_sorted.image[k]), float(det_sorted.score[k]), det_sorted.boxes[k].tolist()) for k in dsel]
            ap = baseline_class_ap(by_image, dets, len(gsel))
            max_diff = max(max_diff, abs(ap - part["default"].classes.ap[c]))
        t0 = time.perf_counter()
        hico.evaluate_hico(gt, det, len(names))
        fast_all = time.perf_counter() - t0
        print(f"cross-check: a per-detection Python loop of ho-rcnn's matching on {len(subset)} classes gives the same "
              f"APs (max |difference| {max_diff:.2e}); partwise on all 600 classes (matching + AP) {fast_all:.2f} s")
        print(PEER_MISSING)
        if max_diff > 1e-12:
            print("ERROR: baseline and partwise disagree", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
