"""Inputs the long fuzz runs found that crash the process (a signal, not an exception), kept as files in
``crashers/`` and run in a child process so that a crash fails the test instead of the test run.

``hico_det_anno_bbox_scipy_crash*.mat``: ``anno_bbox.mat`` of the synthetic HICO-DET data (seed 1) with one byte
inserted into its zlib-compressed variable (fuzz mutation ``non-utf8``, cases 289 and 1801 of seed 1). The inflated
stream ends early while the inner element's tag declares more bytes; ``scipy.io.loadmat`` (1.17) then reads past
its buffer: SIGSEGV / SIGBUS.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CRASHERS = Path(__file__).with_name("crashers")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


@pytest.mark.parametrize("name", sorted(p.name for p in CRASHERS.glob("hico_det_anno_bbox_*.mat")))
@pytest.mark.parametrize("command", ["validate", "ingest"])
def test_hico_det_mat_crasher(tmp_path, name, command):
    folder = tmp_path / "hico_det"
    folder.mkdir()
    shutil.copy(CRASHERS / name, folder / "anno_bbox.mat")
    argv = ["data", "validate", "hico-det", str(folder)] if command == "validate" else [
        "data", "ingest", "hico-det", str(folder), "--out", str(tmp_path / "store"), "--no-progress"]
    proc = subprocess.run([sys.executable, "-m", "partwise", *argv], env=ENV, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2, f"exit {proc.returncode} (negative: killed by signal {-proc.returncode})"
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    # validate lists its problems on stdout (the file named there) and counts them on stderr, as fuzzer.run_case reads it
    assert len(lines) <= 2 and "anno_bbox.mat" in proc.stdout + proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "store").exists()
