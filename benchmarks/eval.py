"""Benchmark partwise's AVA frame-mAP evaluator against the real tools, as whole processes.

Peers (each installed or found at benchmark time, never part of partwise's requirements):

* **mmaction2** ``ava_eval`` (``mmaction/evaluation/functional/ava_utils.py`` and its ``ava_evaluation/`` folder from
  the mmaction2 1.2.0 wheel on PyPI), installed with ``pip install "numpy<2" mmaction2==1.2.0 --no-deps`` into a
  scratch virtual environment (``--peer-env``, default ``benchmarks/.peer-ava/``, git-ignored; created when missing).
  Its modules are loaded by file path under stub parent packages, so ``mmaction/__init__`` (which needs mmengine)
  never runs; ``ava_eval`` itself runs unchanged except that its ``multiprocessing.Pool(32)`` map runs in-process,
  so that its CPU and peak RSS are one process's like partwise's and 32 workers do not swamp a shared machine
  (``--peer-pool``: the pool as shipped; its peak RSS is then its largest process's). Compared with partwise
  ``--profile mmaction2``.
* **ActivityNet** ``get_ava_performance.py`` (the official AVA evaluator). It is not on PyPI: give the ``Evaluation``
  folder of an ActivityNet checkout with ``--official-dir`` (it holds ``get_ava_performance.py`` and ``ava/``); run
  unchanged through its own ``main()`` in the peer environment, with only the numpy aliases it uses (``np.bool``,
  ``np.float``, removed in numpy 1.24) put back. Compared with partwise ``--profile official``. Without the folder
  the benchmark says so and skips that comparison.

mAP agreement: the tools rank detections with ``np.argsort``'s default sort, whose order among exactly tied scores
(AVA result files hold 4-decimal scores, so ties are common) differs between numpy 1.26 (the peer environment) and
numpy 2 (partwise's); the mAPs then differ slightly (measured: 5e-7 and 8e-7 at AVA-val size, 3e-4 on 500
keyframes) and the difference is printed. ``--peer-python partwise`` runs the peers in partwise's interpreter
instead (numpy 2, with the aliases they use put back: ``np.NAN`` for mmaction2), where the mAPs agree to 1e-15.

Data: seeded synthetic AVA-val-sized files (about 50,000 GT keyframes, 234,000 GT rows, 7 million detection rows,
exclusions, a 60-class label map), written to ``--data`` (kept for reuse) or a temporary folder. Each tool runs as a
fresh process, peer and partwise alternating for ``--rounds`` rounds; for each child the benchmark prints CPU seconds
(user + sys of the process and its reaped children, from ``os.wait4``), wall seconds and peak RSS (``ru_maxrss``:
for a tool that forks workers, its largest single process), the CPU and wall ratios and both mAPs. partwise runs
through its command line (``python -m partwise eval ava``) and through the lean entry ``python -m
partwise.eval.ava`` (same options, no other metric imported). A small input (``--small-keyframes``, default 500)
shows start-up. Then ``benchmarks/eval_hico.py`` runs (``--skip-hico`` to skip).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/eval.py [--keyframes 50000] [--det-rows 7000000] [--rounds 2]
        [--data DIR] [--peer-env DIR] [--official-dir ActivityNet/Evaluation] [--peer-pool]
        [--peer-python env|partwise] [--skip-hico]
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MMACTION2 = "mmaction2==1.2.0"
AVA_FIRST, AVA_LAST = 902, 1798
EVALUATED = (1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 17, 20, 22, 24, 26, 27, 28, 29, 30, 34, 36, 37, 38, 41,
             43, 45, 46, 47, 48, 49, 51, 52, 54, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 72, 73,
             74, 76, 77, 78, 79, 80)

# ----------------------------------------------------------------------------------------------------------------
# synthetic AVA-val-sized data
# ----------------------------------------------------------------------------------------------------------------

def _video_ids(rng, n: int) -> list[str]:
    import numpy as np

    alphabet = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"))
    return ["".join(rng.choice(alphabet, 11)) for _ in range(n)]


def generate(folder: Path, keyframes: int, det_rows: int, seed: int = 0) -> dict:
    """Write gt.csv, gt2020.csv (+ 2-column rows of GT-less keyframes), det.csv, excl.csv and labelmap.pbtxt."""
    import numpy as np
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



# ----------------------------------------------------------------------------------------------------------------
# peers: the scratch environment and the runners that run inside it
# ----------------------------------------------------------------------------------------------------------------

#: run inside the peer's interpreter: mmaction2's ava_eval, loaded by file path under stub parent packages
MMACTION2_RUNNER = r'''
import contextlib, io, json, sys, types
from pathlib import Path
import numpy as np
site, det, labelmap, gt, excl, out, serial = sys.argv[1:8]
if "NAN" not in np.__dict__:  # removed in numpy 2; ava_evaluation/metrics.py still uses it
    np.NAN = np.nan
functional = Path(site) / "mmaction" / "evaluation" / "functional"
# stub parents: mmaction/__init__ imports mmengine; the functional modules themselves need numpy only
for name, folder in (("mmaction", functional.parent.parent), ("mmaction.evaluation", functional.parent),
                     ("mmaction.evaluation.functional", functional)):
    module = types.ModuleType(name)
    module.__path__ = [str(folder)]
    sys.modules[name] = module
from mmaction.evaluation.functional import ava_utils
if serial == "1":
    class InProcessPool:  # the same map, in this process
        def __init__(self, *args, **kwargs):
            pass
        def map(self, fn, items):
            return list(map(fn, items))
    ava_utils.multiprocessing = types.SimpleNamespace(Pool=InProcessPool)
with contextlib.redirect_stdout(io.StringIO()):  # its per-class table
    result = ava_utils.ava_eval(det, "mAP", labelmap, gt, excl if excl != "-" else None, verbose=False)
Path(out).write_text(json.dumps({"mAP": float(result["overall"])}))
'''

#: run inside the peer's interpreter: ActivityNet's get_ava_performance.py through its own main()
OFFICIAL_RUNNER = r'''
import contextlib, io, json, re, runpy, sys
from pathlib import Path
import numpy as np
evaluation, det, labelmap, gt, out = sys.argv[1:6]
for alias, value in (("bool", bool), ("float", float)):  # removed in numpy 1.24; the tool still uses them
    if alias not in np.__dict__:
        setattr(np, alias, value)
sys.path[:0] = [evaluation, str(Path(evaluation) / "ava")]
sys.argv = ["get_ava_performance.py", "-l", labelmap, "-g", gt, "-d", det]
text = io.StringIO()
with contextlib.redirect_stdout(text):
    runpy.run_path(str(Path(evaluation) / "get_ava_performance.py"), run_name="__main__")
found = re.search(r"mAP@0\.5IOU'\s*:\s*(?:np\.float64\()?([-+0-9.eE]+|nan)", text.getvalue())
Path(out).write_text(json.dumps({"mAP": float(found.group(1)) if found else None}))
'''


def peer_python(env: Path) -> Path:
    return env / "bin" / "python"


def ensure_peer_env(env: Path) -> Path | None:
    """The scratch environment with mmaction2 1.2.0 (no dependencies) and numpy<2; created when missing. Returns
    the site-packages folder holding ``mmaction``, or None (said why) when it cannot be set up."""
    python = peer_python(env)
    if not python.exists():
        print(f"peer: creating {env} (python -m venv; pip install \"numpy<2\" {MMACTION2} --no-deps) ...", flush=True)
        try:
            subprocess.run([sys.executable, "-m", "venv", str(env)], check=True, capture_output=True, text=True)
        except (subprocess.CalledProcessError, OSError) as exc:
            print(f"peer: cannot create the virtual environment ({exc}); skipping the peers")
            return None
    site = _peer_site(python)
    if site is None or not (site / "mmaction" / "evaluation" / "functional" / "ava_utils.py").exists():
        done = subprocess.run([str(python), "-m", "pip", "install", "-q", "numpy<2", MMACTION2, "--no-deps"],
                              capture_output=True, text=True)
        site = _peer_site(python)
        if done.returncode != 0 or site is None or not (site / "mmaction").exists():
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["?"]
            print(f"peer: mmaction2 missing, pip failed ({tail[0]}); skipping the mmaction2 comparison")
            return None
    return site


def _peer_site(python: Path) -> Path | None:
    done = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True)
    return Path(done.stdout.strip()) if done.returncode == 0 else None


def peer_numpy(python: Path) -> str:
    done = subprocess.run([str(python), "-c", "import numpy; print(numpy.__version__)"], capture_output=True, text=True)
    return done.stdout.strip() or "missing"


# ----------------------------------------------------------------------------------------------------------------
# timing whole processes
# ----------------------------------------------------------------------------------------------------------------

def run_child(cmd: list[str], result_file: Path | None = None) -> dict:
    """Run ``cmd`` as a child process; CPU (user + sys, reaped grandchildren included), wall, peak RSS (MiB) from
    ``os.wait4``; ``mAP`` from ``result_file`` (peers) or the JSON line on stdout (partwise)."""
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        child = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if child.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} ... exited {child.returncode}:\n{stderr[-2000:]}")
    if result_file is not None:
        value = json.loads(result_file.read_text())["mAP"]
    else:
        value = json.loads(stdout.strip().splitlines()[-1])["mAP"]
    return {"cpu": usage.ru_utime + usage.ru_stime, "user": usage.ru_utime, "sys": usage.ru_stime, "wall": wall,
            "rss": usage.ru_maxrss / 1024, "mAP": value}


def partwise_cmd(entry: str, profile: str, gt: Path, det: Path, labelmap: Path, excl: Path | None) -> list[str]:
    head = [sys.executable, "-m", "partwise", "eval", "ava"] if entry == "cli" else [sys.executable, "-m",
                                                                                    "partwise.eval.ava"]
    cmd = head + ["--gt", str(gt), "--pred", str(det), "--labelmap", str(labelmap), "--profile", profile,
                  "--json", "--no-progress"]
    return cmd + (["--exclusions", str(excl)] if excl is not None else [])


def compare(name: str, peer_cmd, peer_file: Path, ours: dict[str, list[str]], rounds: int) -> dict:
    """Alternate peer and partwise runs (peer first in odd rounds); print each run, then best-of CPU and wall."""
    runs: dict[str, list[dict]] = {"peer": []}
    runs.update({k: [] for k in ours})
    for r in range(rounds):
        order = ["peer", *ours] if r % 2 == 0 else [*ours, "peer"]
        for who in order:
            got = run_child(peer_cmd, peer_file) if who == "peer" else run_child(ours[who])
            runs[who].append(got)
            label = name if who == "peer" else f"partwise ({who})"
            print(f"  round {r + 1}  {label:<24} CPU {got['cpu']:8.2f} s (user {got['user']:7.2f} + sys "
                  f"{got['sys']:6.2f})  wall {got['wall']:8.2f} s  peak RSS {got['rss']:7.0f} MiB  mAP "
                  f"{got['mAP']!r}", flush=True)
    best = {who: {"cpu": min(x["cpu"] for x in rs), "wall": min(x["wall"] for x in rs),
                  "rss": max(x["rss"] for x in rs), "mAP": rs[-1]["mAP"]} for who, rs in runs.items()}
    peer = best["peer"]
    for who in ours:
        mine = best[who]
        diff = abs(peer["mAP"] - mine["mAP"]) if peer["mAP"] is not None else float("nan")
        agree = "agree" if diff <= 1e-6 else f"DIFFER by {diff:.3e}"
        print(f"  {name} / partwise ({who}): CPU x{peer['cpu'] / mine['cpu']:.1f} (best {peer['cpu']:.2f} / "
              f"{mine['cpu']:.2f} s), wall x{peer['wall'] / mine['wall']:.1f} ({peer['wall']:.2f} / "
              f"{mine['wall']:.2f} s), peak RSS {peer['rss']:.0f} vs {mine['rss']:.0f} MiB; mAP {peer['mAP']!r} vs "
              f"{mine['mAP']!r} ({agree})", flush=True)
    return best


def run_suite(folder: Path, args, site: Path | None, title: str, rounds: int) -> None:
    print(f"\n{title}", flush=True)
    labelmap = folder / "labelmap.pbtxt"
    entries = ("cli", "module")
    if site is not None:
        out = folder / "peer-mmaction2.json"
        peer = [str(args.peer_exe), "-c", MMACTION2_RUNNER, str(site), str(folder / "det.csv"),
                str(labelmap), str(folder / "gt.csv"), str(folder / "excl.csv"), str(out),
                "0" if args.peer_pool else "1"]
        ours = {e: partwise_cmd(e, "mmaction2", folder / "gt.csv", folder / "det.csv", labelmap, folder / "excl.csv")
                for e in entries}
        pool = "its Pool(32) as shipped" if args.peer_pool else "its Pool(32) map run in-process"
        print(f" mmaction2 {MMACTION2.split('==')[1]} ava_eval ({pool}) vs partwise --profile mmaction2:")
        compare("mmaction2 ava_eval", peer, out, ours, rounds)
    else:
        print(" mmaction2 ava_eval: peer missing, comparison skipped")
    official = args.official_dir
    if official is not None and (official / "get_ava_performance.py").exists() and site is not None:
        out = folder / "peer-official.json"
        peer = [str(args.peer_exe), "-c", OFFICIAL_RUNNER, str(official), str(folder / "det.csv"),
                str(labelmap), str(folder / "gt2020.csv"), str(out)]
        ours = {e: partwise_cmd(e, "official", folder / "gt2020.csv", folder / "det.csv", labelmap, None)
                for e in entries}
        print(f" ActivityNet get_ava_performance.py ({official}) vs partwise --profile official:")
        compare("ActivityNet official", peer, out, ours, rounds)
    else:
        if site is None:
            why = "no peer environment"
        elif official is None:
            why = "no --official-dir given"
        else:
            why = f"{official / 'get_ava_performance.py'} not found"
        print(f" ActivityNet get_ava_performance.py: not available offline ({why}; it is not on PyPI -- pass the "
              "Evaluation folder of an ActivityNet checkout with --official-dir); comparison skipped")


def prepare(folder: Path, keyframes: int, det_rows: int, seed: int) -> None:
    stamp = folder / "generated.json"
    wanted = {"keyframes": keyframes, "det_rows": det_rows, "seed": seed}
    if stamp.exists() and json.loads(stamp.read_text()).get("args") == wanted:
        sizes = json.loads(stamp.read_text())["sizes"]
        print(f"data: reusing {folder}", end=": ")
    else:
        folder.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        # in a child: a child's ru_maxrss starts at this process's RSS (fork/exec), so this one stays small
        subprocess.run([sys.executable, __file__, "--_generate", str(folder), str(keyframes), str(det_rows),
                        str(seed)], check=True)
        sizes = json.loads((folder / "sizes.json").read_text())
        stamp.write_text(json.dumps({"args": wanted, "sizes": sizes}))
        print(f"data: generated in {time.perf_counter() - start:.1f} s in {folder}", end=": ")
    print(f"{sizes['gt_keyframes']:,} GT keyframes, {sizes['gt_rows']:,} GT rows, {sizes['det_rows']:,} detection "
          f"rows on {sizes['det_keyframes']:,} keyframes, {sizes['excluded']} excluded keyframes "
          f"(det.csv {os.path.getsize(folder / 'det.csv') / 2**20:.0f} MiB)", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keyframes", type=int, default=50_000, help="GT keyframes (AVA val: about 50,000)")
    parser.add_argument("--det-rows", type=int, default=7_000_000, help="detection rows (about 7 million)")
    parser.add_argument("--small-keyframes", type=int, default=500, help="GT keyframes of the start-up run (0: skip)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per comparison (full size)")
    parser.add_argument("--data", type=Path, help="folder for the generated files (kept and reused)")
    parser.add_argument("--peer-env", type=Path, default=ROOT / "benchmarks" / ".peer-ava",
                        help="scratch virtual environment for the peers (created when missing)")
    parser.add_argument("--official-dir", type=Path,
                        help="ActivityNet's Evaluation folder (get_ava_performance.py and ava/)")
    parser.add_argument("--peer-pool", action="store_true",
                        help="run mmaction2's per-keyframe map in its Pool(32) as shipped (default: in-process)")
    parser.add_argument("--peer-python", choices=("env", "partwise"), default="env",
                        help="interpreter of the peers: the scratch environment's (numpy<2, default) or "
                             "partwise's (numpy 2)")
    parser.add_argument("--skip-hico", action="store_true", help="do not run benchmarks/eval_hico.py")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--_generate", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._generate:
        folder, keyframes, det_rows, seed = args._generate
        sizes = generate(Path(folder), int(keyframes), int(det_rows), int(seed))
        (Path(folder) / "sizes.json").write_text(json.dumps(sizes))
        return 0
    args.peer_env = args.peer_env.resolve()
    if args.official_dir is not None:
        args.official_dir = args.official_dir.resolve()

    import resource

    site = ensure_peer_env(args.peer_env)
    print(f"benchmark process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB (the floor "
          "of every child's figure)")
    args.peer_exe = peer_python(args.peer_env) if args.peer_python == "env" else Path(sys.executable)
    if site is not None:
        print(f"peer: {MMACTION2} from {args.peer_env}, run by {args.peer_exe} (numpy {peer_numpy(args.peer_exe)})")
    with tempfile.TemporaryDirectory(prefix="partwise-bench-ava-") as tmp:
        folder = args.data.resolve() if args.data else Path(tmp) / "full"
        prepare(folder, args.keyframes, args.det_rows, args.seed)
        run_suite(folder, args, site, f"AVA-val-sized input, {args.rounds} alternating rounds, one fresh process "
                                      "per run:", args.rounds)
        if args.small_keyframes:
            small = (folder.parent / f"{folder.name}-small") if args.data else Path(tmp) / "small"
            rows = max(1, args.det_rows * args.small_keyframes // max(1, args.keyframes))
            prepare(small, args.small_keyframes, rows, args.seed)
            run_suite(small, args, site, f"small input ({args.small_keyframes} GT keyframes): start-up, 3 rounds",
                      3)

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
