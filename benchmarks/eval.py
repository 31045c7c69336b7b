"""Benchmark partwise's AVA frame-mAP evaluator on an AVA-val-sized input against a straightforward baseline.

Generates (seeded) about 50,000 GT keyframes, 250,000 GT rows and 7 million detection rows as CSV files in a
temporary folder, then times ``partwise.eval.ava.evaluate`` end to end (CSV parsing included) for each profile in
a fresh process (peak memory = that process's ``ru_maxrss``). The baseline is a plain per-keyframe Python
evaluator of the official semantics (csv module, dicts, heapq, per-keyframe numpy IoU), the way the original tools
work; it runs on a 2% keyframe subset and its time is scaled by the subset's share of detection rows. Both
evaluate that subset too, so the script also checks that they agree. Then it runs ``benchmarks/eval_hico.py`` when
that file exists (``--skip-hico`` to skip).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/eval.py [--keyframes 50000] [--det-rows 7000000] [--skip-hico]
"""
from __future__ import annotations

import argparse
import csv
import heapq
import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

AVA_FIRST, AVA_LAST = 902, 1798
EVALUATED = (1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 17, 20, 22, 24, 26, 27, 28, 29, 30, 34, 36, 37, 38, 41,
             43, 45, 46, 47, 48, 49, 51, 52, 54, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 72, 73,
             74, 76, 77, 78, 79, 80)


# ----------------------------------------------------------------------------------------------------------------
# synthetic AVA-val-sized data
# ----------------------------------------------------------------------------------------------------------------

def _video_ids(rng: np.random.Generator, n: int) -> list[str]:
    alphabet = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"))
    return ["".join(rng.choice(alphabet, 11)) for _ in range(n)]


def generate(folder: Path, keyframes: int, det_rows: int, seed: int = 0) -> dict:
    """Write gt.csv, gt2020.csv (+ 2-column rows of GT-less keyframes), det.csv, excl.csv and labelmap.pbtxt."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(seed)
    per_video = AVA_LAST - AVA_FIRST + 1
    n_videos = max(1, int(np.ceil(keyframes / 0.87 / per_video)))
    videos = _video_ids(rng, n_videos)
    all_kf = n_videos * per_video
    kf_video = np.repeat(np.arange(n_videos), per_video)
    kf_time = np.tile(np.arange(AVA_FIRST, AVA_LAST + 1), n_videos)
    with_gt = np.zeros(all_kf, bool)
    with_gt[rng.choice(all_kf, size=min(keyframes, all_kf), replace=False)] = True
    fp_only = ~with_gt & (rng.random(all_kf) < 0.5)       # keyframes with detections but no GT
    excluded = rng.random(all_kf) < 0.005

    # GT persons and their actions (long-tailed over the 80 classes)
    persons = np.where(with_gt, 1 + rng.poisson(1.5, all_kf), 0)
    p_kf = np.repeat(np.arange(all_kf), persons)
    n_p = p_kf.shape[0]
    x1 = np.round(rng.uniform(0, 0.6, n_p), 3)
    y1 = np.round(rng.uniform(0, 0.5, n_p), 3)
    x2 = np.round(np.minimum(1.0, x1 + rng.uniform(0.08, 0.4, n_p)), 3)
    y2 = np.round(np.minimum(1.0, y1 + rng.uniform(0.2, 0.5, n_p)), 3)
    pid = np.arange(n_p)
    n_actions = 1 + rng.poisson(1.0, n_p)
    a_person = np.repeat(np.arange(n_p), n_actions)
    weights = 1.0 / np.arange(1, 81) ** 1.1
    action = rng.choice(np.arange(1, 81), size=a_person.shape[0], p=weights / weights.sum())
    # one row per (person, action); duplicates of the same action collapse
    key = a_person * 100 + action
    _, first = np.unique(key, return_index=True)
    first.sort()
    a_person, action = a_person[first], action[first]
    gt_cols = {
        "video": np.asarray(videos, dtype=object)[kf_video[p_kf[a_person]]],
        "ts": kf_time[p_kf[a_person]],
        "x1": x1[a_person], "y1": y1[a_person], "x2": x2[a_person], "y2": y2[a_person],
        "action": action, "pid": pid[a_person],
    }
    opts = pacsv.WriteOptions(include_header=False, quoting_style="none")
    pacsv.write_csv(pa.table(gt_cols), folder / "gt.csv", opts)
    no_gt = np.nonzero(~with_gt)[0]
    empty = pa.table({"video": np.asarray(videos, dtype=object)[kf_video[no_gt]], "ts": kf_time[no_gt]})
    with open(folder / "gt2020.csv", "wb") as out:
        out.write((folder / "gt.csv").read_bytes())
        pacsv.write_csv(empty, out, opts)

    # detection boxes: 95% of GT persons (jittered) + false boxes; FP-only keyframes get false boxes only
    found = rng.random(n_p) < 0.95
    d_kf = [p_kf[found]]
    jitter = rng.normal(0, 0.02, (int(found.sum()), 4))
    d_box = [np.stack([x1[found], y1[found], x2[found], y2[found]], 1) + jitter]
    d_true = [np.nonzero(found)[0]]
    extra = np.where(with_gt | fp_only, rng.poisson(0.6, all_kf), 0) + fp_only
    e_kf = np.repeat(np.arange(all_kf), extra)
    ex1, ey1 = rng.uniform(0, 0.6, e_kf.shape[0]), rng.uniform(0, 0.5, e_kf.shape[0])
    d_kf.append(e_kf)
    d_box.append(np.stack([ex1, ey1, ex1 + rng.uniform(0.08, 0.4, e_kf.shape[0]),
                           ey1 + rng.uniform(0.2, 0.5, e_kf.shape[0])], 1))
    d_true.append(np.full(e_kf.shape[0], -1))
    b_kf = np.concatenate(d_kf)
    b_box = np.round(np.clip(np.concatenate(d_box), 0, 1), 3)
    b_box[:, 2] = np.maximum(b_box[:, 2], b_box[:, 0])
    b_box[:, 3] = np.maximum(b_box[:, 3], b_box[:, 1])
    b_true = np.concatenate(d_true)
    order = np.argsort(b_kf, kind="stable")
    b_kf, b_box, b_true = b_kf[order], b_box[order], b_true[order]
    n_b = b_kf.shape[0]
    # 80 sigmoid scores per box; the person's own actions score high
    logits = rng.normal(-5.0, 1.6, (n_b, 80))
    true_rows = np.nonzero(b_true >= 0)[0]
    pos = {}
    for p, a in zip(a_person.tolist(), action.tolist()):
        pos.setdefault(p, []).append(a)
    lookup = np.full((n_p, 8), 0)
    for p, acts in pos.items():
        lookup[p, :min(8, len(acts))] = acts[:8]
    acts = lookup[b_true[true_rows]]
    rr, cc = np.nonzero(acts > 0)
    logits[true_rows[rr], acts[rr, cc] - 1] = rng.normal(0.5, 1.8, rr.shape[0])
    scores = np.round(1.0 / (1.0 + np.exp(-logits)), 4)
    box_i, cls_i = np.nonzero(scores > 0.002)
    if box_i.shape[0] > det_rows:
        pick = np.sort(rng.choice(box_i.shape[0], det_rows, replace=False))
        box_i, cls_i = box_i[pick], cls_i[pick]
    det_cols = {
        "video": np.asarray(videos, dtype=object)[kf_video[b_kf[box_i]]],
        "ts": kf_time[b_kf[box_i]],
        "x1": b_box[box_i, 0], "y1": b_box[box_i, 1], "x2": b_box[box_i, 2], "y2": b_box[box_i, 3],
        "action": cls_i + 1, "score": scores[box_i, cls_i],
    }
    pacsv.write_csv(pa.table(det_cols), folder / "det.csv", opts)
    exc = np.nonzero(excluded)[0]
    pacsv.write_csv(pa.table({"video": np.asarray(videos, dtype=object)[kf_video[exc]], "ts": kf_time[exc]}),
                    folder / "excl.csv", opts)
    with open(folder / "labelmap.pbtxt", "w") as fh:
        for cid in EVALUATED:
            fh.write(f'item {{\n  name: "action {cid}"\n  id: {cid}\n}}\n')
    return {"videos": n_videos, "gt_keyframes": int(with_gt.sum()), "gt_rows": int(gt_cols["action"].shape[0]),
            "det_rows": int(box_i.shape[0]), "det_keyframes": int(np.unique(b_kf[box_i]).shape[0]),
            "excluded": int(exc.shape[0])}


def subset(folder: Path, out: Path, fraction: float, seed: int = 1) -> dict:
    """Keep a random ``fraction`` of the keyframes (rows of gt2020.csv and det.csv on them)."""
    rng = np.random.default_rng(seed)
    keys = set()
    with open(folder / "gt2020.csv") as fh:
        for line in fh:
            keys.add(line.split(",", 2)[0] + "," + line.split(",", 2)[1].strip())
    keys = sorted(keys)
    chosen = {keys[i] for i in rng.choice(len(keys), max(1, int(len(keys) * fraction)), replace=False)}
    counts = {}
    for name in ("gt2020.csv", "det.csv"):
        n = 0
        with open(folder / name) as src, open(out / name, "w") as dst:
            for line in src:
                parts = line.split(",", 2)
                if parts[0] + "," + parts[1].strip() in chosen:
                    dst.write(line)
                    n += 1
        counts[name] = n
    (out / "labelmap.pbtxt").write_bytes((folder / "labelmap.pbtxt").read_bytes())
    return counts


# ----------------------------------------------------------------------------------------------------------------
# the straightforward baseline: official semantics, one keyframe at a time
# ----------------------------------------------------------------------------------------------------------------

def baseline_official(gt_path: Path, det_path: Path, class_ids: list[int], cap: int = 50) -> float:
    """Per-keyframe Python evaluator with the official 2020 semantics; returns the mAP."""
    whitelist = set(class_ids)

    def read(path, capacity):
        entries, keys = defaultdict(list), set()
        with open(path, newline="") as fh:
            for row in csv.reader(fh):
                key = f"{row[0]},{float(row[1]):.6f}"
                keys.add(key)
                if len(row) == 2 or int(row[6]) not in whitelist:
                    continue
                x1, y1, x2, y2 = (float(v) for v in row[2:6])
                item = (float(row[7]) if len(row) == 8 else 1.0, int(row[6]), y1, x1, y2, x2)
                heap = entries[key]
                if capacity < 1 or len(heap) < capacity:
                    heapq.heappush(heap, item)
                elif item[0] > heap[0][0]:
                    heapq.heapreplace(heap, item)
        return {k: sorted(v, key=lambda e: -e[0]) for k, v in entries.items()}, keys

    gts, included = read(gt_path, 0)
    dets, _ = read(det_path, cap)
    num_gt = defaultdict(int)
    for items in gts.values():
        for item in items:
            num_gt[item[1]] += 1
    scores, labels = defaultdict(list), defaultdict(list)
    for key, items in dets.items():
        if key not in included:
            continue
        gt_items = gts.get(key, [])
        for cid in sorted({it[1] for it in items}):
            d = np.array([it[2:] for it in items if it[1] == cid], dtype=float).reshape(-1, 4)
            s = np.array([it[0] for it in items if it[1] == cid], dtype=float)
            valid = (d[:, 0] < d[:, 2]) & (d[:, 1] < d[:, 3])
            d, s = d[valid], s[valid]
            g = np.array([it[2:] for it in gt_items if it[1] == cid], dtype=float).reshape(-1, 4)
            tp = np.zeros(len(s), bool)
            if len(g):
                ih = np.maximum(0, np.minimum(d[:, None, 2], g[None, :, 2]) - np.maximum(d[:, None, 0], g[None, :, 0]))
                iw = np.maximum(0, np.minimum(d[:, None, 3], g[None, :, 3]) - np.maximum(d[:, None, 1], g[None, :, 1]))
                inter = ih * iw
                area_d = (d[:, 2] - d[:, 0]) * (d[:, 3] - d[:, 1])
                area_g = (g[:, 2] - g[:, 0]) * (g[:, 3] - g[:, 1])
                iou = inter / (area_d[:, None] + area_g[None, :] - inter)
                best = np.argmax(iou, axis=1)
                used = np.zeros(len(g), bool)
                for i in range(len(s)):
                    if iou[i, best[i]] >= 0.5 and not used[best[i]]:
                        tp[i] = used[best[i]] = True
            scores[cid].append(s)
            labels[cid].append(tp)
    aps = []
    for cid in class_ids:
        if num_gt[cid] == 0:
            continue
        if not scores[cid]:
            aps.append(0.0)
            continue
        s, t = np.concatenate(scores[cid]), np.concatenate(labels[cid])
        order = np.argsort(s)[::-1]
        hits = t[order].astype(int)
        ctp = np.cumsum(hits)
        precision = ctp / np.arange(1, len(hits) + 1)
        recall = ctp / num_gt[cid]
        r = np.concatenate([[0], recall, [1]])
        p = np.concatenate([[0], precision, [0]])
        for i in range(len(p) - 2, -1, -1):
            p[i] = max(p[i], p[i + 1])
        idx = np.where(r[1:] != r[:-1])[0] + 1
        aps.append(float(np.sum((r[idx] - r[idx - 1]) * p[idx])))
    return float(np.mean(aps)) if aps else float("nan")


# ----------------------------------------------------------------------------------------------------------------
# runners
# ----------------------------------------------------------------------------------------------------------------

def _worker(args) -> None:
    """Run one partwise evaluation and print wall and CPU seconds (CSV parsing, evaluation), peak RSS and mAP."""
    from partwise.eval.ava import evaluate, read_rows
    from partwise.vocab import read_label_map

    wall0, cpu0 = time.perf_counter(), time.process_time()
    label_map = read_label_map(args.labelmap)
    gt = read_rows(args.gt, kind="gt")
    det = read_rows(args.pred, kind="det")
    wall1, cpu1 = time.perf_counter(), time.process_time()
    result = evaluate(gt, det, label_map, profile=args.profile,
                      exclusions=args.exclusions if args.exclusions else None)
    wall2, cpu2 = time.perf_counter(), time.process_time()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB (Linux reports KiB)
    print(json.dumps({"seconds": wall2 - wall0, "parse_s": wall1 - wall0, "eval_s": wall2 - wall1,
                      "cpu_s": cpu2 - cpu0, "parse_cpu_s": cpu1 - cpu0, "eval_cpu_s": cpu2 - cpu1,
                      "peak_mib": peak, "mAP": result.value}))


def _run_worker(profile: str, gt: Path, det: Path, labelmap: Path, exclusions: Path | None) -> dict:
    cmd = [sys.executable, __file__, "--_worker", "--profile", profile, "--gt", str(gt), "--pred", str(det),
           "--labelmap", str(labelmap)]
    if exclusions is not None:
        cmd += ["--exclusions", str(exclusions)]
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"worker failed ({profile}):\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keyframes", type=int, default=50_000, help="GT keyframes (AVA val: about 50,000)")
    parser.add_argument("--det-rows", type=int, default=7_000_000, help="detection rows (about 7 million)")
    parser.add_argument("--baseline-fraction", type=float, default=0.02, help="keyframe share the baseline runs on")
    parser.add_argument("--profiles", default="official,mmaction2,slowfast")
    parser.add_argument("--skip-hico", action="store_true", help="do not run benchmarks/eval_hico.py")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--_worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--profile", help=argparse.SUPPRESS)
    parser.add_argument("--gt", help=argparse.SUPPRESS)
    parser.add_argument("--pred", help=argparse.SUPPRESS)
    parser.add_argument("--labelmap", help=argparse.SUPPRESS)
    parser.add_argument("--exclusions", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._worker:
        _worker(args)
        return 0

    with tempfile.TemporaryDirectory(prefix="partwise-bench-ava-") as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        sizes = generate(folder, args.keyframes, args.det_rows, args.seed)
        print(f"generated in {time.perf_counter() - start:.1f} s: {sizes['gt_keyframes']:,} GT keyframes, "
              f"{sizes['gt_rows']:,} GT rows, {sizes['det_rows']:,} detection rows on {sizes['det_keyframes']:,} "
              f"keyframes, {sizes['excluded']} excluded keyframes "
              f"(det.csv {os.path.getsize(folder / 'det.csv') / 2**20:.0f} MiB)")
        print("\npartwise (end to end, CSV parsing included, one fresh process each):")
        timings = {}
        for profile in args.profiles.split(","):
            gt = folder / ("gt2020.csv" if profile == "official" else "gt.csv")
            excl = None if profile == "official" else folder / "excl.csv"
            r = _run_worker(profile, gt, folder / "det.csv", folder / "labelmap.pbtxt", excl)
            timings[profile] = r
            print(f"  {profile:<10} {r['seconds']:6.2f} s wall (parse {r['parse_s']:5.2f} + evaluate "
                  f"{r['eval_s']:5.2f}), "
                  f"{r['cpu_s']:6.2f} s CPU (parse {r['parse_cpu_s']:5.2f} + evaluate {r['eval_cpu_s']:5.2f}), "
                  f"peak RSS {r['peak_mib']:5.0f} MiB, mAP {r['mAP']:.6f}")

        sub = folder / "subset"
        sub.mkdir()
        counts = subset(folder, sub, args.baseline_fraction, args.seed + 1)
        scale = sizes["det_rows"] / max(1, counts["det.csv"])
        start, cpu_start = time.perf_counter(), time.process_time()
        base_map = baseline_official(sub / "gt2020.csv", sub / "det.csv", list(EVALUATED))
        base_seconds, base_cpu = time.perf_counter() - start, time.process_time() - cpu_start
        ours = _run_worker("official", sub / "gt2020.csv", sub / "det.csv", sub / "labelmap.pbtxt", None)
        print(f"\nbaseline: per-keyframe Python loop (csv module + heapq + per-keyframe numpy IoU, official "
              f"semantics) on a {100 * args.baseline_fraction:g}% keyframe subset ({counts['det.csv']:,} "
              f"detection rows): {base_seconds:.2f} s wall / {base_cpu:.2f} s CPU, scaled x{scale:.1f} to the full "
              f"input = {base_seconds * scale:.0f} s wall / {base_cpu * scale:.0f} s CPU (ESTIMATE)")
        diff = abs(base_map - ours["mAP"])
        verdict = "identical" if diff == 0 else f"differ by {diff:.2e}"
        print(f"  agreement on the subset: baseline mAP {base_map:.12f}, partwise official {ours['mAP']:.12f} "
              f"({verdict})")
        if "official" in timings:
            ours_full = timings["official"]
            print(f"  speed-up of partwise official (end to end) over the scaled baseline: "
                  f"x{base_seconds * scale / ours_full['seconds']:.0f} wall, "
                  f"x{base_cpu * scale / ours_full['cpu_s']:.0f} CPU")

    hico = Path(__file__).with_name("eval_hico.py")
    if not args.skip_hico and hico.exists():
        print("\n--- benchmarks/eval_hico.py ---", flush=True)
        spec = importlib.util.spec_from_file_location("partwise_bench_eval_hico", hico)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return int(module.main([]) or 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
