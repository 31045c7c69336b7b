"""``partwise run`` end to end: frames/s, split into decode, detect, pose, model and writing (annotated video,
thumbnail, Parquet/JSONL/CSV/JSON/HTML).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/run.py --real [--no-video]
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/run.py [--model CKPT] [--pose auto|mediapipe|none] [--no-video]
        [--detector] [--video-model]

``--real``: the real 15 s street clip ``examples/real/vtest_0000_0149.mp4`` (768x576, 10 fps, 3-9 pedestrians) with
the real default and nothing else: people and keypoints from MoveNet MultiPose at the frame's resolution (plus
CenterNet person boxes and SinglePose crops when they are installed), tracking, part boxes, kinematic states.
Otherwise a synthetic 30 s video with 3 people:

Without ``--model`` a randomly initialised model of ``configs/synth_st_activity2vec.yaml``'s architecture is timed
(weights do not change the cost). People come from the synthetic dense proposals (as AVA's), or with ``--detector``
from the shipped synthetic person detector (``synth-person-detector``, timed as "detect"); ``--video-model`` adds the
shipped synthetic video classifier (timed inside "model"). The baseline in the same
run is one sequential decode of every frame of the video (PyAV, no processing): the floor any per-frame tool that
reads the whole video (as the original Activity2Vec demo does) pays before doing any work.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="st_activity2vec checkpoint (default: random weights, synthetic config)")
    parser.add_argument("--real", action="store_true", help="the real street clip with the real default (MoveNet)")
    parser.add_argument("--pose", default="auto", choices=("auto", "movenet", "mediapipe", "none"))
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--no-video", action="store_true", help="do not time the annotated video")
    parser.add_argument("--detector", action="store_true", help="people from the shipped synthetic person detector")
    parser.add_argument("--video-model", action="store_true", help="also classify the video (shipped classifier)")
    args = parser.parse_args(argv)

    import torch

    from partwise.data import video
    from partwise.infer import pipeline
    from partwise.synth.generator import SynthConfig, generate

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.real:
            clip = ROOT / "examples" / "real" / "vtest_0000_0149.mp4"
            model, boxes = (Path(args.model) if args.model else None), None
        else:
            generate(tmp / "syn", SynthConfig(seed=0, videos=1, seconds=args.seconds, people=(3, 3), frames=False))
            (clip,) = sorted((tmp / "syn" / "videos").glob("*.mp4"))
            model = Path(args.model) if args.model else random_model(tmp / "model.pt")
            boxes = next((tmp / "syn" / "ava").glob("ava_dense_proposals_*.pkl"))
        info = video.probe(clip)

        t0 = time.perf_counter()
        decoded = sum(1 for _ in video.iter_frames(clip))
        baseline = time.perf_counter() - t0

        options = pipeline.RunOptions(model=str(model) if model else None,
                                      boxes=None if args.detector or boxes is None else str(boxes), pose=args.pose,
                                      video=not args.no_video, progress=False,
                                      detector="synth-person-detector" if args.detector else None,
                                      video_model="synth-video-classifier" if args.video_model else None)
        t0 = time.perf_counter()
        summary = pipeline.run(clip, tmp / "out", options, ava_csv=True, tps_json=True)
        total = time.perf_counter() - t0
        if summary.failed:
            print(summary.failed, file=sys.stderr)
            return 1
        import pyarrow.parquet as pq

        rows = pq.read_table(summary.merged["parquet"]).num_rows

    t = summary.timings
    other = max(0.0, total - t.decode - t.detect - t.pose - t.model - t.write)
    pose_used = t.pose > 0
    people = "pose (MoveNet)" if args.real else "detector" if args.detector else "proposals"
    print(f"video: {clip.name} {info.width}x{info.height}, {info.num_frames} frames at {info.fps:g} fps "
          f"({info.duration:.0f} s), {rows} person rows at 1 Hz keyframes; people from {people}; "
          f"pose {args.pose if pose_used else 'off'}; "
          f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}")
    print(f"{'stage':<10}{'seconds':>9}{'share':>8}")
    for name, sec in (("decode", t.decode), ("detect", t.detect), ("pose", t.pose), ("model", t.model), ("write", t.write),
                      ("other", other)):
        print(f"{name:<10}{sec:>9.2f}{sec / total:>8.1%}")
    print(f"{'total':<10}{total:>9.2f}")
    fps = info.num_frames / total
    base_fps = decoded / baseline
    print(f"end to end: {fps:.1f} video frames/s ({info.duration / total:.2f}x real time)")
    print(f"baseline, decode every frame only: {base_fps:.1f} frames/s; partwise run / baseline = {fps / base_fps:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
