"""Video decoding: partwise (``partwise.data.video``) vs decord 0.6 (the real peer), as whole processes.

Peer: decord from PyPI, installed on first use into the git-ignored scratch environment ``benchmarks/.peer-py``
(``python3 -m venv`` + ``pip install "numpy<2" decord``), never into partwise's requirements. When it cannot be
installed the benchmark says so and times partwise alone.

Videos: a generated H.264 clip like real footage (``--seconds`` of ``--size`` at 30 fps, x264 ``veryfast`` with
B-frames, keyframe interval ``--gop``; panning texture, moving shapes and sensor noise; cached in ``--cache``) and
``examples/real/vtest_0000_0149.mp4`` (768x576, 10 fps).

Tasks, each a fresh process per run, runs alternating between the two readers (``--rounds`` each):

* ``full``: decode every frame in order to an RGB array (partwise ``iter_frames``; decord ``VideoReader.next``);
* ``seek``: ``--seeks`` single frames at seeded random indices, one request each (partwise ``read_frames(path,
  [i])``, which keeps the file open between calls, and ``VideoReader.read_frames`` on an explicit reader;
  decord ``vr[i]`` on one ``VideoReader``, its fast path);
* ``clip``: ``--clips`` AVA-style clips around seeded random centre frames, half 8x8 (``clip_around(c, 8, 8, n)``)
  and half 32x2 (SlowFast's), one request each (partwise ``read_frames(path, indices)``; decord
  ``vr.get_batch(indices)`` on one open ``VideoReader``).

Printed per task: CPU s (the child's user+sys from ``os.wait4``), wall s, the child's peak RSS (MiB, its own
``VmHWM``: ``ru_maxrss`` would include the parent's size at fork), each the
median over rounds, and the ratio decord/partwise (above 1: partwise is faster). Before timing, one run of each
dumps the frames it returned (every frame of the seek task, the first requests' of the others) and the script
reports the max abs difference, and compares a checksum of a pixel grid of every frame every request returned.
Both convert YUV to RGB with FFmpeg's swscale (decord through a filter graph), so a difference would mean other
frames or another conversion; on these files there is none.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/video.py [--seconds 120] [--size 640x360] [--gop 250]
        [--rounds 3] [--seeks 40] [--clips 16] [--decord-threads 1] [--only full,seek,clip] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from peak_rss import vm_hwm_kib  # noqa: E402 (benchmarks/peak_rss.py, beside this script)

ROOT = Path(__file__).resolve().parent.parent
PEER_DIR = ROOT / "benchmarks" / ".peer-py"
REAL_VIDEO = ROOT / "examples" / "real" / "vtest_0000_0149.mp4"
DUMP_REQUESTS = 4  # requests whose frames the check compares in full (every one in the seek task)


# ----------------------------------------------------------------------------------------------------------------
# children (run in a fresh interpreter: partwise's venv, or the peer's)
# ----------------------------------------------------------------------------------------------------------------


def _clip_indices(center: int, clip_len: int, interval: int, n: int) -> np.ndarray:
    # partwise.data.video.clip_around, written out so the decord child does not import partwise.
    return np.clip(center + (np.arange(clip_len) - clip_len // 2) * interval, 0, n - 1)


def child(args) -> None:
    plan = json.loads(Path(args.plan).read_text())
    task, path, n = plan["task"], plan["video"], plan["num_frames"]
    dumped: list[np.ndarray] = []
    checksum = 0

    def keep(frames: np.ndarray) -> None:
        nonlocal checksum
        checksum += int(frames[..., ::97, ::89, :].sum())  # touch the result so nothing is skipped
        if args.dump and (task == "seek" or len(dumped) < DUMP_REQUESTS):
            dumped.append(np.array(frames))

    if args.reader == "decord":
        import decord

        vr = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=args.decord_threads)
        assert len(vr) == n, (len(vr), n)
        if task == "full":
            for _ in range(n):
                keep(vr.next().asnumpy()[None])
        elif task == "seek":
            for i in plan["indices"]:
                keep(vr[int(i)].asnumpy()[None])
        else:
            for c, clip_len, interval in plan["clips"]:
                keep(vr.get_batch(_clip_indices(c, clip_len, interval, n).tolist()).asnumpy())
    else:
        from partwise.data import video as V

        if task == "full":
            for _, frame in V.iter_frames(path):
                keep(frame[None])
        elif args.reader == "partwise-reader":
            with V.VideoReader(path) as reader:
                if task == "seek":
                    for i in plan["indices"]:
                        keep(reader.read_frames([int(i)]))
                else:
                    for c, clip_len, interval in plan["clips"]:
                        keep(reader.read_frames(V.clip_around(c, clip_len, interval, n)))
        elif task == "seek":
            for i in plan["indices"]:
                keep(V.read_frames(path, [int(i)]))
        else:
            for c, clip_len, interval in plan["clips"]:
                keep(V.read_frames(path, V.clip_around(c, clip_len, interval, n)))
    if args.dump:
        np.save(args.dump, np.concatenate(dumped))
    print(checksum, _peak_rss_kib())


def _peak_rss_kib() -> int:
    """This process's peak resident size: VmHWM, else ru_maxrss (which starts from the parent's size at fork)."""
    peak = vm_hwm_kib()
    if peak is not None:
        return peak
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


# ----------------------------------------------------------------------------------------------------------------
# the parent
# ----------------------------------------------------------------------------------------------------------------


def ensure_peer() -> Path | None:
    """The peer's interpreter, installing decord into ``benchmarks/.peer-py`` when missing; None if it cannot."""
    python = PEER_DIR / "bin" / "python"
    probe = [str(python), "-c", "import decord"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    print(f"peer: decord is not installed; installing it into {PEER_DIR} (python3 -m venv; pip install "
          f"'numpy<2' decord) ...", flush=True)
    try:
        subprocess.run(["python3", "-m", "venv", str(PEER_DIR)], check=True, capture_output=True)
        subprocess.run([str(PEER_DIR / "bin" / "pip"), "install", "-q", "numpy<2", "decord"], check=True,
                       capture_output=True, timeout=900)
        subprocess.run(probe, check=True, capture_output=True)
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        print(f"peer: decord could not be installed ({type(exc).__name__}: "
              f"{detail.decode(errors='replace').strip().splitlines()[-1:] or exc}); the peer is missing, partwise "
              f"is timed alone", flush=True)
        return None
    return python


def make_video(path: Path, seconds: float, width: int, height: int, gop: int, seed: int = 0) -> None:
    """H.264 like a camera's: a panning texture, moving shapes and per-frame noise, x264 veryfast, B-frames."""
    import av

    rng = np.random.default_rng(seed)
    fps = 30
    coarse = rng.integers(0, 256, (height // 8 + 8, width // 8 + 40, 3), dtype=np.uint8)
    texture = np.repeat(np.repeat(coarse, 8, 0), 8, 1).astype(np.int16)
    noise = [rng.integers(-6, 7, (height, width, 3), dtype=np.int16) for _ in range(7)]
    shapes = [(rng.integers(0, width), rng.integers(0, height), rng.integers(20, 90), rng.integers(20, 90),
               rng.uniform(-4, 4), rng.uniform(-3, 3), rng.integers(0, 256, 3)) for _ in range(6)]
    tmp = path.with_suffix(".tmp.mp4")
    with av.open(str(tmp), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.gop_size = gop
        stream.options = {"preset": "veryfast", "crf": "23", "keyint_min": str(gop), "sc_threshold": "0"}
        for t in range(int(seconds * fps)):
            shift = (t // 2) % 300
            frame = texture[:height, shift // 8 * 8 % (texture.shape[1] - width):][:, :width].copy()
            for x, y, w, h, vx, vy, colour in shapes:
                cx, cy = int(x + vx * t) % width, int(y + vy * t) % height
                frame[cy:cy + h, cx:cx + w] = colour
            frame += noise[t % len(noise)]
            image = av.VideoFrame.from_ndarray(np.clip(frame, 0, 255).astype(np.uint8), format="rgb24")
            for packet in stream.encode(image.reformat(format="yuv420p")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    os.replace(tmp, path)


def run_child(python: Path, reader: str, plan_file: Path, decord_threads: int, dump: Path | None = None) -> dict:
    cmd = [str(python), str(Path(__file__).resolve()), "--child", "--reader", reader, "--plan", str(plan_file),
           "--decord-threads", str(decord_threads)]
    if dump is not None:
        cmd += ["--dump", str(dump)]
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"), PYTHONPATH=str(ROOT))
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=ROOT)
        # os.wait4 gives this child's own resource usage (RUSAGE_CHILDREN would mix all children's peaks).
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode:
        raise SystemExit(f"{reader} child failed ({proc.returncode}): {stderr.decode(errors='replace').strip()[-2000:]}")
    checksum, peak_kib = (int(v) for v in stdout.split()[-2:])
    return {"cpu": usage.ru_utime + usage.ru_stime, "wall": wall, "rss_mib": peak_kib / 1024, "checksum": checksum}


def plan_for(task: str, video: Path, n: int, args, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    plan = {"task": task, "video": str(video), "num_frames": n}
    if task == "seek":
        plan["indices"] = rng.integers(0, n, args.seeks).tolist()
    elif task == "clip":
        shapes = [(8, 8), (32, 2)]
        plan["clips"] = [(int(c), *shapes[k % 2]) for k, c in enumerate(rng.integers(0, n, args.clips))]
    return plan


def median(values: list[float]) -> float:
    return float(np.median(values))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--reader", default="partwise", help=argparse.SUPPRESS)
    parser.add_argument("--plan", help=argparse.SUPPRESS)
    parser.add_argument("--dump", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=120.0, help="length of the generated video")
    parser.add_argument("--size", default="640x360", help="WxH of the generated video")
    parser.add_argument("--gop", type=int, default=250, help="keyframe interval of the generated video")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each reader per task (alternating)")
    parser.add_argument("--seeks", type=int, default=40, help="random single-frame requests in the seek task")
    parser.add_argument("--clips", type=int, default=16, help="random clips in the clip task (half 8x8, half 32x2)")
    parser.add_argument("--decord-threads", type=int, default=1,
                        help="decord's VideoReader num_threads (0: FFmpeg's automatic count); partwise decodes on one")
    parser.add_argument("--only", default="full,seek,clip", help="comma-separated tasks")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "partwise-bench-video",
                        help="folder for the generated video (reused when present)")
    parser.add_argument("--no-real", action="store_true", help="skip examples/real/vtest_0000_0149.mp4")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args(argv)
    if args.child:
        child(args)
        return 0

    width, height = (int(v) for v in args.size.lower().split("x"))
    args.cache.mkdir(parents=True, exist_ok=True)
    generated = args.cache / f"h264_{width}x{height}_{args.seconds:g}s_gop{args.gop}.mp4"
    if not generated.exists():
        print(f"encoding {generated} ({args.seconds:g} s, {width}x{height}, GOP {args.gop}) ...", flush=True)
        t0 = time.perf_counter()
        make_video(generated, args.seconds, width, height, args.gop)
        print(f"  {time.perf_counter() - t0:.1f} s", flush=True)
    videos = [generated] + ([] if args.no_real or not REAL_VIDEO.exists() else [REAL_VIDEO])

    peer = ensure_peer()
    ours = Path(sys.executable)
    import platform

    from partwise.data import video as V

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}; OMP_NUM_THREADS="
          f"{os.environ.get('OMP_NUM_THREADS', '(unset)')}; decord num_threads={args.decord_threads}")
    results = []
    with tempfile.TemporaryDirectory(prefix="partwise-bench-video-") as tmp:
        tmp = Path(tmp)
        for video in videos:
            info = V.probe(video)
            print(f"\n{video.name}: {info.width}x{info.height}, {info.num_frames} frames at {info.fps:g} fps")
            for t_i, task in enumerate(args.only.split(",")):
                plan = plan_for(task, video, info.num_frames, args, seed=1000 + t_i)
                plan_file = tmp / f"{video.stem}_{task}.json"
                plan_file.write_text(json.dumps(plan))
                readers = [("partwise", ours)] + ([("partwise-reader", ours)] if task != "full" else [])
                if peer is not None:
                    readers.append(("decord", peer))
                # Same frames? (one untimed run each, first requests dumped)
                dumps, sums = {}, {}
                for name, python in readers:
                    dumps[name] = tmp / f"{video.stem}_{task}_{name}.npy"
                    sums[name] = run_child(python, name, plan_file, args.decord_threads, dump=dumps[name])["checksum"]
                same = all(value == sums["partwise"] for value in sums.values())
                print(f"  [{task}] pixel-grid checksum over every frame returned: "
                      + ("equal for all readers" if same else f"DIFFERS: {sums}"))
                base = np.load(dumps["partwise"]).astype(np.int16)
                for name in dumps:
                    if name == "partwise":
                        continue
                    other = np.load(dumps[name]).astype(np.int16)
                    if other.shape != base.shape:
                        print(f"  [{task}] {name}: frames of shape {other.shape}, partwise {base.shape}")
                        continue
                    diff = np.abs(other - base)
                    print(f"  [{task}] frames vs partwise ({base.shape[0]} frames): {name} max abs diff {int(diff.max())}, "
                          f"mean {diff.mean():.3f}")
                runs: dict[str, list[dict]] = {name: [] for name, _ in readers}
                for _ in range(args.rounds):
                    for name, python in readers:
                        runs[name].append(run_child(python, name, plan_file, args.decord_threads))
                row = {"video": video.name, "task": task}
                for name, _ in readers:
                    stats = {k: median([r[k] for r in runs[name]]) for k in ("cpu", "wall", "rss_mib")}
                    row[name] = stats
                    print(f"  {task:5s} {name:16s} CPU {stats['cpu']:7.2f} s   wall {stats['wall']:7.2f} s   "
                          f"peak RSS {stats['rss_mib']:6.0f} MiB")
                if peer is not None:
                    for name, _ in readers:
                        if name == "decord":
                            continue
                        cpu = row["decord"]["cpu"] / row[name]["cpu"]
                        wall = row["decord"]["wall"] / row[name]["wall"]
                        row[f"ratio_{name}"] = {"cpu": cpu, "wall": wall}
                        print(f"  {task:5s} decord/{name}: CPU {cpu:.2f}x, wall {wall:.2f}x  (>1: partwise faster)")
                else:
                    print(f"  {task:5s} decord: peer missing, skipped")
                results.append(row)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
