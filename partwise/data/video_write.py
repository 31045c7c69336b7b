"""Writing video: RGB frames to an MP4 file (libx264 or mpeg4), atomically.

Kept apart from :mod:`partwise.data.video` (reading, indexing, sampling) because writing has other callers (the
annotated video of ``partwise run``, the synthetic generator) and other concerns (colour conversion, encoder
settings for reproducible bytes).
"""
from __future__ import annotations

import os
import queue
import threading
from fractions import Fraction
from pathlib import Path
from typing import Iterable

import numpy as np

from partwise.io import atomic_write

DEFAULT_FPS = 30  # AVA's frame rate, the default of partwise.data.video too


def _av():
    import av  # imported lazily: the rest of the package does not need FFmpeg to start

    return av


#: frames queued ahead of the encoder thread (bounds memory: a few RGB frames)
ENCODE_QUEUE = 8
_STOP = object()


class _BackgroundEncoder:
    """Converts RGB frames to yuv420p, encodes and muxes them in a thread of its own, in the order they are put, so
    the caller draws the next frames meanwhile (swscale and FFmpeg's encoder run without Python's lock).
    ``finish()`` flushes the encoder and re-raises an error of the thread; ``close()`` stops the thread after an
    error of the caller."""

    def __init__(self, container, stream):
        self._queue: queue.Queue = queue.Queue(maxsize=ENCODE_QUEUE)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, args=(container, stream), name="partwise-encode",
                                        daemon=True)
        self._thread.start()

    def _work(self, container, stream) -> None:
        try:
            while True:
                frame = self._queue.get()
                if frame is _STOP:
                    return
                if frame is not None:
                    frame = frame.reformat(format="yuv420p")  # swscale, without Python's lock: overlaps drawing
                for packet in stream.encode(frame):  # None flushes
                    container.mux(packet)
                if frame is None:
                    return
        except BaseException as exc:  # handed to the caller's thread by put()/finish()
            self._error = exc
            while self._queue.get() not in (None, _STOP):  # never leave the caller blocked on a full queue
                pass

    def put(self, frame) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(frame)

    def finish(self) -> None:
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()


def write_video(
    path: str | os.PathLike,
    frames: np.ndarray | Iterable[np.ndarray],
    fps: float = DEFAULT_FPS,
    *,
    gop: int = 10,
    codec: str = "libx264",
    crf: int = 18,
) -> int:
    """Encode RGB frames (``(T, H, W, 3)`` uint8, or an iterable of ``(H, W, 3)``) to an MP4 file, atomically.

    ``gop`` is the keyframe interval (short GOPs keep seeks cheap); ``codec`` ``libx264`` (yuv420p, so ``H`` and
    ``W`` must be even) or ``mpeg4``. RGB goes to BT.601 limited-range yuv420p through FFmpeg's swscale (5x faster
    than a colour conversion in numpy); conversion and encoding run in a background thread while the next frames are
    produced, and encoding is single-threaded so the same frames give the same bytes. Returns the number of frames
    written.
    """
    av = _av()
    path = Path(path)
    rate = Fraction(fps).limit_denominator(1001)
    count = 0
    with atomic_write(path, "wb") as fh:
        container = av.open(fh, mode="w", format="mp4")
        encoder = None
        try:
            stream = None
            for frame in frames:
                frame = np.asarray(frame)
                if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
                    raise ValueError(f"frames must be (H, W, 3) uint8 RGB, got {frame.shape} {frame.dtype}")
                if stream is None:
                    height, width = frame.shape[:2]
                    if height % 2 or width % 2:
                        raise ValueError(f"yuv420p needs even frame sizes, got {width}x{height}")
                    stream = container.add_stream(codec, rate=rate)
                    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
                    stream.codec_context.gop_size = int(gop)
                    stream.thread_count = 1
                    if codec == "libx264":
                        # No macroblock-tree rate control / lookahead: with them this x264 build gave run-to-run
                        # different bytes for the first GOP of identical input.
                        stream.options = {"crf": str(crf), "preset": "veryfast", "threads": "1",
                                          "x264-params": "mbtree=0:rc-lookahead=0"}
                    else:
                        stream.codec_context.bit_rate = 4_000_000
                    encoder = _BackgroundEncoder(container, stream)
                elif frame.shape[:2] != (stream.height, stream.width):
                    raise ValueError(f"frame {count} is {frame.shape[1]}x{frame.shape[0]}, expected {stream.width}x{stream.height}")
                # from_ndarray copies: the caller may reuse its array; the colour conversion runs in the encoder's
                # thread
                video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
                video_frame.pts = count
                encoder.put(video_frame)
                count += 1
            if stream is None:
                raise ValueError("no frames to write")
            encoder.finish()
        finally:
            if encoder is not None:
                encoder.close()
            container.close()
    return count
