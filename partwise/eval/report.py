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
    #: for plots only (not in JSON): the baseline's headline value (e.g. the frequency prior's mAP), drawn as a line
    baseline: float | None = field(default=None, repr=False)
    baseline_name: str = field(default="frequency prior", repr=False)
    #: for plots only: ground-truth positives per class, when known (0: "no GT", not drawn as a bar)
    gt_counts: dict[str, int] = field(default_factory=dict, repr=False)

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
        headline = f"{100 * self.value:.2f}" if self.metric == "mAP" else f"{self.value:.6f}"
        lines.append(f"{self.metric}: {headline}")
        return "\n".join(lines)

    def plot(self, path: str, baseline: float | None = None) -> dict[str, Any]:
        """Per-class AP bars (sorted, classes with ground truth only; ``baseline``, e.g. the frequency prior's
        mAP, as a line), and PR curves when ``curves`` is filled, as one PNG named on stderr."""
        if baseline is not None:
            self.baseline = baseline
        return plot_result(self, path)


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


#: above this many classes with ground truth, the AP chart shows the best and the worst half of this many
MAX_BARS = 80
#: PR curves drawn (the classes with the highest AP)
MAX_CURVES = 10


def _nan(value: Any) -> bool:
    return value is None or (isinstance(value, (float, np.floating)) and math.isnan(value))


def ap_bar_data(result: EvalResult) -> dict[str, Any]:
    """What the AP chart shows: ``bars`` as ``(key, label, value)`` sorted best first (classes with ground truth
    only; at most :data:`MAX_BARS`, the best and the worst half), ``no_gt`` the labels of classes without ground
    truth (AP missing/NaN, or 0 positives in ``result.gt_counts``), ``hidden`` how many classes with ground truth
    were left out, ``baseline`` the prior's headline value (or None)."""
    bars, no_gt = [], []
    for key, value in result.per_class.items():
        label = result.class_names.get(key) or key
        if _nan(value) or (result.gt_counts and result.gt_counts.get(key, 1) == 0):
            no_gt.append(label)
        else:
            bars.append((key, label, float(value)))
    bars.sort(key=lambda b: -b[2])
    hidden = 0
    if len(bars) > MAX_BARS:
        hidden = len(bars) - MAX_BARS
        bars = bars[:MAX_BARS // 2] + bars[-(MAX_BARS // 2):]
    return {"bars": bars, "no_gt": no_gt, "hidden": hidden,
            "baseline": None if _nan(result.baseline) else result.baseline}


def ap_figure(result: EvalResult):
    """The matplotlib figure of :func:`plot_result` and the data it shows (see :func:`ap_bar_data`)."""
    import textwrap

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = ap_bar_data(result)
    bars = data["bars"]
    curves = {k: c for k, c in result.curves.items() if k in {b[0] for b in bars}}
    n = max(len(bars), 1)
    height = max(4.0, 0.24 * n + 1.8)
    fig, axes = plt.subplots(1, 2 if curves else 1, figsize=(15 if curves else 8, height), squeeze=False,
                             gridspec_kw={"width_ratios": [1, 1]} if curves else None)
    ax = axes[0][0]
    unit = "AP" if result.metric == "mAP" else result.metric
    rows = np.arange(len(bars))
    ax.barh(rows, [100 * b[2] for b in bars], color="#3b75af", height=0.7)
    ax.set_yticks(rows)
    ax.set_yticklabels([b[1] for b in bars], fontsize=8)
    ax.invert_yaxis()  # best at the top
    ax.set_ylim(len(bars) - 0.5, -0.5) if bars else None
    ax.set_xlim(0, 100)
    ax.set_xlabel(f"{unit} (%)")
    ax.grid(axis="x", alpha=0.3)
    for i, b in enumerate(bars):
        ax.text(min(100 * b[2] + 1, 88), i, f"{100 * b[2]:.1f}", va="center", fontsize=7)
    headline = (f"{result.metric} {100 * result.value:.2f}" if result.metric == "mAP"
                else f"{result.metric} {result.value:.4f}")
    title = f"{result.protocol}: {headline}"
    if data["baseline"] is not None:
        ax.axvline(100 * data["baseline"], color="#d62728", linestyle="--", linewidth=1.2,
                   label=f"{result.baseline_name} {100 * data['baseline']:.2f}")
        ax.legend(loc="lower right", fontsize=8)
    ax.set_title(f"{title}\n{len(bars) + data['hidden']} classes with ground truth, sorted", fontsize=10)
    notes = []
    if data["hidden"]:
        notes.append(f"{data['hidden']} classes between the {len(bars) // 2} best and the {len(bars) // 2} worst "
                     "not shown")
    if data["no_gt"]:
        shown = data["no_gt"][:40]
        more = f" ... and {len(data['no_gt']) - 40} more" if len(data["no_gt"]) > 40 else ""
        notes.append(f"no GT ({len(data['no_gt'])} classes, not evaluated, not drawn): " + ", ".join(shown) + more)
    if notes:
        text = "\n".join(textwrap.fill(t, 100) for t in notes)
        ax.annotate(text, xy=(0, 0), xycoords="axes fraction", xytext=(0, -36), textcoords="offset points",
                    va="top", ha="left", fontsize=7, color="#555555")
    if curves:
        ax2 = axes[0][1]
        order = [b[0] for b in bars if b[0] in curves][:MAX_CURVES]
        cmap = plt.get_cmap("tab10")
        for i, key in enumerate(order):
            precision, recall = curves[key]
            label = f"{result.class_names.get(key) or key} ({100 * result.per_class[key]:.1f})"
            ax2.plot(recall, precision, label=label, linewidth=1.4, color=cmap(i % 10))
        ax2.set_xlabel("recall")
        ax2.set_ylabel("precision")
        ax2.set_xlim(0, 1)
        ax2.set_ylim(0, 1.02)
        ax2.grid(alpha=0.3)
        ax2.set_title(f"precision-recall, the {len(order)} classes with the highest {unit}", fontsize=10)
        ax2.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0, frameon=False)
        if height > 8:  # keep the PR panel square-ish at the top of a tall figure
            ax2.set_box_aspect(1)
            ax2.set_anchor("N")
    fig.tight_layout()
    return fig, data


def plot_result(result: EvalResult, path: str) -> dict[str, Any]:
    """Write the AP chart (and PR curves when ``result.curves`` is filled) to ``path``; name it on stderr.
    Returns what it shows (see :func:`ap_bar_data`)."""
    import matplotlib.pyplot as plt

    from partwise.io import atomic_write
    from partwise.progress import wrote

    fig, data = ap_figure(result)
    with atomic_write(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    wrote(path)
    return data
