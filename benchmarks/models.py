"""CPU timing of the partwise models against baselines run in the same process.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/models.py [--only ava_detector] [--repeats 3] [--rois 8]

``ava_detector``: forward time per clip of the AVA detector on SlowOnly R50 8x8 (1x3x8x256x256, ``--rois`` person
boxes) with partwise's vectorized RoIAlign, next to the same network whose RoIAlign is the straightforward
per-sample loop (:func:`partwise.ops.roi_align.roi_align_loop`); also the RoI stage alone. Prints the ratios.
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


# ---------------------------------------------------------------------------------------------------------------
# Activity2Vec per-image timing: to be added by the Activity2Vec owner. Add `bench_activity2vec(args) -> dict`
# (partwise per-image forward vs its baseline, same process) and register it in BENCHMARKS below.
# ---------------------------------------------------------------------------------------------------------------

BENCHMARKS: dict[str, Callable[[argparse.Namespace], dict]] = {
    "ava_detector": bench_ava_detector,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(BENCHMARKS), action="append")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rois", type=int, default=8)
    parser.add_argument("--size", type=int, default=256)
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
