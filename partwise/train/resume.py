"""Resuming a training run from ``run.out_dir/checkpoint.pt`` (:func:`partwise.train.engine.save_checkpoint`'s
file), which is untrusted input: read weights-only, and every entry checked against this run's model and optimizer
before use, so that a corrupt, truncated or foreign file is one line naming the file and the key, never a
traceback or a run that continues on garbage. Also the clean-up of what a killed run leaves in its folder.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from partwise.errors import InputError
from partwise.train.engine import _set_rng_state

#: the entries of a training checkpoint (:func:`save_checkpoint`) that resuming needs, with their types
CHECKPOINT_ENTRIES = {"model": dict, "optimizer": dict, "scheduler": dict, "step": int, "history": list, "rng": list}
#: files the training run writes into ``run.out_dir`` through :func:`partwise.io.atomic_write`
RUN_FILES = ("checkpoint.pt", "metrics.csv", "loss.png", "model.pt")


def load_resume_state(path: Path, model: nn.Module, optimizer, scheduler, scaler, rank: int,
                      config_dict: dict | None = None) -> tuple[int, list[dict]]:
    """Restore model, optimizer, schedule, scaler (None: not used) and this rank's RNGs from the checkpoint at
    ``path``; -> (step, history). The file is untrusted: it is read weights-only (a pickle that would run code is
    refused), and every entry is checked against this run's model and optimizer before use, so that a file that is
    not a training checkpoint, a truncated or corrupt one, or one of another task or architecture (other keys or
    shapes) is one :class:`InputError` line naming the file and the key."""
    from partwise.models.checkpoint import read_checkpoint

    state = read_checkpoint(path)
    if state.get("format") == "partwise":
        raise InputError(path, None, "a partwise model file (model.pt), not a training checkpoint")
    for key, kind in CHECKPOINT_ENTRIES.items():
        if key not in state:
            raise InputError(path, key, "missing: not a partwise training checkpoint (run.out_dir/checkpoint.pt)")
        if not isinstance(state[key], kind) or isinstance(state[key], bool):
            raise InputError(path, key, f"expected {kind.__name__}, got {type(state[key]).__name__}")
    ours = (config_dict or {}).get("task")
    theirs = state["config"].get("task") if isinstance(state.get("config"), dict) else None
    if ours and theirs and theirs != ours:
        raise InputError(path, "config.task", f"a checkpoint of task {theirs!r}, this run trains {ours!r}")
    _check_weights(path, state["model"], model)
    _restore(path, "optimizer", lambda: _check_optimizer(state["optimizer"], optimizer)
             or optimizer.load_state_dict(state["optimizer"]))
    _restore(path, "scheduler", lambda: _check_scheduler(state["scheduler"], scheduler)
             or scheduler.load_state_dict(state["scheduler"]))
    if scaler is not None and state.get("scaler"):  # a checkpoint of an fp32/bf16 run has no scaler state
        _restore(path, "scaler", lambda: _check_scaler(state["scaler"]) or scaler.load_state_dict(state["scaler"]))
    step, history = state["step"], state["history"]
    if step < 0 or len(history) != step:
        raise InputError(path, "step", f"{step} steps but {len(history)} history rows: inconsistent")
    for i, row in enumerate(history):
        numbers = isinstance(row, dict) and all(isinstance(k, str) and isinstance(v, (int, float))
                                                and not isinstance(v, bool) for k, v in row.items())
        if not (numbers and {"step", "loss"} <= set(row)):
            raise InputError(path, f"history[{i}]", "expected a mapping of names (step, loss, ...) to numbers")
    rngs = state["rng"]
    if not rngs:
        raise InputError(path, "rng", "empty")
    _restore(path, "rng", lambda: _set_rng_state(rngs[rank] if rank < len(rngs) else rngs[0]))
    return step, list(history)


def _restore(path: Path, key: str, apply: Callable[[], Any]) -> None:
    """``apply()``, its failure on a malformed entry reported as bad input naming ``path`` and ``key``."""
    try:
        apply()
    except InputError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, RuntimeError) as exc:
        text = str(exc).strip()
        reason = text.splitlines()[0] if text else type(exc).__name__
        raise InputError(path, key, f"cannot restore: {reason}") from None


def _check_weights(path: Path, weights: dict, model: nn.Module) -> None:
    target = model.state_dict()
    names = list(weights)
    bad = next((k for k in names if not isinstance(k, str)), None)
    if bad is not None:
        raise InputError(path, "model", f"key {bad!r} ({type(bad).__name__}) is not a parameter name")
    missing = [k for k in target if k not in weights]
    unexpected = [k for k in names if k not in target]
    mismatched = [k for k in target if k in weights and (not isinstance(weights[k], torch.Tensor)
                                                         or tuple(weights[k].shape) != tuple(target[k].shape))]
    if missing or unexpected or mismatched:
        if mismatched:
            key = mismatched[0]
            got = tuple(weights[key].shape) if isinstance(weights[key], torch.Tensor) else type(weights[key]).__name__
            reason = f"{got} in the file, {tuple(target[key].shape)} in the model"
        else:
            key = (missing or unexpected)[0]
            reason = "missing from the file" if missing else "not a parameter of the model"
        counts = f"{len(missing)} missing, {len(unexpected)} unexpected, {len(mismatched)} mis-shaped"
        raise InputError(path, f"model.{key}", f"{reason} ({counts}: a checkpoint of another model or config)")
    for name, _ in model.named_parameters():
        if weights[name].is_floating_point() and not bool(torch.isfinite(weights[name]).all()):
            raise InputError(path, f"model.{name}", "non-finite values (NaN or infinity): a corrupt checkpoint")
    _restore(path, "model", lambda: model.load_state_dict(weights))


def _check_optimizer(saved: dict, optimizer: torch.optim.Optimizer) -> None:
    """Raises on saved optimizer state that does not fit this run's parameters (loading it would fail later,
    mid-training, or train with another learning rate)."""
    groups, per_param = saved["param_groups"], saved["state"]
    if not isinstance(groups, list) or not isinstance(per_param, dict):
        raise TypeError("expected param_groups (a list) and state (a mapping)")
    if len(groups) != len(optimizer.param_groups):
        raise ValueError(f"{len(groups)} parameter groups, the model has {len(optimizer.param_groups)}")
    params = {}
    for group, current in zip(groups, optimizer.param_groups):
        if not isinstance(group, dict) or len(group.get("params", ())) != len(current["params"]):
            raise ValueError("a parameter group of another size: a checkpoint of another model")
        for key in ("lr", "initial_lr"):
            value = group.get(key, 0.0)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"param_groups {key} {value!r}")
        params.update(zip(group["params"], current["params"]))
    for pid, entries in per_param.items():
        if pid not in params or not isinstance(entries, dict):
            raise ValueError(f"state of unknown parameter {pid!r}")
        for name, value in entries.items():
            if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape != params[pid].shape:
                raise ValueError(f"state[{pid}].{name}: shape {tuple(value.shape)}, parameter "
                                 f"{tuple(params[pid].shape)}")


def _check_scheduler(saved: dict, scheduler) -> None:
    known = set(scheduler.state_dict())
    # load_state_dict copies every entry into the scheduler's attributes: entries of other torch versions are
    # harmless, one named like an attribute or a method it does not save (optimizer, step) would replace it
    clash = [k for k in saved if not isinstance(k, str) or (k not in known and (
        k in vars(scheduler) or hasattr(type(scheduler), k) or k.startswith("__")))]
    if clash:
        raise ValueError(f"unknown entry {clash[0]!r}")
    epoch, base = saved.get("last_epoch"), saved.get("base_lrs")
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
        raise ValueError(f"last_epoch {epoch!r}")
    if not (isinstance(base, list) and len(base) == len(scheduler.base_lrs)
            and all(isinstance(v, (int, float)) and math.isfinite(v) for v in base)):
        raise ValueError(f"base_lrs {base!r}"[:80])
    # LambdaLR keeps None for plain functions; anything else would be written into the functions' attributes
    if any(fn is not None for fn in saved.get("lr_lambdas", [])):
        raise ValueError("lr_lambdas: expected only None entries")


def _check_scaler(saved: dict) -> None:
    scale = saved.get("scale") if isinstance(saved, dict) else None
    if not isinstance(scale, (int, float)) or not math.isfinite(scale) or scale <= 0:
        raise ValueError(f"scale {scale!r}")


def remove_stale_temporaries(out_dir: Path) -> None:
    """Delete the temporary files (``.NAME.XXXX.tmp``) a killed run left beside :data:`RUN_FILES`: one run writes
    into a ``run.out_dir`` at a time, so they are nobody's work in progress."""
    try:
        names = os.listdir(out_dir)
    except OSError:
        return
    prefixes = tuple(f".{name}." for name in RUN_FILES)
    for name in names:
        if name.startswith(prefixes) and name.endswith(".tmp"):
            try:
                os.unlink(out_dir / name)
            except OSError:
                pass
