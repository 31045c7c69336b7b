"""Seconds per stage of ``partwise run`` (:class:`Timings`), filled by the stages and summed over inputs."""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass
class Timings:
    """Seconds spent per stage (summed over inputs)."""

    decode: float = 0.0
    detect: float = 0.0
    pose: float = 0.0
    track: float = 0.0  # tracking, part boxes and kinematic part states
    model: float = 0.0
    write: float = 0.0
    frames: int = 0

    def add(self, other: "Timings") -> None:
        for key in ("decode", "detect", "pose", "track", "model", "write", "frames"):
            setattr(self, key, getattr(self, key) + getattr(other, key))

    @contextmanager
    def timing(self, stage: str):
        """Add the seconds the ``with`` block takes to ``stage``."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            setattr(self, stage, getattr(self, stage) + time.perf_counter() - t0)
