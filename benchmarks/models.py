"""CPU timing of the partwise models against baselines run in the same process.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/models.py [--only ava_detector] [--repeats 3] [--rois 8]

``ava_detector``: forward time per clip of the AVA detector on SlowOnly R50 8x8 (1x3x8x256x256, ``--rois`` person
boxes) with partwise's vectorized RoIAlign, next to the same network whose RoIAlign is the straightforward
per-sample loop (:func:`partwise.ops.roi_align.roi_align_loop`); also the RoI stage alone.
``activity2vec``: forward time per 640x480 image with ``--people`` persons (each with 10 part boxes from the keypoint
rule and a skeleton map), with the batched affine RoI crop, next to the same network cropping one RoI per call.
Prints the ratios.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Callable

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

from partwise.models import create_model  # noqa: E402
from partwise.models import ava_detector  # noqa: E402
from partwise.ops import roi_align  # noqa: E402
from partwise.models.activity2vec import crop_rois_affine as _CROP_ONE  # noqa: E402
from partwise.ops.roi_align import roi_align_loop  # noqa: E402


def timed(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``fn`` over ``repeats`` runs, after one warm-up run."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def person_rois(count: int, size: int, seed: int = 0) -> torch.Tensor:
    """``count`` plausible person boxes (``[0, x1, y1, x2, y2]`` pixels) in a ``size`` x ``size`` frame."""
    gen = torch.Generator().manual_seed(seed)
    wh = torch.rand(count, 2, generator=gen) * torch.tensor([0.3, 0.5]) * size + torch.tensor([0.1, 0.3]) * size
    xy = torch.rand(count, 2, generator=gen) * (size - wh)
    return torch.cat([torch.zeros(count, 1), xy, xy + wh], dim=1)


def bench_ava_detector(args: argparse.Namespace) -> dict:
    torch.manual_seed(0)
    model = create_model("slowonly_r50_8x8").eval()
    clip = torch.randn(1, 3, 8, args.size, args.size)
    rois = person_rois(args.rois, args.size)
    with torch.no_grad():
        features = model.backbone(clip)
        frame = features.mean(dim=2)

        def forward() -> torch.Tensor:
            return model(clip, rois)

        roi_fast = timed(lambda: roi_align(frame, rois, 8, 1 / 16, 0, True), args.repeats)
        roi_loop = timed(lambda: roi_align_loop(frame, rois, 8, 1 / 16, 0, True), args.repeats)
        torch.testing.assert_close(roi_align(frame, rois, 8, 1 / 16, 0, True),
                                   roi_align_loop(frame, rois, 8, 1 / 16, 0, True), atol=1e-4, rtol=1e-4)
        # Interleave the two variants so that load from other processes hits both alike.
        original = ava_detector.roi_align
        fast_times, loop_times = [], []
        try:
            for i in range(args.repeats + 1):
                for impl, times in ((original, fast_times), (roi_align_loop, loop_times)):
                    ava_detector.roi_align = impl
                    start = time.perf_counter()
                    forward()
                    if i:  # the first round is the warm-up
                        times.append(time.perf_counter() - start)
        finally:
            ava_detector.roi_align = original
        full_fast, full_loop = statistics.median(fast_times), statistics.median(loop_times)
    return {
        "setting": f"SlowOnly R50 8x8, clip 1x3x8x{args.size}x{args.size}, {args.rois} RoIs, "
                   f"threads={torch.get_num_threads()}",
        "forward_s_per_clip_partwise": full_fast,
        "forward_s_per_clip_loop_roialign": full_loop,
        "forward_ratio": full_loop / full_fast,
        "roialign_s_partwise": roi_fast,
        "roialign_s_loop": roi_loop,
        "roialign_ratio": roi_loop / roi_fast,
    }


def _person_inputs(people: int, width: int, height: int, seed: int = 0):
    """Human RoIs, part RoIs (10 per person, by the Activity2Vec keypoint rule) and skeleton maps for ``people``
    standing figures placed at random in a ``width`` x ``height`` image."""
    import numpy as np

    from partwise.models.pose_parts import part_boxes_from_keypoints, skeleton_map

    # a standing COCO-17 figure in a unit box (x right, y down)
    template = np.array([[.5, .1], [.46, .08], [.54, .08], [.42, .1], [.58, .1], [.35, .22], [.65, .22], [.3, .4],
                         [.7, .4], [.28, .55], [.72, .55], [.4, .55], [.6, .55], [.4, .75], [.6, .75], [.4, .95],
                         [.6, .95]])
    rng = np.random.default_rng(seed)
    humans, keypoints = [], []
    for _ in range(people):
        w, h = rng.uniform(0.12, 0.25) * width, rng.uniform(0.4, 0.7) * height
        x, y = rng.uniform(0, width - w), rng.uniform(0, height - h)
        humans.append([x, y, x + w, y + h])
        keypoints.append(np.concatenate([template * [w, h] + [x, y], np.ones((17, 1))], axis=1))
    humans, keypoints = np.array(humans), np.array(keypoints)
    parts = part_boxes_from_keypoints(keypoints, humans, (width, height))
    skeletons = np.stack([skeleton_map(k, (width, height)) for k in keypoints])[:, None]
    human_rois = torch.cat([torch.zeros(people, 1), torch.from_numpy(humans).float()], dim=1)
    part_rois = torch.cat([torch.zeros(people, 10, 1), torch.from_numpy(parts).float()], dim=2)
    return human_rois, part_rois, torch.from_numpy(skeletons)


def _crop_loop(features: torch.Tensor, rois: torch.Tensor, size: int, spatial_scale: float) -> torch.Tensor:
    """The baseline: the same affine crop, one RoI per call."""
    return torch.cat([_CROP_ONE(features, rois[i:i + 1], size, spatial_scale) for i in range(rois.shape[0])])


def bench_activity2vec(args: argparse.Namespace) -> dict:
    from partwise.models import activity2vec

    torch.manual_seed(0)
    model = create_model("activity2vec_res50").eval()
    width, height = 640, 480
    image = torch.randn(1, 3, height, width) * 50
    human, parts, skeletons = _person_inputs(args.people, width, height)
    start = time.perf_counter()
    _person_inputs(args.people, width, height)
    prep = time.perf_counter() - start
    original = activity2vec.crop_rois_affine
    fast_times, loop_times = [], []
    with torch.no_grad():
        reference = model(image, human, parts, skeletons)["f_pasta"]
        try:
            for i in range(args.repeats + 1):
                for impl, times in ((original, fast_times), (_crop_loop, loop_times)):
                    activity2vec.crop_rois_affine = impl
                    start = time.perf_counter()
                    out = model(image, human, parts, skeletons)["f_pasta"]
                    if i:
                        times.append(time.perf_counter() - start)
                    torch.testing.assert_close(out, reference, atol=1e-4, rtol=1e-4)
        finally:
            activity2vec.crop_rois_affine = original
    fast, loop = statistics.median(fast_times), statistics.median(loop_times)
    trunk_map = torch.randn(1, 1024, height // 16, width // 16)
    all_rois = torch.cat([human, parts.reshape(-1, 5)])
    crop_fast = timed(lambda: original(trunk_map, all_rois, 7, 1 / 16), args.repeats + 4)
    crop_loop = timed(lambda: _crop_loop(trunk_map, all_rois, 7, 1 / 16), args.repeats + 4)
    return {
        "setting": f"Activity2Vec pasta_res50, image 1x3x{height}x{width}, {args.people} people (55 RoIs), "
                   f"threads={torch.get_num_threads()}",
        "forward_s_per_image_partwise": fast,
        "forward_s_per_image_loop_crops": loop,
        "forward_ratio": loop / fast,
        "crop_stage_s_partwise": crop_fast,
        "crop_stage_s_loop": crop_loop,
        "crop_stage_ratio": crop_loop / crop_fast,
        "part_boxes_and_skeletons_s": prep,
    }


BENCHMARKS: dict[str, Callable[[argparse.Namespace], dict]] = {
    "ava_detector": bench_ava_detector,
    "activity2vec": bench_activity2vec,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(BENCHMARKS), action="append")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rois", type=int, default=8)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--people", type=int, default=5, help="people per image (activity2vec)")
    args = parser.parse_args(argv)
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    for name in args.only or BENCHMARKS:
        result = BENCHMARKS[name](args)
        print(f"[{name}] {result.pop('setting')}")
        for key, value in result.items():
            print(f"  {key:<34} {value:10.4f}{'x' if key.endswith('ratio') else ' s'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
