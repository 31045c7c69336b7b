"""Kinetics-TPS ingest: ``partwise.data.kinetics_tps.read_records`` vs a plain ``json.load`` loop.

Builds (in a temporary folder, or ``--dir``) a tree shaped like ``train_annotations/<class>/<video>/<video>/
img_XXXXX.json`` with ``--files`` per-frame JSON files (default 100,000; 150 frames per video, 24 classes, 1-3
humans per frame with 5 of the 10 parts each, states from a 74-name pool, an object on some frames), then times

* baseline: ``for f in files: json.load(open(f))`` in one process, given the file list for free;
* partwise: ``read_records(tree)`` -- walk, parse, validate, and build the full person table;

both on a warm page cache, best of ``--repeat`` runs each, and prints files/s and the ratio.

    OMP_NUM_THREADS=1 python benchmarks/ingest.py --files 100000
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time

PARTS = ["head", "hip", "left_arm", "right_arm", "left_hand", "right_hand", "left_leg", "right_leg", "left_foot",
         "right_foot"]
STATES = [f"state_{k:02d}" for k in range(60)] + ["bend", "unbend", "step_on", "stand", "hold", "carry", "push",
                                                 "lift", "none", "others", "tiptoe", "grab", "kick", "jump"]
OBJECTS = ["rope", "bag", "ball", "bar", "discus", "board", "none"]


def make_frame(rng: random.Random) -> dict:
    """One realistic per-frame annotation: 1-3 humans, 5 parts each with number/name, sometimes an object."""
    humans = []
    for number in range(1, rng.randint(1, 3) + 1):
        x, y = rng.randint(0, 900), rng.randint(0, 500)
        w, h = rng.randint(60, 300), rng.randint(120, 500)
        parts = {}
        for part in rng.sample(PARTS, 5):
            px, py = x + rng.randint(0, w - 20), y + rng.randint(0, h - 20)
            parts[part] = {"number": 1, "box": [px, py, px + rng.randint(8, 60), py + rng.randint(8, 60)],
                           "verb": rng.choice(STATES), "name": part}
        humans.append({"number": number, "box": [x, y, x + w, y + h], "parts": parts})
    frame: dict = {"humans": humans}
    if rng.random() < 0.3:
        ox, oy = rng.randint(0, 1000), rng.randint(0, 600)
        frame["objects"] = [{"number": 1, "box": [ox, oy, ox + 40, oy + 40], "name": rng.choice(OBJECTS)}]
    return frame


def build_tree(root: str, n_files: int, frames_per_video: int = 150, seed: int = 0) -> list[str]:
    """Write ``n_files`` per-frame JSON files under ``root/train_annotations``; return their paths."""
    rng = random.Random(seed)
    files = []
    video = 0
    while len(files) < n_files:
        label = f"Class_{video % 24:02d}"
        vid = f"v{video:06d}{rng.randrange(10**5):05d}_{rng.randrange(1000):06d}_{rng.randrange(1000):06d}"
        folder = os.path.join(root, "train_annotations", label, vid, vid)
        os.makedirs(folder, exist_ok=True)
        for index in range(1, min(frames_per_video, n_files - len(files)) + 1):
            path = os.path.join(folder, f"img_{index:05d}.json")
            with open(path, "w") as fh:
                json.dump(make_frame(rng), fh)
            files.append(path)
        video += 1
    return files


def baseline(files: list[str]) -> None:
    for f in files:
        json.load(open(f))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000, help="number of per-frame JSON files (default 100000)")
    parser.add_argument("--frames-per-video", type=int, default=150)
    parser.add_argument("--dir", help="build the tree here (kept) instead of a temporary folder")
    parser.add_argument("--reuse", action="store_true", help="time the tree already in --dir instead of rebuilding")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs each (default 3)")
    parser.add_argument("--workers", type=int, default=None, help="read_records workers (default: usable cores)")
    args = parser.parse_args(argv)

    from partwise.data.kinetics_tps import read_records

    root = args.dir or tempfile.mkdtemp(prefix="tps-ingest-")
    try:
        t0 = time.perf_counter()
        if args.reuse and args.dir:
            from partwise.data.kinetics_tps import iter_videos

            files = [f for video in iter_videos(root) for f in video.files]
            print(f"reusing {len(files)} files under {root}")
        else:
            files = build_tree(root, args.files, args.frames_per_video)
            print(f"built {len(files)} files in {time.perf_counter() - t0:.1f} s under {root}")
        baseline(files)  # warm the page cache for both contenders
        load_before = os.getloadavg()[0]
        base_times, ours_times, base_cpu, ours_cpu = [], [], [], []
        rows = 0
        for _ in range(args.repeat):
            t, c = time.perf_counter(), time.process_time()
            baseline(files)
            base_times.append(time.perf_counter() - t)
            base_cpu.append(time.process_time() - c)
            t, c = time.perf_counter(), time.process_time()
            table = read_records(root, workers=args.workers)
            ours_times.append(time.perf_counter() - t)
            ours_cpu.append(time.process_time() - c)  # all threads of this process (not worker processes)
            rows = table.num_rows
        n = len(files)
        base_rate, ours_rate = n / min(base_times), n / min(ours_times)
        print(f"load average before     : {load_before:.2f} on {os.cpu_count()} cores")
        print(f"baseline json.load loop : {base_rate:10,.0f} files/s wall (best of {args.repeat}: {min(base_times):.2f} s);"
              f" {n / min(base_cpu):,.0f} files per CPU-second")
        print(f"partwise read_records   : {ours_rate:10,.0f} files/s wall (best of {args.repeat}: {min(ours_times):.2f} s,"
              f" {rows} person rows); {n / min(ours_cpu):,.0f} files per CPU-second")
        print(f"ratio (wall)            : {ours_rate / base_rate:10.2f}x")
        print(f"load average after      : {os.getloadavg()[0]:.2f}  (other processes share these cores: "
              f"wall-clock figures are only meaningful on an idle machine)")
    finally:
        if not args.dir:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
