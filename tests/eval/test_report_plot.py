"""The AP chart: sorted bars for classes with ground truth only, the rest listed as "no GT", a baseline line."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from partwise.eval.report import EvalResult, ap_bar_data, ap_figure


def _result() -> EvalResult:
    per_class = {"1": 0.2, "2": float("nan"), "3": 0.9, "4": None, "5": 0.5}
    names = {"1": "walk", "2": "swim", "3": "stand", "4": "fly", "5": "sit"}
    curves = {k: (np.array([1.0, 0.5]), np.array([0.0, 1.0])) for k in ("1", "3", "5")}
    return EvalResult("ava-official", 0.5333, per_class=per_class, class_names=names, curves=curves)


def test_bars_only_for_classes_with_gt_sorted() -> None:
    data = ap_bar_data(_result())
    assert [b[1] for b in data["bars"]] == ["stand", "sit", "walk"]
    assert data["no_gt"] == ["swim", "fly"]


def test_figure_patches_and_baseline(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import matplotlib.pyplot as plt

    result = _result()
    result.baseline = 0.1
    fig, data = ap_figure(result)
    ax = fig.axes[0]
    widths = [p.get_width() for p in ax.patches]
    assert len(widths) == 3 and widths == sorted(widths, reverse=True)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["stand", "sit", "walk"]
    assert any("no GT" in t.get_text() and "swim" in t.get_text() for t in ax.texts)
    assert any(math.isclose(line.get_xdata()[0], 10.0) for line in ax.get_lines())  # the prior at 10 %
    assert fig.axes[1].get_legend() is not None
    plt.close(fig)
    path = tmp_path / "ap.png"
    result.plot(str(path))
    assert path.stat().st_size > 0
    assert f"wrote {path}" in capsys.readouterr().err


def test_many_classes_are_cut_to_best_and_worst() -> None:
    result = EvalResult("hico", 0.2, per_class={str(i): i / 1000 for i in range(1, 601)})
    data = ap_bar_data(result)
    assert len(data["bars"]) == 80 and data["hidden"] == 520
    assert data["bars"][0][2] == 0.6 and data["bars"][-1][2] == 0.001


def test_table_prints_map_in_percent_with_two_decimals() -> None:
    assert _result().format_table().splitlines()[-1] == "mAP: 53.33"
