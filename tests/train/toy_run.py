"""A toy training run used by the engine tests (run as a script, alone or under torchrun)."""
import argparse
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from partwise.train.engine import OptimConfig, RunConfig, ScheduleConfig, sample_rng, train  # noqa: E402


class NoisyRegression(torch.utils.data.Dataset):
    """y = x @ w_true; each sample gets augmentation noise from its own (seed, epoch, index) generator."""

    def __init__(self, n=64, seed=0, delay=0.0):
        g = np.random.default_rng(123)
        self.x = g.normal(size=(n, 8)).astype(np.float32)
        self.y = (self.x @ g.normal(size=(8, 2))).astype(np.float32)
        self.seed, self.delay = seed, delay

    def __len__(self):
        return len(self.x)

    def __getitem__(self, encoded):
        index, rng = sample_rng(self.seed, encoded, len(self))
        if self.delay:
            time.sleep(self.delay)
        noise = rng.normal(scale=0.1, size=8).astype(np.float32)
        return torch.from_numpy(self.x[index] + noise), torch.from_numpy(self.y[index])


def make_model(dropout: bool):
    torch.manual_seed(7)
    layers = [nn.Linear(8, 16), nn.ReLU()] + ([nn.Dropout(0.3)] if dropout else []) + [nn.Linear(16, 2)]
    return nn.Sequential(*layers)


def loss_fn(model, batch):
    x, y = batch
    return nn.functional.mse_loss(model(x), y), {}


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--every", type=int, default=4)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--dropout", action="store_true")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--delay", type=float, default=0.0)
    a = p.parse_args(argv)
    run = RunConfig(max_steps=a.steps, batch_size=a.batch, num_workers=a.workers, checkpoint_every=a.every,
                    seed=3, out_dir=a.out, grad_clip=1.0)
    result = train(make_model(a.dropout), NoisyRegression(delay=a.delay), loss_fn, run, OptimConfig(lr=0.05),
                   ScheduleConfig(name="cosine", warmup_steps=2), {"toy": True}, resume=a.resume, progress=False)
    if result.checkpoint is not None:
        print("final", result.step, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
