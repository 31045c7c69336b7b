"""Kinetics-TPS ingest: ``partwise data ingest`` vs a plain ``json.load`` loop, both as whole processes.

Builds (in a temporary folder, or ``--dir``) trees shaped like ``train_annotations/<class>/<video>/<video>/
img_XXXXX.json`` with ``--sizes`` per-frame JSON files each (default 4,000 and 64,000; 150 frames per video, 24
classes, 1-3 humans per frame with 5 of the 10 parts each, states from a 74-name pool, an object on some frames),
then times, alternating, as separate processes started the same way (``python FILE`` / ``python -m partwise``):

* peer ``bare``: the same walk, ``json.load`` of every file, nothing kept or written (the floor of such a loop);
* peer ``loop``: the script in :data:`PEER` -- what a researcher would write: walk the tree with ``os.walk``,
  ``json.load`` every file, collect the per-person rows (video, class, frame, person number, box, the
  ``"part: state"`` names and part boxes) into lists and pickle them to a file;
* peer ``parquet``: the same loop, then the rows written as one Parquet file with pyarrow (zstd) -- the same kind
  of output as partwise's store (the loop's cost over ``bare`` is largely CPython's cyclic garbage collector walking
  the lists it keeps -- the default, left on, as a researcher's script would);
* ``partwise``: ``partwise data ingest kinetics-tps TREE --out STORE --no-progress`` -- walk, parse, validate,
  build the person table and write the store (Parquet shards and manifest).

Two bounds, not peers, show what any ingest built on pyarrow pays, whatever it does besides (``--bounds``):

* bound ``imports``: ``import numpy, pyarrow, pyarrow.json, pyarrow.parquet`` and exit;
* bound ``arrow``: list the tree, read every file, parse 4,096 at a time with ``pyarrow.json`` and write the parsed
  nested table to Parquet -- no validation, no person rows, no store. Where the bare loop beats this bound, it
  beats every Arrow-based ingest; the printout gives the bare loop / bound ratio.

Each contender's wall time, CPU time (the child's user + system, from ``os.wait4``) and peak RSS (the child's
``ru_maxrss``) are printed, median over ``--repeat`` rounds after one warm-up round (page cache warm for all), and
the ratios peer / partwise (above 1: partwise is faster or smaller). partwise parses on ``pyarrow.cpu_count()``
threads, which honours ``OMP_NUM_THREADS``; ``--threads`` sets it (default 1: one thread against one thread). With
more, the printout says partwise uses a pool, and the CPU ratio is the fair figure. The rows are compared: the
person rows partwise stored must equal the peer's (video, frame, person, box, part states).

    OMP_NUM_THREADS=1 python benchmarks/ingest.py                   # 4k and 64k files, one thread each
    OMP_NUM_THREADS=1 python benchmarks/ingest.py --sizes 4000 --repeat 5 --threads 2
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

PARTS = ["head", "hip", "left_arm", "right_arm", "left_hand", "right_hand", "left_leg", "right_leg", "left_foot",
         "right_foot"]
STATES = [f"state_{k:02d}" for k in range(60)] + ["bend", "unbend", "step_on", "stand", "hold", "carry", "push",
                                                 "lift", "none", "others", "tiptoe", "grab", "kick", "jump"]
OBJECTS = ["rope", "bag", "ball", "bar", "discus", "board", "none"]

#: The peer: a plain json.load loop as a researcher would write it (argv: TREE OUT {bare,pickle,parquet}).
PEER = r'''
import json, os, sys

root, out, kind = sys.argv[1], sys.argv[2], sys.argv[3]
if kind == "imports":  # bound, not a peer: what any ingest built on pyarrow pays before it reads a file
    import numpy, pyarrow, pyarrow.json, pyarrow.parquet
    sys.exit(0)
if kind == "arrow":  # bound, not a peer: the least an Arrow-based ingest does (no checks, no person rows)
    import pyarrow as pa, pyarrow.json as pj, pyarrow.parquet as pq
    paths = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        paths += [os.path.join(dirpath, n) for n in sorted(filenames) if n.startswith("img_") and n.endswith(".json")]
    schema = writer = None
    for start in range(0, len(paths), 4096):
        blobs = []
        for path in paths[start:start + 4096]:
            fd = os.open(path, os.O_RDONLY)
            blobs.append(os.read(fd, 1 << 16))  # the generated files are about 1 KiB
            os.close(fd)
        data = b"\n".join(blobs)  # the generated files hold no line break
        table = pj.read_json(pa.BufferReader(data), read_options=pj.ReadOptions(use_threads=False,
                                                                                 block_size=len(data) + 1),
                             parse_options=pj.ParseOptions(explicit_schema=schema) if schema else None)
        schema = table.schema
        writer = writer or pq.ParquetWriter(out, schema, compression="zstd")
        writer.write_table(table)  # the parsed nested table as it is
    writer.close()
    sys.exit(0)
if kind == "bare":  # json.load every file, keep and write nothing: the floor of any such loop
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            if name.startswith("img_") and name.endswith(".json"):
                with open(os.path.join(dirpath, name)) as fh:
                    json.load(fh)
    sys.exit(0)
rows = {"video_id": [], "label": [], "frame_index": [], "person_id": [], "box": [], "pasta": [], "part_boxes": []}
for dirpath, dirnames, filenames in os.walk(root):
    dirnames.sort()
    video = os.path.basename(dirpath)
    label = os.path.basename(os.path.dirname(os.path.dirname(dirpath)))
    for name in sorted(filenames):
        if not (name.startswith("img_") and name.endswith(".json")):
            continue
        with open(os.path.join(dirpath, name)) as fh:
            frame = json.load(fh)
        index = int(name[4:-5])
        for human in frame["humans"]:
            parts = sorted(human["parts"].items())
            rows["video_id"].append(video)
            rows["label"].append(label)
            rows["frame_index"].append(index)
            rows["person_id"].append(human.get("number"))
            rows["box"].append(human["box"])
            rows["pasta"].append([f"{p}: {v['verb']}" for p, v in parts])
            rows["part_boxes"].append([v["box"] for _, v in parts])
if kind == "parquet":
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table(rows), out, compression="zstd")
else:
    import pickle

    with open(out, "wb") as fh:
        pickle.dump(rows, fh, protocol=pickle.HIGHEST_PROTOCOL)
print(len(rows["video_id"]))
'''


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


def count_files(root: str) -> int:
    return sum(1 for _, _, names in os.walk(root) for name in names if name.endswith(".json"))


def run_child(argv: list[str], env: dict) -> dict:
    """Run ``argv`` as a child process: wall seconds, CPU seconds (user + system) and peak RSS (MiB) of it alone."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # wait4 gives this child's own rusage (RUSAGE_CHILDREN would sum every child waited for so far)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    out, err = proc.stdout.read(), proc.stderr.read()
    proc.stdout.close()
    proc.stderr.close()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{err.decode(errors='replace')}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss": usage.ru_maxrss / 1024,
            "out": out.decode(errors="replace").strip()}


#: Compares the persons partwise stored with the loop's (argv: STORE PICKLE); run as a child so that this process
#: stays small (a child's ru_maxrss starts at its parent's RSS when it is spawned).
CHECK = r'''
import json, os, pickle, sys
import pyarrow.parquet as pq

store, peer = sys.argv[1], sys.argv[2]
with open(os.path.join(store, "manifest.json")) as fh:
    shards = [s for source in json.load(fh)["sources"] for s in source["shards"]]
ours = []
for shard in shards:
    table = pq.read_table(os.path.join(store, shard), columns=["video_id", "video_label", "frame_index", "person_id",
                                                               "px1", "py1", "px2", "py2", "pasta"])
    for r in table.to_pylist():
        ours.append((r["video_id"], r["video_label"], r["frame_index"], r["person_id"],
                     (r["px1"], r["py1"], r["px2"], r["py2"]), tuple(r["pasta"])))
with open(peer, "rb") as fh:
    rows = pickle.load(fh)
theirs = [(v, lab, f, p, tuple(float(x) for x in b), tuple(s)) for v, lab, f, p, b, s in
          zip(rows["video_id"], rows["label"], rows["frame_index"], rows["person_id"], rows["box"], rows["pasta"])]
print(len(ours), len(theirs), int(sorted(ours) == sorted(theirs)))
'''


def bench_size(root: str, n_files: int, args: argparse.Namespace, work: str, peer_script: str) -> list[dict]:
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    peer_env = {**os.environ, "OMP_NUM_THREADS": "1"}
    store = os.path.join(work, "store")
    contenders = {
        "peer bare": lambda: run_child([sys.executable, peer_script, root, "-", "bare"], peer_env),
        "peer loop": lambda: run_child([sys.executable, peer_script, root, os.path.join(work, "peer.pkl"), "pickle"],
                                       peer_env),
        "peer parquet": lambda: run_child([sys.executable, peer_script, root, os.path.join(work, "peer.parquet"),
                                           "parquet"], peer_env),
        "bound imports": lambda: run_child([sys.executable, peer_script, root, "-", "imports"], peer_env),
        "bound arrow": lambda: run_child([sys.executable, peer_script, root, os.path.join(work, "bound.parquet"),
                                          "arrow"], peer_env),
        "partwise": lambda: run_child([sys.executable, "-m", "partwise", "data", "ingest", "kinetics-tps", root,
                                       "--out", store, "--no-progress"], env),
    }
    names = [n for n in contenders if n == "partwise" or n.split()[1] in (args.bounds if n.startswith("bound")
                                                                             else args.peers)]
    results: dict[str, list[dict]] = {n: [] for n in names}
    for round_ in range(args.repeat + 1):  # round 0 warms the page cache and is not counted
        order = names[round_ % len(names):] + names[:round_ % len(names)]  # rotate who goes first
        for name in order:
            if name == "partwise":
                shutil.rmtree(store, ignore_errors=True)  # a fresh store each time, not a re-ingest
            result = contenders[name]()
            if round_:
                results[name].append(result)
    # Same persons? (the pickle of the last loop run against the store of the last partwise run)
    if "peer loop" in results:
        ours, theirs, same = map(int, run_child([sys.executable, "-c", CHECK, store, os.path.join(work, "peer.pkl")],
                                                peer_env)["out"].split())
        check = (f"partwise stored {ours:,} person rows, the loop {theirs:,}: "
                 f"{'identical rows' if same else 'ROWS DIFFER'} (video, class, frame, person, box, part states)")
        print(f"  {check}")
        if not same:
            raise SystemExit(1)
    summary = []
    for name in names:
        rs = results[name]
        summary.append({"name": name, "wall": statistics.median(r["wall"] for r in rs),
                        "cpu": statistics.median(r["cpu"] for r in rs), "rss": max(r["rss"] for r in rs)})
    ours_s = next(s for s in summary if s["name"] == "partwise")
    for s in summary:
        line = f"  {s['name']:<13} wall {s['wall']:6.2f} s   CPU {s['cpu']:6.2f} s   peak RSS {s['rss']:7.1f} MiB"
        if s["name"].startswith("bound"):
            bare = next((b for b in summary if b["name"] == "peer bare"), None)
            line += f"   {s['cpu'] / ours_s['cpu']:.0%} of partwise's CPU"
            if bare:
                line += f"; the bare loop / this bound: CPU {bare['cpu'] / s['cpu']:.2f}x"
        elif s is not ours_s:
            line += (f"   ratio peer/partwise: wall {s['wall'] / ours_s['wall']:.2f}x, CPU {s['cpu'] / ours_s['cpu']:.2f}x, "
                     f"RSS {s['rss'] / ours_s['rss']:.2f}x")
        print(line)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="4000,64000", help="comma-separated numbers of per-frame JSON files "
                                                              "(default 4000,64000)")
    parser.add_argument("--frames-per-video", type=int, default=150)
    parser.add_argument("--dir", help="build the trees here (kept; reused when already there) instead of a "
                                      "temporary folder")
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds, each contender once per round "
                                                               "(default 3; medians are printed)")
    parser.add_argument("--threads", type=int, default=1,
                        help="OMP_NUM_THREADS for partwise, i.e. its parse threads (default 1: one thread like the "
                             "loop)")
    parser.add_argument("--peers", default="bare,loop,parquet",
                        help="peer variants to run: bare (json.load only), loop (rows pickled), parquet (rows as "
                             "Parquet); default all three")
    parser.add_argument("--bounds", default="imports,arrow",
                        help="bounds of an ingest built on pyarrow, not peers: imports (import numpy and pyarrow's "
                             "JSON and Parquet modules, nothing else), arrow (read every file, parse with pyarrow.json, "
                             "write the parsed table: no checks, no person rows); default both, '' for none")
    args = parser.parse_args(argv)
    args.peers = {p.strip() for p in args.peers.split(",") if p.strip()}
    args.bounds = {p.strip() for p in args.bounds.split(",") if p.strip()}
    sizes = [int(s) for s in args.sizes.split(",")]

    base = args.dir or tempfile.mkdtemp(prefix="tps-ingest-")
    work = tempfile.mkdtemp(prefix="tps-ingest-work-")
    try:
        peer_script = os.path.join(work, "peer_loop.py")
        with open(peer_script, "w") as fh:
            fh.write(PEER)
        if importlib.util.find_spec("pyarrow") is None:  # (not imported here: see CHECK)
            args.peers.discard("parquet")
            args.bounds.clear()
            print("peer parquet and the bounds: pyarrow is not installed for this Python; skipped")
        cpu_model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
                         "?") if os.path.exists("/proc/cpuinfo") else "?"
        print(f"machine: {os.cpu_count()} cores ({cpu_model}), Python {sys.version.split()[0]}; load average "
              f"{os.getloadavg()[0]:.2f} before (other processes share the cores: compare the ratios of these "
              f"alternating runs, not absolute times)")
        if args.threads == 1:
            print("partwise: OMP_NUM_THREADS=1 -> one parse thread, no pool (one thread against one)")
        else:
            print(f"partwise: OMP_NUM_THREADS={args.threads} -> a pool of {args.threads} parse threads beside the "
                  f"reading thread, against a one-thread loop: the CPU ratio is the fair figure")
        for n_files in sizes:
            root = os.path.join(base, f"tps-{n_files}")
            if os.path.isdir(root) and count_files(root) == n_files:
                print(f"\n{n_files:,} files (reusing {root})")
            else:
                shutil.rmtree(root, ignore_errors=True)
                t0 = time.perf_counter()
                build_tree(root, n_files, args.frames_per_video)
                print(f"\n{n_files:,} files (built in {time.perf_counter() - t0:.1f} s under {root})")
            bench_size(root, n_files, args, work, peer_script)
        print(f"\nload average after: {os.getloadavg()[0]:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if not args.dir:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
