"""Opening a video with PyAV and turning FFmpeg's failures into one-line :class:`InputError` reasons.

Shared by the index (:mod:`partwise.data.video_index`) and the reader (:mod:`partwise.data.video_reader`).
"""
from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Sequence

from partwise.errors import InputError


def _av():
    import av  # imported lazily: the rest of the package does not need FFmpeg to start

    return av


_AV_LOG_ERROR = 16  # FFmpeg's AV_LOG_ERROR
_LOG_LOCK = threading.Lock()
_LOG_USERS = 0
_LOG_ENABLED_HERE = False


class _ffmpeg_log:
    """``with _ffmpeg_log() as logs``: FFmpeg's error messages logged by this thread inside the block, as PyAV's
    ``(level, name, message)`` tuples (for one-line error reasons).

    PyAV passes FFmpeg's log on only while a log level is set; when none is (the default), one is set for the
    block and cleared after it, and the captured messages are not printed. When the application set a level,
    the messages are handed on to Python's logging afterwards, as PyAV would.
    """

    __slots__ = ("capture", "logs", "users_level")

    def __enter__(self) -> list:
        global _LOG_USERS, _LOG_ENABLED_HERE
        logging = _av().logging
        with _LOG_LOCK:
            if _LOG_USERS == 0 and logging.get_level() is None:
                logging.set_level(logging.ERROR)
                _LOG_ENABLED_HERE = True
            _LOG_USERS += 1
            self.users_level = None if _LOG_ENABLED_HERE else logging.get_level()
        self.capture = logging.Capture()
        self.logs = self.capture.__enter__()
        return self.logs

    def __exit__(self, *exc) -> None:
        global _LOG_USERS, _LOG_ENABLED_HERE
        logging = _av().logging
        self.capture.__exit__(None, None, None)
        with _LOG_LOCK:
            _LOG_USERS -= 1
            if _LOG_USERS == 0 and _LOG_ENABLED_HERE:
                logging.set_level(None)
                _LOG_ENABLED_HERE = False
        if self.users_level is not None:
            import logging as pylogging

            for level, name, message in self.logs:
                pylogging.getLogger(f"libav.{name or 'generic'}").log(logging.adapt_level(level), str(message).strip())


def _log_line(log) -> str:
    """``"mov: stream 0, offset 0x1c2: partial file"`` from a PyAV log tuple ``(level, name, message)``."""
    _, name, message = log
    message = " ".join(str(message).split())
    name = str(name or "").split(",")[0]
    return f"{name}: {message}" if name else message


def _reason(exc: BaseException | None = None, logs: Sequence = ()) -> str:
    """FFmpeg's reason in one short line: its error text and the last error it logged, e.g.
    ``"FFmpeg: Invalid data found when processing input; h264: Invalid NAL unit size (1352 > 342)."``."""
    parts = []
    if exc is not None:
        text = (getattr(exc, "strerror", None) or str(exc)).strip() or type(exc).__name__
        parts.append(text.splitlines()[0])
    errors = [log for log in logs if log[0] <= _AV_LOG_ERROR]
    log = errors[-1] if errors else getattr(exc, "log", None)
    if log:
        line = _log_line(log)
        if line and line not in parts:
            parts.append(line)
    return "FFmpeg: " + ("; ".join(parts) or "unknown error")[:300]


def _open(path: str | os.PathLike):
    """Open ``path`` for reading; returns ``(container, video_stream)`` or raises :class:`InputError`."""
    av = _av()
    path = Path(path)
    if not path.exists():
        raise InputError(path, None, "no such file")
    if not path.is_file():
        raise InputError(path, None, "not a regular file")
    with _ffmpeg_log() as logs:
        try:
            container = av.open(str(path), mode="r")
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            raise InputError(path, None, f"cannot open as a video ({_reason(exc, logs)})") from None
    if not container.streams.video:
        container.close()
        raise InputError(path, None, "has no video stream")
    # The stream a player shows: FFmpeg's choice (not a cover picture, the largest picture), not merely the first.
    best = getattr(container.streams, "best", None)
    stream = (best("video") if best else None) or container.streams.video[0]
    if not stream.codec_context or not stream.codec_context.width:
        container.close()
        raise InputError(path, None, "video stream has no decodable frames (unknown frame size)")
    # One decoding thread: FFmpeg's automatic slice threads make a forked child (a DataLoader worker) that frees a
    # decoder it inherited wait forever for threads that only exist in the parent. Slice threads rarely help anyway:
    # most encoders write one slice per frame.
    stream.thread_count = 1
    return container, stream


def _fps(stream, timestamps_usable: bool = True) -> float:
    """The stream's frame rate. FFmpeg's average rate is frames over the span of their timestamps: when those are
    unusable (repeated, missing) it is nonsense -- 90 frames all stamped 0 give 2700 fps -- and the rate coded in the
    stream (H.264's timing info, MPEG-4's frame rate) or FFmpeg's guess from it comes first."""
    if timestamps_usable:
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    else:
        rate = stream.codec_context.framerate or stream.guessed_rate or stream.base_rate or stream.average_rate
    return float(rate) if rate else 0.0
