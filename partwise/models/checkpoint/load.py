"""The shared checkpoint loader: reading a file safely (``torch.load(weights_only=True)``, errors naming the file),
mapping its keys onto a model with a :class:`LoadReport` of missing, unexpected and mis-shaped keys, and building a
model from an original checkpoint (:func:`load_original`)."""
from __future__ import annotations

import os
import re
import zipfile
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from partwise.errors import InputError, MissingFileError
from partwise.models.checkpoint.keys import map_keys, state_dict_of

@dataclass
class LoadReport:
    """What happened to each key when mapping a foreign state dict onto a model."""

    source: str
    mapped: dict[str, str] = field(default_factory=dict)  # checkpoint key -> model key
    missing: list[str] = field(default_factory=list)  # model keys the checkpoint lacks
    unexpected: list[str] = field(default_factory=list)  # checkpoint keys (original names) with no model key
    mismatched: list[tuple[str, tuple, tuple]] = field(default_factory=list)  # (model key, ckpt shape, model shape)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def format(self, limit: int = 20) -> str:
        lines = [f"source: {self.source}; mapped keys: {len(self.mapped)}; missing: {len(self.missing)}; "
                 f"unexpected: {len(self.unexpected)}; shape mismatches: {len(self.mismatched)}"]
        renamed = [(k, v) for k, v in self.mapped.items() if k != v]
        if renamed:
            lines.append(f"renamed: {len(renamed)} keys, e.g. {renamed[0][0]} -> {renamed[0][1]}")
        for title, items in (("missing", self.missing), ("unexpected", self.unexpected)):
            for key in items[:limit]:
                lines.append(f"  {title}: {key}")
            if len(items) > limit:
                lines.append(f"  ... {len(items) - limit} more {title}")
        for key, got, want in self.mismatched[:limit]:
            lines.append(f"  shape mismatch: {key}: checkpoint {list(got)} vs model {list(want)}")
        return "\n".join(lines)


def _load_failure(exc: Exception) -> str:
    """One line for a failed ``torch.load(weights_only=True)``: the refused global when the unpickler refused one
    (never torch's advice to load with ``weights_only=False``: the file is not trusted), else the first line."""
    text = str(exc)
    refused = re.search(r"Unsupported global: GLOBAL ([\w.<>]+)", text) or re.search(r"GLOBAL ([\w.<>]+)", text)
    if refused:
        return (f"refused: the checkpoint's pickle calls {refused.group(1)}, which a weights-only checkpoint never "
                "does (not loaded; nothing in it was run)")
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    lines = [line for line in lines if "weights_only" not in line and "trust" not in line] or lines
    reason = re.sub(r"\x1b\[[0-9;]*m", "", lines[0]) if lines else type(exc).__name__
    return f"cannot read as a weights-only torch checkpoint: {reason}"


def read_checkpoint(path: str | os.PathLike) -> dict:
    """Load a checkpoint file safely (``weights_only=True``); errors name the file."""
    if not os.path.exists(path):
        raise MissingFileError(f"{path}: checkpoint not found")
    if not zipfile.is_zipfile(path):
        raise InputError(path, None, "not a torch checkpoint (torch.save writes a zip archive)")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle/zip errors of many kinds; report them as bad input, one line
        raise InputError(path, None, _load_failure(exc)) from None
    if not isinstance(obj, dict):
        raise InputError(path, None, f"expected a dict checkpoint, got {type(obj).__name__}")
    return obj


def load_original(checkpoint, infer_config, build, source: str, *, strict: bool = True, reader=None):
    """An original checkpoint (a path, read by ``reader`` or :func:`read_checkpoint`, or the loaded dict) -> the
    partwise model whose config ``infer_config(state_dict)`` reads off the weights, built by ``build(config)`` and
    loaded by ``source``'s key rules: ``(model in eval mode, LoadReport)``. A config the weights cannot give is a
    one-line :class:`InputError` naming the file."""
    path = None
    if not isinstance(checkpoint, dict):
        path, checkpoint = checkpoint, (reader or read_checkpoint)(checkpoint)
    state = state_dict_of(checkpoint)
    try:
        config = infer_config(state)
    except ValueError as exc:
        raise InputError(path, None, str(exc)) from None
    model = build(config)
    report = load_state_dict(model, state, source, strict=strict, path=path)
    return model.eval(), report


def load_state_dict(model: nn.Module, state_dict: dict[str, Tensor], source: str = "mmaction2",
                    strict: bool = True, path: str | os.PathLike | None = None,
                    dry_run: bool = False) -> LoadReport:
    """Map ``state_dict`` from ``source`` naming onto ``model`` and load it.

    ``strict``: any missing, unexpected or mis-shaped key raises :class:`InputError` (naming the file and the first
    offending key) and nothing is loaded. Non-strict: loads every key that matches in name and shape.
    ``dry_run``: only build the report (nothing is loaded, nothing raised). Returns the :class:`LoadReport`.
    """
    mapped, names, unmatched = map_keys(state_dict, source)
    report = LoadReport(source, mapped=names, unexpected=list(unmatched))
    target = model.state_dict()
    inverse = {}
    for original, new in names.items():
        inverse.setdefault(new, original)
    usable = {}
    for key, value in mapped.items():
        if key not in target:
            report.unexpected.append(inverse[key])
        elif tuple(value.shape) != tuple(target[key].shape):
            report.mismatched.append((key, tuple(value.shape), tuple(target[key].shape)))
        else:
            usable[key] = value
    report.missing = [k for k in target if k not in mapped]
    if dry_run:
        return report
    if strict and not report.ok:
        key, reason = _first_problem(report)
        raise InputError(path, key, f"{reason} (loading {source} weights into {type(model).__name__}; "
                                    f"{len(report.missing)} missing, {len(report.unexpected)} unexpected, "
                                    f"{len(report.mismatched)} mis-shaped keys)")
    model.load_state_dict(usable, strict=False)
    return report


def _first_problem(report: LoadReport) -> tuple[str, str]:
    if report.mismatched:
        key, got, want = report.mismatched[0]
        return key, f"shape {list(got)} in the checkpoint, {list(want)} in the model"
    if report.missing:
        return report.missing[0], "missing from the checkpoint"
    return report.unexpected[0], "not a parameter of the model"


def parameter_count(model_or_state: nn.Module | dict) -> int:
    """Learnable parameters of a module, or of a state dict (BN running statistics and counters excluded)."""
    if isinstance(model_or_state, nn.Module):
        return sum(p.numel() for p in model_or_state.parameters())
    skip = ("running_mean", "running_var", "num_batches_tracked")
    total = 0
    for key, value in model_or_state.items():
        if key.endswith(skip):
            continue
        shape = value if isinstance(value, (list, tuple)) else value.shape
        count = 1
        for s in shape:
            count *= int(s)
        total += count
    return total
