"""Writing video: RGB frames to an MP4 file (libx264 or mpeg4), atomically.

Kept apart from :mod:`partwise.data.video` (reading, indexing, sampling) because writing has other callers (the
annotated video of ``partwise run``, the synthetic generator) and other concerns (colour conversion, encoder
settings for reproducible bytes).
"""
from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import Iterable

import numpy as np

from partwise.io import atomic_write

DEFAULT_FPS = 30  # AVA's frame rate, the default of partwise.data.video too


def _av():
    import av  # imported lazily: the rest of the package does not need FFmpeg to start

    return av


def rgb_to_yuv420p(frame: np.ndarray) -> np.ndarray:
    """BT.601 limited-range YUV 4:2:0 of an ``(H, W, 3)`` uint8 RGB frame (even ``H``, ``W``), as the planar
    ``(H * 3 // 2, W)`` uint8 array PyAV takes for ``yuv420p``: Y rows, then U, then V (chroma averaged over 2x2).

    Integer arithmetic in numpy, so equal frames give equal bytes on every run and machine.
    """
    rgb = frame.astype(np.int32)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = ((66 * r + 129 * g + 25 * b + 128) >> 8) + 16
    h, w = y.shape
    # Chroma of the 2x2 block mean (sum of 4, so scale the rounding constant and shift by 2 more).
    blocks = rgb[0::2, 0::2] + rgb[1::2, 0::2] + rgb[0::2, 1::2] + rgb[1::2, 1::2]
    rs, gs, bs = blocks[..., 0], blocks[..., 1], blocks[..., 2]
    u = ((-38 * rs - 74 * gs + 112 * bs + 512) >> 10) + 128
    v = ((112 * rs - 94 * gs - 18 * bs + 512) >> 10) + 128
    planes = np.concatenate([y.reshape(-1), u.reshape(-1), v.reshape(-1)])
    return np.clip(planes, 0, 255).astype(np.uint8).reshape(h * 3 // 2, w)


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
    ``W`` must be even) or ``mpeg4``. Encoding is single-threaded so the same frames give the same bytes.
    Returns the number of frames written.
    """
    av = _av()
    path = Path(path)
    rate = Fraction(fps).limit_denominator(1001)
    count = 0
    with atomic_write(path, "wb") as fh:
        container = av.open(fh, mode="w", format="mp4")
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
                elif frame.shape[:2] != (stream.height, stream.width):
                    raise ValueError(f"frame {count} is {frame.shape[1]}x{frame.shape[0]}, expected {stream.width}x{stream.height}")
                video_frame = av.VideoFrame.from_ndarray(rgb_to_yuv420p(frame), format="yuv420p")
                video_frame.pts = count
                for packet in stream.encode(video_frame):
                    container.mux(packet)
                count += 1
            if stream is None:
                raise ValueError("no frames to write")
            for packet in stream.encode():
                container.mux(packet)
        finally:
            container.close()
    return count
