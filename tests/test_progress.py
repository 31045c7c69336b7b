"""Progress output off a terminal: plain lines, no escape codes, no carriage returns (issue 14, item 5)."""
from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from partwise import progress

PLAIN_LINE = re.compile(r"^synth videos: \d+/2 video \(\d+%\) \d+s elapsed$")


def test_plain_progress_in_a_log_file(tmp_path: Path) -> None:
    log = tmp_path / "stderr.log"
    env = dict(os.environ, PARTWISE_PROGRESS_INTERVAL="0", OMP_NUM_THREADS="1")
    env.pop("PARTWISE_PROGRESS", None)
    with open(log, "wb") as err:
        done = subprocess.run([sys.executable, "-m", "partwise", "synth", str(tmp_path / "out"), "--videos", "2",
                               "--seconds", "4", "--size", "64x64", "--no-frames"],
                              stdout=subprocess.DEVNULL, stderr=err, env=env, timeout=300)
    assert done.returncode == 0
    text = log.read_bytes()
    assert b"\x1b[" not in text and b"\r" not in text
    lines = text.decode().splitlines()
    assert [line for line in lines if PLAIN_LINE.match(line)], lines
    assert any(line.startswith("synth videos: 2/2 video (100%)") for line in lines)


def test_plain_bar_rate_limited_and_quiet_when_short() -> None:
    out = io.StringIO()
    bar = progress.PlainProgress(range(1000), desc="work", unit="item", file=out, interval=3600)
    assert sum(1 for _ in bar) == 1000
    assert out.getvalue() == ""  # shorter than one interval: nothing printed
    out = io.StringIO()
    bar = progress.PlainProgress(total=4, desc="work", unit="file", file=out, interval=0)
    bar.update(1)
    bar.set_postfix(loss="0.5")
    bar.update(3)
    bar.close()
    lines = out.getvalue().splitlines()
    assert lines[0] == "work: 1/4 file (25%) 0s elapsed"
    assert lines[-1] == "work: 4/4 file (100%) 0s elapsed, loss=0.5"


def test_bar_off_a_terminal_is_plain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PARTWISE_PROGRESS", raising=False)
    monkeypatch.setattr(progress, "STDERR_TTY", False)
    assert isinstance(progress.bar(range(3), desc="x"), progress.PlainProgress)
    disabled = progress.bar(range(3), desc="x", disable=True)
    assert list(disabled) == [0, 1, 2]
    monkeypatch.setattr(progress, "STDERR_TTY", True)
    from tqdm import tqdm

    assert isinstance(progress.bar(range(3), desc="x", file=io.StringIO()), tqdm)
