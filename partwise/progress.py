"""Progress output that suits where stderr goes.

:func:`bar` returns a ``tqdm`` bar when stderr is a terminal, and otherwise a :class:`PlainProgress` that writes a
plain line (``desc: n/total unit (x%) 12s elapsed``) at most every :data:`INTERVAL_S` seconds (and the final
count when it printed any): no escape codes and no carriage returns, so a log file stays readable. ``disable=True`` gives a silent object in both cases.
Set ``PARTWISE_PROGRESS=tty`` or ``=plain`` to force one style (``=off`` silences every bar).
"""
from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any, Iterable

#: seconds between two plain progress lines of one bar (``PARTWISE_PROGRESS_INTERVAL`` overrides; 0: every update)
INTERVAL_S = 5.0


def _interval() -> float:
    try:
        return float(os.environ.get("PARTWISE_PROGRESS_INTERVAL", INTERVAL_S))
    except ValueError:
        return INTERVAL_S


#: set when file descriptor 2 was replaced by a filtering pipe (:func:`partwise.infer.pose.filter_native_stderr`):
#: whether the original stderr is a terminal
STDERR_TTY: bool | None = None


def stderr_is_tty() -> bool:
    if STDERR_TTY is not None:
        return STDERR_TTY
    try:
        return bool(sys.stderr.isatty())
    except (AttributeError, ValueError):
        return False


def bar(iterable: Iterable | None = None, *, desc: str | None = None, total: float | None = None,
        unit: str = "it", disable: bool = False, **kwargs: Any):
    """A progress bar over ``iterable`` (or updated by hand with ``update(n)``); tqdm's common arguments.

    Extra tqdm keyword arguments (``leave``, ``position``, ``dynamic_ncols``, ``initial``, ...) are passed to tqdm
    on a terminal; the plain variant uses ``initial`` and ignores the rest."""
    mode = os.environ.get("PARTWISE_PROGRESS", "").lower()
    if mode == "off":
        disable = True
    if (mode == "tty" or (mode != "plain" and stderr_is_tty())) and not disable:
        from tqdm import tqdm

        return tqdm(iterable, desc=desc, total=total, unit=unit, **kwargs)
    return PlainProgress(iterable, desc=desc, total=total, unit=unit, disable=disable,
                         initial=kwargs.get("initial", 0))


def write(line: str) -> None:
    """Print a line to stderr without breaking a terminal bar."""
    if stderr_is_tty():
        from tqdm import tqdm

        tqdm.write(line, file=sys.stderr)
    else:
        print(line, file=sys.stderr, flush=True)


class PlainProgress:
    """A tqdm look-alike that prints plain lines, at most one per :data:`INTERVAL_S` seconds."""

    def __init__(self, iterable: Iterable | None = None, *, desc: str | None = None, total: float | None = None,
                 unit: str = "it", disable: bool = False, initial: float = 0, file=None,
                 interval: float | None = None):
        self.iterable = iterable
        if total is None and iterable is not None:
            try:
                total = len(iterable)  # type: ignore[arg-type]
            except (TypeError, AttributeError):
                total = None
        self.total = total
        self.desc = desc or ""
        self.unit = unit
        self.disable = disable
        self.n = initial
        self.postfix = ""
        self.file = file
        self.interval = _interval() if interval is None else interval
        self._start = time.monotonic()
        self._last = self._start
        self._printed_n: float | None = None
        self._closed = False
        self._lock = threading.Lock()

    # -- tqdm API
    def __iter__(self):
        if self.iterable is None:
            raise TypeError("PlainProgress without an iterable is updated with update(n)")
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def __len__(self) -> int:
        return int(self.total or 0)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def update(self, n: float = 1) -> None:
        if self.disable:
            return
        with self._lock:
            self.n += n
            now = time.monotonic()
            if now - self._last >= self.interval:
                self._last = now
                self._emit(now)

    def set_postfix(self, ordered_dict=None, refresh: bool = True, **kwargs: Any) -> None:
        items = dict(ordered_dict or {}, **kwargs)
        self.postfix = ", ".join(f"{k}={v}" for k, v in items.items())

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self.postfix = str(s)

    def set_description(self, desc: str | None = None, refresh: bool = True) -> None:
        self.desc = desc or ""

    def refresh(self) -> None:
        pass

    def reset(self, total: float | None = None) -> None:
        self.n = 0
        if total is not None:
            self.total = total
        self._start = self._last = time.monotonic()

    def close(self) -> None:
        if self._closed or self.disable:
            self._closed = True
            return
        self._closed = True
        # the final count, when a line was printed before (work shorter than the interval prints nothing)
        if self._printed_n is not None and self._printed_n != self.n:
            self._emit(time.monotonic())

    @staticmethod
    def write(line: str, file=None, **kwargs: Any) -> None:
        print(line, file=file or sys.stderr, flush=True)

    # -- output
    def line(self, now: float | None = None) -> str:
        elapsed = (time.monotonic() if now is None else now) - self._start
        n = int(self.n) if float(self.n).is_integer() else round(self.n, 2)
        if self.total:
            total = int(self.total) if float(self.total).is_integer() else self.total
            text = f"{n}/{total} {self.unit} ({100 * self.n / self.total:.0f}%)"
        else:
            text = f"{n} {self.unit}"
        head = f"{self.desc}: " if self.desc else ""
        tail = f", {self.postfix}" if self.postfix else ""
        return f"{head}{text} {_duration(elapsed)} elapsed{tail}"

    def _emit(self, now: float) -> None:
        self._printed_n = self.n
        try:
            print(self.line(now), file=self.file or sys.stderr, flush=True)
        except (ValueError, OSError):  # stderr closed
            pass


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def wrote(path) -> None:
    """Name a written file (a picture, a page) on stderr: ``wrote PATH``."""
    write(f"wrote {path}")


def add_verbose_option(parser) -> None:
    """``--verbose``: keep third-party native logging (TensorFlow Lite, absl, glog); sets ``PARTWISE_VERBOSE=1``
    while the arguments are parsed, so that it reaches every process of the run."""
    import argparse

    class _Verbose(argparse.Action):
        def __call__(self, parser, namespace, values, option_string=None):
            os.environ["PARTWISE_VERBOSE"] = "1"
            setattr(namespace, self.dest, True)

    parser.add_argument("--verbose", action=_Verbose, nargs=0, default=False,
                        help="show third-party native log lines (TensorFlow Lite, absl, glog), hidden by default")
