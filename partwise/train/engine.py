"""The training loop shared by every task: one process or ``torchrun`` (DDP), mixed precision, gradient
clipping, warm-up + step/cosine/cosine-with-restarts schedules, atomic checkpoints, exact resume, CSV + PNG logs.

Mixed precision (``run.amp``): ``true`` (default) = float16 autocast + GradScaler on GPU, plain fp32 on CPU;
``fp16`` = float16 autocast + GradScaler on any device (CPU included, for tests); ``bf16`` = bfloat16 autocast, no
scaler (bfloat16 has float32's exponent range), on any device; ``false``/``off`` = fp32. The scaler's state is part
of the checkpoint. Gradient clipping (``run.grad_clip``, ``run.clip_mode``): ``global`` rescales all gradients by
``min(1, c / (||g||_2 + 1e-6))`` over every parameter together (``torch.nn.utils.clip_grad_norm_``);
``per_tensor`` rescales each parameter's gradient on its own by ``c / max(||g_p||_2, c)``, as TF's
``tf.clip_by_norm`` applied to every variable (TIN's solver, ``tin_hoi.md`` §1.7).

Determinism: the sampler is a pure function of (seed, epoch, position) and every sample's augmentation draws from
its own generator seeded by (seed, epoch, index) -- :func:`sample_rng` -- so a resumed run sees the same batches
and the same augmentations as an uninterrupted one, whatever the number of workers; checkpoints hold every
rank's torch/numpy/python RNG state. On CPU a killed-and-resumed run ends with bitwise-identical weights.
"""
from __future__ import annotations

import csv
import math
import os
import random
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from partwise.distributed import shut_down_process_group
from partwise.errors import ConfigError
from partwise.io import atomic_write
from partwise.train.config import check_range


@dataclass
class OptimConfig:
    name: str = "sgd"  # sgd | adamw
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    nesterov: bool = False

    def __post_init__(self):
        if self.name not in OPTIMIZERS:
            raise ConfigError(f"optim.name: unknown optimizer {self.name!r} ({', '.join(OPTIMIZERS)})")
        check_range("optim.lr", self.lr, 0)
        check_range("optim.momentum", self.momentum, 0)
        check_range("optim.weight_decay", self.weight_decay, 0)
        if self.nesterov and self.name == "sgd" and self.momentum <= 0:
            raise ConfigError("optim.nesterov: Nesterov momentum needs optim.momentum > 0")


OPTIMIZERS = ("sgd", "adamw")


@dataclass
class ScheduleConfig:
    name: str = "cosine"  # constant | step | cosine | cosine_restarts
    warmup_steps: int = 0
    warmup_factor: float = 0.1
    milestones: list[int] = field(default_factory=list)
    gamma: float = 0.1
    restart_period: int = 0  # first cycle length for cosine_restarts (0: a tenth of the run)
    restart_mult: int = 2
    min_lr_factor: float = 0.0

    def __post_init__(self):
        if self.name not in SCHEDULES:
            raise ConfigError(f"schedule.name: unknown schedule {self.name!r} ({', '.join(SCHEDULES)})")
        check_range("schedule.warmup_steps", self.warmup_steps, 0)
        check_range("schedule.warmup_factor", self.warmup_factor, 0)
        for i, milestone in enumerate(self.milestones):
            check_range(f"schedule.milestones[{i}]", milestone, 0)
        check_range("schedule.gamma", self.gamma, 0)
        check_range("schedule.restart_period", self.restart_period, 0)
        # a factor below 1 would shrink the cycles to nothing: lr_factor would never leave its loop
        check_range("schedule.restart_mult", self.restart_mult, 1)
        check_range("schedule.min_lr_factor", self.min_lr_factor, 0, 1)


SCHEDULES = ("constant", "step", "cosine", "cosine_restarts")


@dataclass
class RunConfig:
    max_steps: int = 100
    batch_size: int = 8  # global, over all ranks
    num_workers: int = 0
    checkpoint_every: int = 0  # 0: only at the end
    log_every: int = 10
    seed: int = 0
    amp: bool | str = True  # true: fp16 + GradScaler on GPU only; fp16 | bf16 on any device; false/off: fp32
    grad_clip: float = 0.0  # max gradient norm (see clip_mode); 0 disables
    clip_mode: str = "global"  # global: one norm over all parameters | per_tensor: each parameter's own norm
    out_dir: str = "runs/default"
    find_unused_parameters: bool = False  # DDP: set when some parameters get no gradient in a step

    def __post_init__(self):
        if not (isinstance(self.amp, bool) or self.amp in AMP_MODES):
            raise ConfigError(f"run.amp: expected true or false, or one of {', '.join(AMP_MODES)}, got {self.amp!r}")
        if self.clip_mode not in CLIP_MODES:
            raise ConfigError(f"run.clip_mode: expected one of {', '.join(CLIP_MODES)}, got {self.clip_mode!r}")
        for key in ("max_steps", "num_workers", "checkpoint_every", "log_every"):
            check_range(f"run.{key}", getattr(self, key), 0)
        check_range("run.batch_size", self.batch_size, 1)
        # numpy seeds each rank with seed + rank, which must stay below 2**32
        check_range("run.seed", self.seed, 0, 2**31 - 1)
        check_range("run.grad_clip", self.grad_clip, 0)
        if not self.out_dir or "\0" in self.out_dir:
            raise ConfigError(f"run.out_dir: expected a folder path, got {self.out_dir!r}")


AMP_MODES = ("fp16", "bf16", "off")
CLIP_MODES = ("global", "per_tensor")


def amp_settings(amp: bool | str, device_type: str) -> tuple[torch.dtype | None, bool]:
    """(autocast dtype or None for fp32, whether a GradScaler is used) of ``run.amp`` on ``device_type``."""
    if amp is True:
        return (torch.float16, True) if device_type == "cuda" else (None, False)
    if amp is False or amp == "off":
        return None, False
    if amp == "fp16":
        return torch.float16, True
    if amp == "bf16":
        return torch.bfloat16, False
    raise ConfigError(f"run.amp: expected true or false, or one of {', '.join(AMP_MODES)}, got {amp!r}")


def clip_gradients(parameters, max_norm: float, mode: str = "global") -> None:
    """Clip the gradients of ``parameters`` in place (module docstring: ``global`` / ``per_tensor``)."""
    params = [p for p in parameters if p.grad is not None]
    if mode == "global":
        nn.utils.clip_grad_norm_(params, max_norm)
        return
    if mode != "per_tensor":
        raise ConfigError(f"run.clip_mode: expected one of {', '.join(CLIP_MODES)}, got {mode!r}")
    for p in params:
        norm = torch.linalg.vector_norm(p.grad.detach().float())
        # tf.clip_by_norm: t * c / max(||t||, c); within the norm the factor is exactly 1 (no host sync needed)
        p.grad.mul_((max_norm / norm.clamp(min=max_norm)).to(p.grad.dtype))


def lr_factor(step: int, schedule: ScheduleConfig, max_steps: int) -> float:
    """Multiplier of the base learning rate at ``step`` (0-based); a pure function, so resuming is exact."""
    if step < schedule.warmup_steps:
        alpha = step / max(1, schedule.warmup_steps)
        return schedule.warmup_factor * (1 - alpha) + alpha
    name = schedule.name
    if name == "constant":
        return 1.0
    if name == "step":
        return schedule.gamma ** sum(step >= m for m in schedule.milestones)
    floor = schedule.min_lr_factor
    if name == "cosine":
        progress = (step - schedule.warmup_steps) / max(1, max_steps - schedule.warmup_steps)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    if name == "cosine_restarts":
        period = schedule.restart_period or max(1, max_steps // 10)
        t = step - schedule.warmup_steps
        while t >= period:
            t -= period
            period *= schedule.restart_mult
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t / period))
    raise ConfigError(f"schedule.name: unknown schedule {name!r} (constant, step, cosine, cosine_restarts)")


def build_optimizer(params, config: OptimConfig) -> torch.optim.Optimizer:
    params = [p for p in params if p.requires_grad]
    if config.name == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay,
                               nesterov=config.nesterov)
    if config.name == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    raise ConfigError(f"optim.name: unknown optimizer {config.name!r} (sgd, adamw)")


def sample_rng(seed: int, encoded_index: int, dataset_len: int) -> tuple[int, np.random.Generator]:
    """Decode a sampler value into (dataset index, that sample's own generator for this epoch)."""
    epoch, index = divmod(int(encoded_index), dataset_len)
    return index, np.random.default_rng([seed, epoch, index])


class EpochSampler(Sampler[int]):
    """Infinite sampler: epoch e is a permutation seeded by (seed, e), split across ranks; yields
    ``epoch * N + index`` so datasets can seed per-sample augmentation (:func:`sample_rng`). ``start`` skips the
    first positions of this rank's stream (used on resume)."""

    def __init__(self, dataset_len: int, seed: int, rank: int = 0, world_size: int = 1, start: int = 0,
                 shuffle: bool = True):
        if dataset_len <= 0:
            raise ConfigError("the training set is empty")
        self.n, self.seed, self.rank, self.world, self.start, self.shuffle = dataset_len, seed, rank, world_size, start, shuffle

    def _epoch(self, epoch: int) -> list[int]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            order = torch.randperm(self.n, generator=g).tolist()
        else:
            order = list(range(self.n))
        per_rank = math.ceil(self.n / self.world)
        order = (order * math.ceil(per_rank * self.world / self.n))[: per_rank * self.world]
        return [epoch * self.n + i for i in order[self.rank::self.world]]

    def __iter__(self) -> Iterator[int]:
        per_rank = math.ceil(self.n / self.world)
        epoch, offset = divmod(self.start, per_rank)
        while True:
            yield from self._epoch(epoch)[offset:]
            epoch, offset = epoch + 1, 0

    def __len__(self) -> int:  # pragma: no cover - infinite
        return 2**62


def distributed_context() -> tuple[int, int, int]:
    """(rank, world_size, local_rank), initialising the process group under torchrun (gloo on CPU, nccl on GPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0"))
    return 0, 1, 0


def _rng_state() -> dict:
    np_state = np.random.get_state()
    return {"torch": torch.get_rng_state(), "numpy_keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "numpy_rest": [int(np_state[2]), int(np_state[3]), float(np_state[4])], "python": random.getstate(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    rest = state["numpy_rest"]
    np.random.set_state(("MT19937", state["numpy_keys"].numpy().astype(np.uint32), rest[0], rest[1], rest[2]))
    random.setstate(_tuplify(state["python"]))
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _tuplify(value):
    return tuple(_tuplify(v) for v in value) if isinstance(value, (list, tuple)) else value


@dataclass
class TrainResult:
    step: int
    history: list[dict]
    checkpoint: Path | None


LossFn = Callable[[nn.Module, Any], tuple[torch.Tensor, dict]]


def train(model: nn.Module, dataset: Dataset, loss_fn: LossFn, run: RunConfig, optim: OptimConfig,
          schedule: ScheduleConfig, config_dict: dict, *, resume: bool = False,
          collate_fn: Callable | None = None, progress: bool = True) -> TrainResult:
    """Train ``model`` on ``dataset``; ``loss_fn(model, batch) -> (loss, {name: float})``.

    Checkpoints go to ``run.out_dir/checkpoint.pt`` (atomically), metrics to ``metrics.csv`` and ``loss.png``.
    ``resume`` continues from the checkpoint there, exactly.
    """
    from partwise.train.resume import load_resume_state, remove_stale_temporaries

    rank, world, local_rank = distributed_context()
    if run.batch_size % world:
        raise ConfigError(f"run.batch_size: {run.batch_size} is not divisible by the {world} processes")
    device = torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    out_dir = Path(run.out_dir)
    checkpoint_path = out_dir / "checkpoint.pt"
    torch.manual_seed(run.seed + rank)
    np.random.seed(run.seed + rank)
    random.seed(run.seed + rank)
    model.to(device)
    optimizer = build_optimizer(model.parameters(), optim)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, schedule, run.max_steps))
    autocast_dtype, use_scaler = amp_settings(run.amp, device.type)
    scaler = torch.amp.GradScaler(device.type, enabled=use_scaler)
    step, history = 0, []
    if resume:
        if not os.path.lexists(checkpoint_path):
            raise ConfigError(f"--resume: no checkpoint at {checkpoint_path}")
        step, history = load_resume_state(checkpoint_path, model, optimizer, scheduler, scaler if use_scaler else None,
                                          rank, config_dict)
    if rank == 0:
        remove_stale_temporaries(out_dir)
    per_rank = run.batch_size // world
    sampler = EpochSampler(len(dataset), run.seed, rank, world, start=step * per_rank)
    loader = DataLoader(dataset, batch_size=per_rank, sampler=sampler, num_workers=run.num_workers,
                        collate_fn=collate_fn, generator=torch.Generator().manual_seed(run.seed),
                        persistent_workers=run.num_workers > 0)
    wrapped = model
    if world > 1:
        wrapped = nn.parallel.DistributedDataParallel(model, device_ids=[local_rank] if device.type == "cuda" else None,
                                                      find_unused_parameters=run.find_unused_parameters)
    if rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
    bar = None
    if progress and rank == 0:
        from partwise.progress import bar as tqdm

        bar = tqdm(total=run.max_steps, initial=step, desc="train", unit="step", dynamic_ncols=True)
    batches = iter(loader)
    model.train()
    started = time.perf_counter()
    while step < run.max_steps:
        batch = to_device(next(batches), device)
        with torch.autocast(device_type=device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            loss, metrics = loss_fn(wrapped, batch)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if run.grad_clip > 0:
            scaler.unscale_(optimizer)
            clip_gradients(model.parameters(), run.grad_clip, run.clip_mode)
        scaler.step(optimizer)
        scaler.update()
        lr = optimizer.param_groups[0]["lr"]
        with warnings.catch_warnings():
            # fp16: GradScaler skips the optimizer step when gradients overflow; the schedule still advances one
            # step per training step (as mmcv/mmengine do), which torch would warn about
            warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step", category=UserWarning)
            scheduler.step()
        step += 1
        loss_value = float(loss.detach())
        if world > 1:
            reduced = torch.tensor([loss_value], dtype=torch.float64, device=device)
            dist.all_reduce(reduced)
            loss_value = float(reduced) / world
        history.append({"step": step, "loss": loss_value, "lr": lr, **{k: float(v) for k, v in metrics.items()}})
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss_value:.4f}")
        last = step == run.max_steps
        if last or (run.checkpoint_every and step % run.checkpoint_every == 0):
            save_checkpoint(checkpoint_path, model, optimizer, scheduler, scaler, step, history, config_dict, rank, world)
    if bar is not None:
        bar.close()
    if world > 1:
        # rank 0 goes on to evaluate alone: the group is taken down here, on every rank together
        del wrapped
        shut_down_process_group()
    if rank == 0:
        write_metrics(out_dir, history)
        if history:  # max_steps 0 evaluates the init weights without a step
            history[-1]["seconds"] = time.perf_counter() - started
    return TrainResult(step, history, checkpoint_path if rank == 0 else None)


def to_device(batch, device):
    """Move tensors (also inside dicts, lists and tuples) to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def save_checkpoint(path: Path, model, optimizer, scheduler, scaler, step, history, config_dict, rank, world) -> None:
    """Everything needed to resume exactly; written by rank 0 through a temporary file and a rename."""
    rng = [_rng_state()]
    if world > 1:
        gathered: list = [None] * world
        dist.all_gather_object(gathered, rng[0])
        rng = gathered
    if rank == 0:
        state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                 "scaler": scaler.state_dict(), "step": step, "history": history, "config": config_dict, "rng": rng}
        with atomic_write(path, "wb") as fh:
            torch.save(state, fh)
    if world > 1:
        dist.barrier()


def write_metrics(out_dir: Path, history: list[dict]) -> None:
    """``metrics.csv`` (one row per step) and ``loss.png``."""
    keys = sorted({k for row in history for k in row}, key=lambda k: (k != "step", k))
    with atomic_write(out_dir / "metrics.csv", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        writer.writerows(history)
    plot_training(out_dir / "loss.png", history)


def plot_training(path: Path, history: list[dict], evaluation: dict | None = None) -> None:
    """``loss.png``: the training loss (raw and smoothed, with its logged components) beside the learning rate;
    validation values when known (``val_*`` columns of the history, and the end-of-run ``evaluation``: its
    ``val_loss`` as a point at the last step, mAPs in a note). Named on stderr."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from partwise.progress import wrote

    if not history:
        return
    steps = np.asarray([r["step"] for r in history], dtype=np.float64)
    has_lr = any("lr" in r for r in history)
    fig, axes = plt.subplots(1, 2 if has_lr else 1, figsize=(12 if has_lr else 7, 4.2), squeeze=False,
                             gridspec_kw={"width_ratios": [2, 1]} if has_lr else None)
    ax = axes[0][0]

    def column(key):
        return np.asarray([r.get(key, np.nan) for r in history], dtype=np.float64)

    loss = column("loss")
    ax.plot(steps, loss, linewidth=0.8, alpha=0.35, color="#1f77b4", label="loss")
    if len(loss) >= 10:
        window = max(2, len(loss) // 25)
        smooth = np.convolve(loss, np.ones(window) / window, mode="valid")
        ax.plot(steps[window - 1:], smooth, linewidth=1.6, color="#1f77b4", label=f"loss (mean of {window})")
    skip = {"step", "loss", "lr", "seconds"}
    components = sorted(k for k in {k for r in history for k in r} - skip if not k.startswith("val_"))
    for i, key in enumerate(components[:6]):
        values = column(key)
        if np.isfinite(values).any() and (values[np.isfinite(values)] > 0).all():
            ax.plot(steps, values, linewidth=0.8, alpha=0.8, label=key, color=f"C{i + 1}")
    for key in sorted(k for k in {k for r in history for k in r} if k.startswith("val_")):
        values = column(key)
        ok = np.isfinite(values)
        if ok.any():
            ax.plot(steps[ok], values[ok], "o-", markersize=4, linewidth=1.2, label=key.replace("_", " "))
    notes = []
    for key, res in (evaluation or {}).items():
        if not isinstance(res, dict):
            continue
        if key == "val_loss" and isinstance(res.get("value"), (int, float)):
            ax.plot([steps[-1]], [res["value"]], "D", color="#d62728", markersize=6,
                    label=f"validation loss {res['value']:.4f}")
        elif isinstance(res.get("mAP"), (int, float)):
            prior = res.get("prior_mAP")
            notes.append(f"val {key} mAP {100 * res['mAP']:.2f}"
                         + (f" (frequency prior {100 * prior:.2f})" if isinstance(prior, (int, float)) else ""))
    if notes:
        ax.text(0.99, 0.98, "\n".join(notes), transform=ax.transAxes, ha="right", va="top", fontsize=8,
                bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "#cccccc"})
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    if np.nanmin(loss) > 0:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
    ax.set_title("training loss", fontsize=10)
    if has_lr:
        ax2 = axes[0][1]
        ax2.plot(steps, column("lr"), color="#2ca02c", linewidth=1.2)
        ax2.set_xlabel("step")
        ax2.set_ylabel("learning rate")
        ax2.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
        ax2.grid(alpha=0.3)
        ax2.set_title("learning rate", fontsize=10)
    fig.tight_layout()
    with atomic_write(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=100)
    plt.close(fig)
    wrote(path)
