"""Evaluation results and their three presentations: a readable table, one JSON object, and a PNG."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class EvalResult:
    """The outcome of one evaluation.

    ``metric`` is the headline's key in JSON (``"mAP"`` for detection metrics, ``"score"`` for Kinetics-TPS);
    ``value`` its value (fractions in [0, 1], printed as percentages in tables). ``per_class`` maps the class id
    (as a string) to its AP; ``class_names`` maps the same keys to readable names. ``extra`` holds further headline
    figures that go into JSON as top-level keys (e.g. HICO-DET ``full``/``rare``/``non_rare``), ``curves`` the
    precision/recall arrays per class for plotting.
    """

    protocol: str
    value: float
    metric: str = "mAP"
    per_class: dict[str, float] = field(default_factory=dict)
    class_names: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)

    def to_json_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"protocol": self.protocol, self.metric: _clean(self.value)}
        out["per_class"] = {k: _clean(v) for k, v in self.per_class.items()}
        for key, value in self.extra.items():
            out[key] = _clean_tree(value)
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_json_dict())

    def format_table(self) -> str:
        lines = [f"protocol: {self.protocol}"]
        width = max([len(self.class_names.get(k, k)) for k in self.per_class] + [10])
        if self.per_class:
            lines.append(f"{'id':>6}  {'class':<{width}}  {'AP':>7}")
            for key, ap in self.per_class.items():
                shown = "   n/a" if ap is None or (isinstance(ap, float) and math.isnan(ap)) else f"{100 * ap:7.2f}"
                lines.append(f"{key:>6}  {self.class_names.get(key, ''):<{width}}  {shown}")
        for key, value in self.extra.items():
            if isinstance(value, (int, float)):
                lines.append(f"{key}: {100 * value:.2f}" if isinstance(value, float) else f"{key}: {value}")
            elif isinstance(value, dict) and all(v is None or isinstance(v, (int, float)) for v in value.values()):
                lines.append(f"{key}: " + ", ".join(f"{k} {_shown(v)}" for k, v in value.items()))
        headline = f"{100 * self.value:.4f}" if self.metric == "mAP" else f"{self.value:.6f}"
        lines.append(f"{self.metric}: {headline}")
        return "\n".join(lines)

    def plot(self, path: str) -> None:
        """Per-class AP bars, and PR curves when ``curves`` is filled, as one PNG."""
        plot_result(self, path)


def _shown(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{100 * value:.2f}" if isinstance(value, float) else str(value)


def _clean(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return None if math.isnan(value) else value
    if isinstance(value, np.integer):
        return int(value)
    return value


def _clean_tree(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _clean_tree(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean_tree(v) for v in value]
    return _clean(value)


def plot_result(result: EvalResult, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from partwise.io import atomic_write

    keys = list(result.per_class)
    values = [0.0 if result.per_class[k] is None else float(result.per_class[k]) for k in keys]
    has_curves = bool(result.curves)
    fig, axes = plt.subplots(1, 2 if has_curves else 1, figsize=(16 if has_curves else 10, 6), squeeze=False)
    ax = axes[0][0]
    labels = [result.class_names.get(k, k) for k in keys]
    ax.bar(range(len(values)), [100 * v for v in values], color="#3b75af")
    ax.set_xticks(range(len(values)))
    ax.set_xticklabels(labels, rotation=90, fontsize=6 if len(labels) > 40 else 8)
    ax.set_ylabel("AP (%)")
    ax.set_title(f"{result.protocol}: {result.metric} {100 * result.value:.2f}" if result.metric == "mAP"
                 else f"{result.protocol}: {result.metric} {result.value:.4f}")
    if has_curves:
        ax2 = axes[0][1]
        for key, (precision, recall) in list(result.curves.items())[:20]:
            ax2.plot(recall, precision, label=result.class_names.get(key, key), linewidth=1)
        ax2.set_xlabel("recall")
        ax2.set_ylabel("precision")
        ax2.set_xlim(0, 1)
        ax2.set_ylim(0, 1.02)
        ax2.set_title("precision-recall (first 20 classes)")
        ax2.legend(fontsize=6, loc="lower left")
    fig.tight_layout()
    with atomic_write(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=100)
    plt.close(fig)
