"""partwise's TF.js graph runner against the original runtime (TF.js + its WebAssembly backend, in node) on the
real models partwise uses, fed a real frame.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/real.py [--repeats 5] [--warmup 1] [--rounds 2]
        [--models-dir DIR] [--peer-dir benchmarks/.peer] [--peer-backend wasm|cpu] [--only CASE] [--json FILE]

Cases: ``multipose-256`` (MoveNet MultiPose, the original's 256x256 input), ``multipose-768`` (MultiPose at the
vtest frame's own resolution: 768x576 padded to 768x768) and ``centernet-512`` (CenterNet, 512x512 float input).
The input is frame ``--frame`` of ``examples/real/vtest_0000_0149.mp4`` (PyAV) through partwise's own
preprocessing (:func:`partwise.models.movenet.preprocess`, :func:`partwise.models.centernet.preprocess`); both
runtimes get the same bytes.

The peer is ``benchmarks/tfjs_peer.mjs`` under node, with ``@tensorflow/tfjs@4.22.0`` and
``@tensorflow/tfjs-backend-wasm@4.22.0`` installed at benchmark time into ``--peer-dir`` (``npm install --no-save
--prefix DIR``; reused when present; nothing is added to the repository's requirements). The wasm backend runs
single-threaded in node (its SIMD variant). Without node/npm, or when the install fails, one line says so and
partwise is timed alone.

Each runtime runs in its own fresh process (partwise: this script with ``--worker``), alternately, ``--rounds``
times per case; inside each process ``--warmup`` forwards then ``--repeats`` timed ones. Reported: the median
per-forward process CPU ms (the ratio uses it: tfjs / partwise, > 1 means partwise is faster) and wall ms, the
whole-process wall time (start, imports, model load, all forwards) and peak RSS (``ru_maxrss`` of that child, from
``os.wait4``), and the largest absolute difference between the two runtimes' outputs.

Weights: ``movenet-multipose`` ships with partwise; ``centernet.json``/``.bin`` are looked for in ``--models-dir``
(default ``$PARTWISE_WEIGHTS/tfjs``, i.e. where ``partwise weights install centernet`` puts them), then through
partwise's name resolution; a case whose weights are missing is skipped with one line.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from peak_rss import vm_hwm_kib  # noqa: E402 (benchmarks/peak_rss.py, beside this script)

ROOT = Path(__file__).resolve().parents[1]
PEER_SCRIPT = ROOT / "benchmarks" / "tfjs_peer.mjs"
TFJS_VERSION = "4.22.0"
PEER_PACKAGES = (f"@tensorflow/tfjs@{TFJS_VERSION}", f"@tensorflow/tfjs-backend-wasm@{TFJS_VERSION}")
VIDEO = ROOT / "examples" / "real" / "vtest_0000_0149.mp4"
CASES = ("multipose-256", "multipose-768", "centernet-512")


# ----------------------------------------------------------------------------------------------------------------
# worker: one partwise process
# ----------------------------------------------------------------------------------------------------------------

def worker(args: argparse.Namespace) -> None:
    """Load the graph, run ``--warmup`` + ``--repeats`` forwards on the input, write the peer's JSON layout."""
    start = time.perf_counter()
    import torch

    from partwise.models.tfjs import load_graph_model

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    model = load_graph_model(args.model)
    meta = json.loads(Path(args.input).read_text())
    raw = np.fromfile(Path(args.input).parent / meta["data"], dtype=np.dtype(meta["dtype"]).newbyteorder("<"))
    x = torch.from_numpy(raw.astype(meta["dtype"]).reshape(meta["shape"]))
    load_ms = (time.perf_counter() - start) * 1000
    wall, cpu, out = [], [], None
    for i in range(args.warmup + args.repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        out = model(x)
        c1, w1 = time.process_time(), time.perf_counter()
        if i >= args.warmup:
            wall.append((w1 - w0) * 1000)
            cpu.append((c1 - c0) * 1000)
    import resource

    result = {"runtime": "partwise", "torch_version": torch.__version__, "threads": torch.get_num_threads(),
              "load_ms": load_ms, "wall_ms": wall, "cpu_ms": cpu,
              "max_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "vm_hwm_kib": vm_hwm_kib(),
              "outputs": []}
    outp = Path(args.out)
    for i, (name, t) in enumerate(out.items()):
        values = t.detach().to(torch.float32).contiguous().numpy()
        file = f"{outp.name}.{i}.bin"
        values.astype("<f4").tofile(outp.parent / file)
        result["outputs"].append({"name": name, "shape": list(values.shape), "sum": float(values.sum(dtype=np.float64)),
                                  "first": values.ravel()[:8].tolist(), "file": file})
    outp.write_text(json.dumps(result))


# ----------------------------------------------------------------------------------------------------------------
# the peer (node + @tensorflow/tfjs-backend-wasm)
# ----------------------------------------------------------------------------------------------------------------

def _installed_version(peer_dir: Path, package: str) -> str | None:
    try:
        return json.loads((peer_dir / "node_modules" / package / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


def install_peer(peer_dir: Path) -> dict:
    """``{"ok", "seconds", "note", "node"}``: the peer's packages in ``peer_dir`` (installed, or reused)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        return {"ok": False, "seconds": 0.0, "note": "node/npm not found on PATH", "node": None}
    node_version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
    names = [p.rsplit("@", 1)[0] for p in PEER_PACKAGES]
    if all(_installed_version(peer_dir, n) == TFJS_VERSION for n in names):
        return {"ok": True, "seconds": 0.0, "note": f"reused {peer_dir}", "node": node_version}
    peer_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    try:
        proc = subprocess.run([npm, "install", "--no-save", "--no-audit", "--no-fund", "--prefix", str(peer_dir),
                               *PEER_PACKAGES], capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired:
        return {"ok": False, "seconds": time.perf_counter() - start, "note": "npm install timed out (900 s)",
                "node": node_version}
    seconds = time.perf_counter() - start
    if proc.returncode != 0 or not all(_installed_version(peer_dir, n) == TFJS_VERSION for n in names):
        last = (proc.stderr.strip().splitlines() or proc.stdout.strip().splitlines() or ["?"])[-1]
        return {"ok": False, "seconds": seconds, "note": f"npm install failed (rc {proc.returncode}): {last[:200]}",
                "node": node_version}
    return {"ok": True, "seconds": seconds, "note": f"installed into {peer_dir}", "node": node_version}


# ----------------------------------------------------------------------------------------------------------------
# inputs, processes, comparison
# ----------------------------------------------------------------------------------------------------------------

def read_frame(index: int) -> np.ndarray:
    import av

    with av.open(str(VIDEO)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i == index:
                return frame.to_ndarray(format="rgb24")
    raise SystemExit(f"{VIDEO}: has no frame {index}")


def find_model(name: str, models_dir: Path) -> Path | None:
    candidate = models_dir / f"{name}.json"
    if candidate.is_file() and candidate.with_suffix(".bin").is_file():
        return candidate
    try:
        from partwise.models import weights

        return weights.resolve(name)[0]
    except Exception:  # noqa: BLE001 - any failure: the case is skipped with one line
        return None


def write_input(folder: Path, case: str, tensor, name: str) -> Path:
    array = tensor.numpy()
    dtype = {"int32": "int32", "float32": "float32"}[str(array.dtype)]
    data = folder / f"{case}.input.raw"
    array.astype(f"<{array.dtype.char}").tofile(data)
    spec = folder / f"{case}.input.json"
    spec.write_text(json.dumps({"name": name, "dtype": dtype, "shape": list(array.shape), "data": data.name}))
    return spec


def prepare(args: argparse.Namespace) -> None:
    """``--prepare FOLDER``: decode the frame, write each case's input, find the models -> ``FOLDER/cases.json``."""
    from partwise.models import centernet, movenet, weights

    folder = args.prepare
    models_dir = args.models_dir or weights.weights_dir() / "tfjs"
    rgb = read_frame(args.frame)
    height, width = rgb.shape[:2]
    cases = []
    for case in args.only or CASES:
        item: dict = {"case": case}
        cases.append(item)
        if case.startswith("multipose"):
            model = find_model("movenet-multipose", models_dir)
            size = 256 if case == "multipose-256" else None
            if size is None and movenet.native_size(height, width) != max(height, width):
                item["skip"] = f"the frame ({width}x{height}) padded square is not a multiple of 32"
                continue
            tensor, _ = movenet.preprocess(rgb, size)
            name = "input"
        else:
            model = find_model("centernet", models_dir)
            tensor = centernet.preprocess(rgb)
            name = "tower_0/images"
        if model is None:
            item["skip"] = (f"weights not found in {models_dir} nor through partwise's name resolution (run "
                            f"`partwise weights install centernet`, or pass --models-dir)")
            continue
        item["model"] = str(model)
        item["spec"] = str(write_input(folder, case, tensor, name))
        item["input"] = f"{str(tensor.dtype).replace('torch.', '')} {tensor.shape[1]}x{tensor.shape[2]}"
    (folder / "cases.json").write_text(json.dumps({"size": [width, height], "cases": cases}))


def run_child(cmd: list[str], out: Path, log: Path, env: dict) -> dict:
    """Run ``cmd`` to completion; its JSON result plus the whole-process wall seconds and this child's peak RSS."""
    start = time.perf_counter()
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if proc.returncode != 0 or not out.is_file():
        tail = log.read_text(errors="replace").strip().splitlines() or ["(no output)"]
        return {"error": f"rc {proc.returncode}: {tail[-1][:300]}"}
    result = json.loads(out.read_text())
    result["process_s"] = wall
    result["process_max_rss_kib"] = usage.ru_maxrss
    result["process_cpu_s"] = usage.ru_utime + usage.ru_stime
    return result


def read_outputs(result: dict, folder: Path) -> list[np.ndarray]:
    return [np.fromfile(folder / o["file"], dtype="<f4").reshape(o["shape"]) for o in result["outputs"]]


def compare(ours: dict, theirs: dict, folder: Path, signature: dict) -> tuple[dict, dict]:
    """Max abs difference per output (None: missing or another shape) and the peer's max abs value per output;
    the peer names outputs by signature key, partwise by node name."""
    by_key = {key: spec["name"].split(":")[0] for key, spec in (signature.get("outputs") or {}).items()}
    mine = {o["name"]: a for o, a in zip(ours["outputs"], read_outputs(ours, folder))}
    diffs, scales = {}, {}
    for o, a in zip(theirs["outputs"], read_outputs(theirs, folder)):
        name = by_key.get(o["name"], o["name"].split(":")[0])
        b = mine.get(name)
        if b is None or b.shape != a.shape:
            diffs[name] = None
        else:
            diffs[name] = float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0
            scales[name] = float(np.max(np.abs(a))) if a.size else 0.0
    return diffs, scales


def summary(results: list[dict]) -> dict:
    cpu = [v for r in results for v in r["cpu_ms"]]
    wall = [v for r in results for v in r["wall_ms"]]
    return {"cpu_ms": statistics.median(cpu), "wall_ms": statistics.median(wall),
            "process_s": statistics.median(r["process_s"] for r in results),
            "max_rss_mib": max(r["process_max_rss_kib"] for r in results) / 1024,
            "load_ms": statistics.median(r["load_ms"] for r in results)}


def bench_case(case: str, model: Path, spec: Path, folder: Path, args: argparse.Namespace, peer: dict) -> dict:
    env = dict(os.environ)
    signature = json.loads(model.read_text()).get("signature") or {}
    runs: dict[str, list[dict]] = {"partwise": [], "tfjs": []}
    errors: dict[str, str] = {}
    diffs = scales = None
    for r in range(args.rounds):
        for runtime in ("partwise", "tfjs"):
            if runtime in errors or (runtime == "tfjs" and not peer["ok"]):
                continue
            out = folder / f"{case}.{runtime}.{r}.json"
            if runtime == "partwise":
                cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--model", str(model)]
            else:
                cmd = ["node", str(PEER_SCRIPT), "--peer", str(args.peer_dir), "--backend", args.peer_backend,
                       "--model", str(model)]
            cmd += ["--input", str(spec), "--out", str(out), "--warmup", str(args.warmup),
                    "--repeats", str(args.repeats)]
            result = run_child(cmd, out, folder / f"{case}.{runtime}.{r}.log", env)
            if "error" in result:
                errors[runtime] = result["error"]
                print(f"  {case}: {runtime} failed: {result['error']}", flush=True)
                continue
            runs[runtime].append(result)
        if r == 0 and runs["partwise"] and runs["tfjs"]:
            diffs, scales = compare(runs["partwise"][0], runs["tfjs"][0], folder, signature)
    row: dict = {"case": case, "model": str(model), "errors": errors, "max_abs_diff": diffs,
                 "max_abs_value": scales}
    for runtime, results in runs.items():
        if results:
            row[runtime] = summary(results)
            row[runtime]["runs"] = [{k: v for k, v in res.items() if k != "outputs"} for res in results]
            row[runtime]["outputs"] = results[0]["outputs"]
    if "partwise" in row and "tfjs" in row:
        row["ratio_cpu"] = row["tfjs"]["cpu_ms"] / row["partwise"]["cpu_ms"]
        row["ratio_wall"] = row["tfjs"]["wall_ms"] / row["partwise"]["wall_ms"]
    return row


def print_table(rows: list[dict], peer_label: str) -> None:
    head = (f"{'case':<14} {'input':<18} {'partwise ms':>12} {peer_label + ' ms':>13} {'ratio':>6} "
            f"{'process s':>11} {'peak RSS MiB':>13} {'max|diff|':>9}")
    print(head)
    print("-" * len(head))

    def ms(s: dict | None) -> str:
        return f"{s['cpu_ms']:.0f} ({s['wall_ms']:.0f})" if s else "-"

    for row in rows:
        pw, tj = row.get("partwise"), row.get("tfjs")
        ratio = f"{row['ratio_cpu']:.2f}" if "ratio_cpu" in row else "-"
        proc = f"{pw['process_s']:.1f}/{tj['process_s']:.1f}" if pw and tj else (f"{pw['process_s']:.1f}/-" if pw
                                                                                  else "-")
        rss = f"{pw['max_rss_mib']:.0f}/{tj['max_rss_mib']:.0f}" if pw and tj else (f"{pw['max_rss_mib']:.0f}/-"
                                                                                   if pw else "-")
        diffs = row.get("max_abs_diff")
        diff = "-" if not diffs else ("shape?" if None in diffs.values() else f"{max(diffs.values()):.1e}")
        print(f"{row['case']:<14} {row['input']:<18} {ms(pw):>12} {ms(tj):>13} {ratio:>6} {proc:>11} {rss:>13} "
              f"{diff:>9}")
    print("ms: median process CPU per forward (wall in brackets); ratio: tfjs / partwise CPU (> 1: partwise "
          "faster);\nprocess s, peak RSS: whole child process, partwise/tfjs; max|diff|: largest over the outputs.")


# ----------------------------------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed forwards inside each process")
    parser.add_argument("--warmup", type=int, default=1, help="untimed forwards first, inside each process")
    parser.add_argument("--rounds", type=int, default=2, help="fresh processes per runtime and case (alternated)")
    parser.add_argument("--frame", type=int, default=100, help="frame of examples/real/vtest_0000_0149.mp4")
    parser.add_argument("--models-dir", type=Path, default=None,
                        help="folder with centernet.json/.bin (default: $PARTWISE_WEIGHTS/tfjs)")
    parser.add_argument("--peer-dir", type=Path, default=ROOT / "benchmarks" / ".peer",
                        help="scratch folder for the npm packages of the peer")
    parser.add_argument("--peer-backend", choices=("wasm", "cpu"), default="wasm",
                        help="TF.js backend of the peer (cpu: the pure-JS one, for when wasm cannot run)")
    parser.add_argument("--no-peer", action="store_true", help="time partwise alone")
    parser.add_argument("--only", choices=CASES, action="append", help="run only this case (repeatable)")
    parser.add_argument("--json", type=Path, help="save the results here")
    # worker mode (internal)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--prepare", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--input", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    if args.prepare:
        prepare(args)
        return
    args.peer_dir = args.peer_dir.resolve()
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}; "
          f"{args.rounds} process(es) per runtime and case, {args.warmup} warm-up + {args.repeats} timed forwards "
          f"each", flush=True)
    if args.no_peer:
        peer = {"ok": False, "seconds": 0.0, "note": "--no-peer", "node": None}
    else:
        print(f"peer: npm install {' '.join(PEER_PACKAGES)} into {args.peer_dir} ...", flush=True)
        peer = install_peer(args.peer_dir)
    if peer["ok"]:
        print(f"peer: {peer['note']} ({peer['seconds']:.1f} s), node {peer['node']}, backend {args.peer_backend}",
              flush=True)
    else:
        print(f"peer: not available ({peer['note']}); timing partwise alone", flush=True)

    rows = []
    with tempfile.TemporaryDirectory(prefix="partwise-real-") as tmp:
        folder = Path(tmp)
        # Decoding and preprocessing run in a child so that this process never imports torch: a child's
        # ru_maxrss starts from its parent's peak (the RSS high-water mark survives fork + exec on Linux).
        cmd = [sys.executable, str(Path(__file__).resolve()), "--prepare", str(folder), "--frame", str(args.frame)]
        if args.models_dir is not None:
            cmd += ["--models-dir", str(args.models_dir)]
        for case in args.only or ():
            cmd += ["--only", case]
        subprocess.run(cmd, check=True, cwd=ROOT)
        manifest = json.loads((folder / "cases.json").read_text())
        for item in manifest["cases"]:
            if item.get("skip"):
                print(f"  {item['case']}: {item['skip']}; skipped", flush=True)
                continue
            print(f"  {item['case']}: {item['input']} ...", flush=True)
            row = bench_case(item["case"], Path(item["model"]), Path(item["spec"]), folder, args, peer)
            row["input"] = item["input"]
            rows.append(row)
    tfjs_runs = [run for row in rows for run in row.get("tfjs", {}).get("runs", [])]
    if tfjs_runs:
        first = tfjs_runs[0]
        variant = f", {first['wasm_variant']}" if first.get("wasm_variant") else ""
        print(f"\npeer ran: tfjs {first['tfjs_version']}, backend {first['backend']}{variant}, "
              f"{first['threads']} thread(s), node {first['node']}, model.{first['execute']}")
    peer_label = f"tfjs-{args.peer_backend}"
    print()
    print_table(rows, peer_label)
    if args.json:
        args.json.write_text(json.dumps({
            "frame": {"video": str(VIDEO.relative_to(ROOT)), "index": args.frame, "size": manifest["size"]},
            "settings": {"repeats": args.repeats, "warmup": args.warmup, "rounds": args.rounds,
                         "omp_num_threads": os.environ["OMP_NUM_THREADS"], "cpus": os.cpu_count(),
                         "peer_backend": args.peer_backend},
            "peer": peer, "cases": rows}, indent=1))
        print(f"saved {args.json}")


if __name__ == "__main__":
    main()
