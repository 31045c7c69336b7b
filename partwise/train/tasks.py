"""The training tasks behind ``partwise train CONFIG.yaml``: the table of tasks (:data:`TASKS`, name -> runner
class), :func:`load_task` / :func:`run_task` and the end-of-run summary. Each task is one dataclass config plus a
runner that builds its model, data and loss and evaluates it at the end; the runners subclass the bases of
:mod:`partwise.train.base` (re-exported here), one module per model family:

- :mod:`partwise.train.ava`: ``ava_detector``, ``st_activity2vec`` (keyframe clips of AVA / HAKE-AVA)
- :mod:`partwise.train.activity2vec`: ``activity2vec``
- :mod:`partwise.train.clip_activity2vec`: ``clip_activity2vec``
- :mod:`partwise.train.tin`: ``tin``
- :mod:`partwise.train.person_detector`: ``person_detector``
- :mod:`partwise.train.video_classifier`: ``video_classifier``

A config file names its task with ``task:``; the other top-level keys are the task's dataclass fields. Model
sections are the model's own config dataclass (``AVADetectorConfig``, ``STActivity2VecConfig``, ...), validated key
by key like the rest, so a typo is a one-line :class:`ConfigError` before any work starts. Evaluation and loss
conventions: :mod:`partwise.train.base`.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from partwise.errors import ConfigError
from partwise.train import config as config_mod
from partwise.train.activity2vec import Activity2VecRunner
from partwise.train.ava import AvaDetectorRunner, STActivity2VecRunner
from partwise.train.base import (EvalConfig, ImageTask, KeyframeTask, Task, TrainModel, build_model_config,
                                 class_frequencies, load_init)
from partwise.train.clip_activity2vec import ClipActivity2VecRunner
from partwise.train.engine import build_optimizer, train
from partwise.train.person_detector import PersonDetectorRunner
from partwise.train.tin import TINRunner
from partwise.train.video_classifier import VideoClassifierRunner

__all__ = ["TASKS", "EvalConfig", "ImageTask", "KeyframeTask", "Task", "TrainModel", "build_model_config",
           "build_optimizer_for", "class_frequencies", "format_summary", "load_init", "load_task", "run_task"]

# Every task ``partwise train`` knows, in the order error messages list them. One explicit table: a runner module
# does not register itself, so what is trainable is read here rather than discovered through import side effects.
TASKS: dict[str, type[Task]] = {
    "ava_detector": AvaDetectorRunner,
    "st_activity2vec": STActivity2VecRunner,
    "activity2vec": Activity2VecRunner,
    "clip_activity2vec": ClipActivity2VecRunner,
    "tin": TINRunner,
    "person_detector": PersonDetectorRunner,
    "video_classifier": VideoClassifierRunner,
}


def load_task(path: str | None, overrides: list[str] | None = None, base: dict | None = None):
    """Read the config (file, then ``key=value`` overrides), pick the task, validate everything; -> runner."""
    values = dict(base or {})
    if path is not None:
        values.update(config_mod.load_yaml(path))
    prefix = f"{path}: " if path is not None else ""
    try:  # an override can meet a section of the file (``run: 5`` with ``run.max_steps=1``): name the file
        values = config_mod.apply_overrides(values, overrides or [])
    except ConfigError as exc:
        raise ConfigError(f"{prefix}{exc}") from None
    name = values.get("task")
    if name is None:
        raise ConfigError(f"{prefix}task: required key is missing (one of {', '.join(TASKS)})")
    if not isinstance(name, str):  # a list or mapping would not even hash
        raise ConfigError(f"{prefix}task: expected a task name (one of {', '.join(TASKS)}), got {name!r}")
    if name not in TASKS:
        raise ConfigError(f"{prefix}task: unknown task {name!r} (one of {', '.join(TASKS)})")
    runner_cls = TASKS[name]
    try:
        cfg = config_mod.build(runner_cls.config_cls, values)
        runner = runner_cls(cfg)
        runner.validate()
    except ConfigError as exc:
        raise ConfigError(f"{prefix}{exc}") from None
    return runner


def run_task(runner, *, resume: bool = False, progress: bool = True, evaluate: bool = True) -> dict:
    """Train (one process or under torchrun), then on rank 0 evaluate and write ``model.pt``; -> summary dict."""
    from partwise.models.checkpoint import save_model

    cfg = runner.cfg
    train_ds, val_ds = runner.datasets()
    model = runner.build_model()
    result = train(model, train_ds, runner.loss_fn, cfg.run, cfg.optim, cfg.schedule, config_mod.to_dict(cfg),
                   resume=resume, collate_fn=runner.collate, progress=progress)
    summary: dict[str, Any] = {"steps": result.step, "final_loss": result.history[-1]["loss"] if result.history else None}
    if result.checkpoint is None:  # not rank 0
        return summary
    out_dir = Path(cfg.run.out_dir)
    extra = {"task": runner.name, "data": dataclasses.asdict(cfg.data)}
    extra.update(runner.model_extra() if hasattr(runner, "model_extra") else {})
    if (Path(cfg.data.root) / "synth.json").is_file():  # `partwise synth` data: `partwise run` warns on real video
        extra["domain"] = "synthetic"
    save_model(model.net, out_dir / "model.pt", extra=extra)
    summary["seconds"] = result.history[-1].get("seconds") if result.history else 0.0
    if evaluate and cfg.eval.enabled:
        summary["eval"] = runner.evaluate(model, train_ds, val_ds, out_dir, progress=progress)
        from partwise.train.engine import plot_training

        plot_training(out_dir / "loss.png", result.history, summary["eval"])  # now with the validation figures
    return summary


def build_optimizer_for(runner) -> torch.optim.Optimizer:
    """The optimizer the run would use (for config checks)."""
    model = runner.build_model()
    return build_optimizer(model.parameters(), runner.cfg.optim)


def format_summary(summary: dict) -> str:
    """The end-of-run lines: steps, final loss, and per evaluated kind the model's and the prior's frame mAP."""
    if "eval" not in summary and "seconds" not in summary:
        return ""
    loss = summary["final_loss"]
    lines = [f"trained {summary['steps']} steps, final loss " + ("-" if loss is None else f"{loss:.4f}")
             + (f", {summary['seconds']:.0f} s" if summary.get("seconds") else "")]
    for kind, res in summary.get("eval", {}).items():
        if "mAP" not in res:
            lines.append(f"{kind:8s} {res['value']:.4f}")
            continue
        baseline = res.get("baseline", "frequency prior")
        lines.append(f"{kind:8s} mAP {100 * res['mAP']:6.2f}   {baseline} {100 * res['prior_mAP']:6.2f}"
                     f"   ({res['classes']} classes present in val; {res['model']['protocol']})")
    return "\n".join(lines)
