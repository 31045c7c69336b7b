"""``partwise run`` end to end: real-time factor, split into decode, detect, pose, tracking/states, model and writing
(annotated video, thumbnail, Parquet/JSONL/CSV/JSON/HTML), against a plain sequential decode of the same video.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/run.py --real [--upscale 1440] [--no-video] [--repeat 2] [--cores 1]
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/run.py [--model CKPT] [--pose auto|mediapipe|none] [--no-video]
        [--detector] [--video-model] [--repeat 2]

``--real``: the real 15 s street clip ``examples/real/vtest_0000_0149.mp4`` (768x576, 10 fps, 3-9 pedestrians) with
the real default and nothing else: people and keypoints from MoveNet MultiPose at the frame's resolution (plus
CenterNet person boxes and SinglePose crops when they are installed: set ``PARTWISE_WEIGHTS`` to an empty folder to
time the default a fresh install has), tracking, part boxes, kinematic states. ``--upscale WIDTH`` times the same
clip scaled up first (1440: 1440x1080), for HD footage.
Otherwise a synthetic 30 s video with 3 people: without ``--model`` a randomly initialised model of
``configs/synth_st_activity2vec.yaml``'s architecture is timed (weights do not change the cost). People come from
the synthetic dense proposals (as AVA's), or with ``--detector`` from the shipped synthetic person detector
(``synth-person-detector``, timed as "detect"); ``--video-model`` adds the shipped synthetic video classifier (timed
inside "model").

Both sides run as whole processes, alternating, ``--repeat`` times each; each prints wall seconds, CPU seconds
(user + system of the child) and peak RSS, and partwise its split by stage (the run's own timers; "other" is
start-up, model loading and what no timer covers). The peer is one sequential decode of every frame of the video to
RGB arrays (PyAV, no processing): the floor any per-frame tool that reads the whole video (as the original
Activity2Vec demo does) pays before doing any work. The real-time factor is the video's duration over partwise's
wall time (>= 1: real time). Writing overlaps inference in a background encoder thread, so with a second core free
the wall time can be below the CPU time; ``--cores 1`` pins both sides to one core, the honest one-core figure.
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

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
REAL_CLIP = ROOT / "examples" / "real" / "vtest_0000_0149.mp4"
STAGES = ("decode", "detect", "pose", "track", "model", "write")


def random_model(path: Path) -> Path:
    import torch
    import yaml

    from partwise.models.checkpoint import save_model
    from partwise.models.st_activity2vec import STActivity2Vec, STActivity2VecConfig

    cfg = yaml.safe_load((ROOT / "configs" / "synth_st_activity2vec.yaml").read_text())
    torch.manual_seed(0)
    model = STActivity2Vec(STActivity2VecConfig.from_dict(cfg["model"])).eval()
    save_model(model, path, extra={"data": cfg["data"]})
    return path


def prepare_synthetic(tmp: Path, args) -> tuple[Path, Path | None, Path | None]:
    """The synthetic video, its model and its proposals (``--real`` off)."""
    from partwise.synth.generator import SynthConfig, generate

    generate(tmp / "syn", SynthConfig(seed=0, videos=1, seconds=args.seconds, people=(3, 3), frames=False))
    (clip,) = sorted((tmp / "syn" / "videos").glob("*.mp4"))
    model = Path(args.model) if args.model else random_model(tmp / "model.pt")
    boxes = next((tmp / "syn" / "ava").glob("ava_dense_proposals_*.pkl"))
    return clip, model, boxes


def upscaled(source: Path, width: int, out: Path) -> Path:
    """``source`` scaled to ``width`` pixels wide (height in proportion, even), re-encoded with x264 (crf 18), the
    frame rate and frame count kept."""
    import av

    from partwise.data import video

    info = video.probe(source)
    height = int(round(info.height * width / info.width / 2)) * 2

    def frames():
        for _, rgb in video.iter_frames(source):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            yield frame.reformat(width=width, height=height, interpolation="BICUBIC").to_ndarray(format="rgb24")

    video.write_video(out, frames(), info.fps)
    return out


def child_partwise(spec: dict) -> dict:
    """One ``partwise run`` in this process: its timings as a dict."""
    import torch

    from partwise.infer import pipeline

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    options = pipeline.RunOptions(model=spec["model"], boxes=spec["boxes"], pose=spec["pose"], video=spec["video"],
                                  progress=False, detector=spec["detector"], video_model=spec["video_model"])
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        summary = pipeline.run(spec["clip"], Path(out) / "run", options, ava_csv=True, tps_json=True)
        total = time.perf_counter() - t0
        if summary.failed:
            raise SystemExit(f"partwise run failed: {summary.failed}")
        import pyarrow.parquet as pq

        rows = pq.read_table(summary.merged["parquet"]).num_rows
    t = summary.timings
    pose = summary.metadata.get("sources", {}).get("pose") or []
    names = [d.get("name") or d.get("spec") for d in pose] if isinstance(pose, list) else [str(pose)]
    return {"total": total, "rows": rows, "sources": names,
            **{k: float(getattr(t, k, 0.0)) for k in STAGES}}


def child_decode(spec: dict) -> dict:
    """The peer: every frame decoded to an RGB array, in order, nothing else."""
    import av

    t0 = time.perf_counter()
    count = 0
    with av.open(spec["clip"]) as container:
        stream = container.streams.video[0]
        stream.thread_count = 1
        for frame in container.decode(stream):
            frame.to_ndarray(format="rgb24")
            count += 1
    return {"total": time.perf_counter() - t0, "frames": count}


def run_child(kind: str, spec: dict, cpus: set[int] | None = None) -> dict:
    """``kind`` in a fresh process (pinned to ``cpus`` when given): its report plus wall, CPU and peak RSS measured
    from outside."""
    t0 = time.perf_counter()
    pin = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
    proc = subprocess.Popen([sys.executable, __file__, "--child", kind, json.dumps(spec)], stdout=subprocess.PIPE,
                            env=os.environ.copy(), preexec_fn=pin)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    out = proc.stdout.read().decode()
    proc.stdout.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{kind} child failed (exit {proc.returncode})")
    report = json.loads(out.strip().splitlines()[-1])
    report.update(wall=wall, cpu=usage.ru_utime + usage.ru_stime, rss_mb=usage.ru_maxrss / 1024)
    return report


def main(argv: list[str] | None = None) -> int:
    if argv is None and len(sys.argv) == 4 and sys.argv[1] == "--child":
        spec = json.loads(sys.argv[3])
        report = child_partwise(spec) if sys.argv[2] == "partwise" else child_decode(spec)
        print(json.dumps(report))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="st_activity2vec checkpoint (default: random weights, synthetic config)")
    parser.add_argument("--real", action="store_true", help="the real street clip with the real default (MoveNet)")
    parser.add_argument("--upscale", type=int, default=None, metavar="WIDTH",
                        help="with --real: the clip scaled up to this width first (bicubic, H.264), e.g. 1440 for "
                             "1440x1080: how the real default copes with HD footage")
    parser.add_argument("--pose", default="auto", choices=("auto", "movenet", "mediapipe", "none"))
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--no-video", action="store_true", help="do not time the annotated video")
    parser.add_argument("--detector", action="store_true", help="people from the shipped synthetic person detector")
    parser.add_argument("--video-model", action="store_true", help="also classify the video (shipped classifier)")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each side, alternating (default 2)")
    parser.add_argument("--cores", type=int, default=None,
                        help="pin both sides to this many cores (1: the one-core real-time figure, where the "
                             "background encoder cannot overlap inference); default: every core allowed")
    args = parser.parse_args(argv)
    cpus = None
    if args.cores is not None:
        allowed = sorted(os.sched_getaffinity(0))
        if not 1 <= args.cores <= len(allowed):
            parser.error(f"--cores must be 1..{len(allowed)}")
        cpus = set(allowed[:args.cores])

    from partwise.data import video

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.real:
            clip, model, boxes = REAL_CLIP, (Path(args.model) if args.model else None), None
            if args.upscale:
                clip = upscaled(REAL_CLIP, args.upscale, tmp / f"{REAL_CLIP.stem}_{args.upscale}.mp4")
        else:
            clip, model, boxes = prepare_synthetic(tmp, args)
        info = video.probe(clip)
        spec = {"clip": str(clip), "model": str(model) if model else None,
                "boxes": None if args.detector or boxes is None else str(boxes), "pose": args.pose,
                "video": not args.no_video, "detector": "synth-person-detector" if args.detector else None,
                "video_model": "synth-video-classifier" if args.video_model else None}
        runs: dict[str, list[dict]] = {"partwise": [], "decode": []}
        for _ in range(max(1, args.repeat)):
            for kind in ("decode", "partwise"):
                runs[kind].append(run_child(kind, spec, cpus))

    best = min(runs["partwise"], key=lambda r: r["wall"])
    peer = min(runs["decode"], key=lambda r: r["wall"])
    people = "pose (MoveNet)" if args.real else "detector" if args.detector else "proposals"
    print(f"video: {clip.name} {info.width}x{info.height}, {info.num_frames} frames at {info.fps:g} fps "
          f"({info.duration:.1f} s), {best['rows']} person rows at 1 Hz keyframes; people from {people}; pose "
          f"sources {best.get('sources')}; annotated video {'off' if args.no_video else 'on'}; "
          f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}; PARTWISE_WEIGHTS={os.environ.get('PARTWISE_WEIGHTS')}; "
          f"cores {len(cpus) if cpus else len(os.sched_getaffinity(0))}{' (pinned)' if cpus else ''}; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"partwise run, best of {len(runs['partwise'])} (by wall), stages by the run's own timers:")
    print(f"{'stage':<10}{'seconds':>9}{'share':>8}")
    total = best["total"]
    other = max(0.0, best["wall"] - sum(best[k] for k in STAGES))
    for name in STAGES:
        print(f"{name:<10}{best[name]:>9.2f}{best[name] / best['wall']:>8.1%}")
    print(f"{'other':<10}{other:>9.2f}{other / best['wall']:>8.1%}   (start-up, loading, merge timers aside)")
    print(f"{'process':<10}{best['wall']:>9.2f}   wall; CPU {best['cpu']:.2f} s; peak RSS {best['rss_mb']:.0f} MiB; "
          f"run() itself {total:.2f} s")
    for kind in ("partwise", "decode"):
        print(f"  {kind:<9} wall " + ", ".join(f"{r['wall']:.2f}" for r in runs[kind])
              + "  CPU " + ", ".join(f"{r['cpu']:.2f}" for r in runs[kind]))
    print(f"end to end: {info.num_frames / best['wall']:.1f} video frames/s = {info.duration / best['wall']:.2f}x real "
          f"time (wall); {info.duration / best['cpu']:.2f}x on CPU time")
    print(f"peer, plain sequential decode (PyAV, rgb24): {peer['wall']:.2f} s wall, {peer['cpu']:.2f} s CPU, peak RSS "
          f"{peer['rss_mb']:.0f} MiB; partwise / peer = {best['wall'] / peer['wall']:.1f}x wall, "
          f"{best['cpu'] / peer['cpu']:.1f}x CPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
