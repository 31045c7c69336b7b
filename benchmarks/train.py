"""Training throughput on the synthetic AVA task: data loading alone vs the full training step, in samples/s.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/train.py [--data DIR] [--config configs/synth_ava_slowonly.yaml]
        [--batches 10] [--workers 0] [key=value ...]

Without ``--data`` a small synthetic dataset (6 videos of 6 s) is generated in a temporary folder. Timed in one run:

* loading, cold: the DataLoader alone on a fresh dataset (decoding JPEG frames, resizing, augmenting, collating);
* loading, cold, from the videos: the same, decoding ``videos/*.mp4`` instead of the JPEG frames (the baseline the
  frame cache and the JPEG layout are meant to beat);
* loading, warm: the same batches again with the decoded-frame cache filled;
* full step: loading (warm) + forward + loss + backward + optimizer step, as ``partwise train`` runs it.

The last line says whether loading is the bottleneck (its share of the full step's time).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

from torch.utils.data import DataLoader  # noqa: E402

from partwise.train.data import collate_clips  # noqa: E402
from partwise.train.engine import EpochSampler, build_optimizer  # noqa: E402
from partwise.train.tasks import load_task  # noqa: E402


def _loader(dataset, batch: int, workers: int, seed: int) -> DataLoader:
    return DataLoader(dataset, batch_size=batch, sampler=EpochSampler(len(dataset), seed), num_workers=workers,
                      collate_fn=collate_clips)


def time_loading(dataset, batch: int, batches: int, workers: int, seed: int) -> float:
    """Seconds to produce ``batches`` batches."""
    it = iter(_loader(dataset, batch, workers, seed))
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    return time.perf_counter() - start


def time_steps(runner, model, dataset, batch: int, batches: int, workers: int, seed: int) -> float:
    optimizer = build_optimizer(model.parameters(), runner.cfg.optim)
    model.train()
    it = iter(_loader(dataset, batch, workers, seed))
    start = time.perf_counter()
    for _ in range(batches):
        loss, _ = runner.loss_fn(model, next(it))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", help="synthetic dataset folder (default: generate one)")
    p.add_argument("--config", default=os.path.join(os.path.dirname(__file__), "..", "configs", "synth_ava_slowonly.yaml"))
    p.add_argument("--batches", type=int, default=10)
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("overrides", nargs="*")
    a = p.parse_args(argv)
    tmp = None
    root = a.data
    if root is None:
        from partwise.synth.generator import SynthConfig, generate

        tmp = tempfile.TemporaryDirectory()
        root = os.path.join(tmp.name, "synth")
        print("generating a synthetic dataset (6 videos x 6 s) ...", flush=True)
        generate(root, SynthConfig(seed=0, videos=6, seconds=6))
    runner = load_task(a.config, [f"data.root={root}", *a.overrides])
    batch, seed = runner.cfg.run.batch_size, runner.cfg.run.seed
    print(f"config {os.path.basename(a.config)}: batch {batch}, {a.batches} batches, workers {a.workers}, "
          f"clip {runner.cfg.data.clip_len}x{runner.cfg.data.frame_interval}, short side {runner.cfg.data.scale_range}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}")
    samples = batch * a.batches
    rows = []
    train_ds, _ = runner.datasets()
    rows.append(("loading, cold (JPEG frames)", time_loading(train_ds, batch, a.batches, a.workers, seed)))
    video_runner = load_task(a.config, [f"data.root={root}", "data.source=video", *a.overrides])
    video_ds, _ = video_runner.datasets()
    rows.append(("loading, cold (decoding the mp4 videos)", time_loading(video_ds, batch, a.batches, a.workers, seed)))
    # warm: same keyframes again in this process (workers=0 keeps the cache; with workers each has its own)
    rows.append(("loading, warm (frame cache)", time_loading(train_ds, batch, a.batches, 0, seed)))
    model = runner.build_model()
    rows.append(("full step (warm loading + fwd/bwd/update)", time_steps(runner, model, train_ds, batch, a.batches, 0, seed)))
    width = max(len(r[0]) for r in rows)
    for name, seconds in rows:
        print(f"{name:<{width}}  {samples / seconds:9.1f} samples/s  ({seconds:.2f} s)")
    cold, video, warm, step = (r[1] for r in rows)
    print(f"ratios: mp4 decoding / JPEG loading time = {video / cold:.2f}x; cold / warm loading = {cold / warm:.2f}x; "
          f"loading is {100 * warm / step:.0f}% of a full step (warm cache), {100 * cold / (step - warm + cold):.0f}% "
          f"with a cold cache -> {'loading-bound' if cold > (step - warm) else 'compute-bound'} on the first epoch")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
