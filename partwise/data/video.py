"""Video decoding, frame-exact reading, clip sampling, frame extraction and encoding (PyAV).

Frame numbering
---------------
Functions that take frame *indices* (:func:`read_frames`, :func:`iter_frames`, :func:`clip_around`) count frames
0-based in presentation order: index ``i`` is the ``i``-th frame a player would show. Frame *files* follow the
dataset convention ``img_%05d.jpg`` numbered from ``start_index`` (1 for AVA and Kinetics-TPS), so file
``img_00001.jpg`` holds frame index 0.

AVA clip sampling (mmaction2 ``SampleAVAFrames``)
-------------------------------------------------
:func:`ava_clip_indices` returns *file numbers* (the ``N`` of ``img_N``), computed as mmaction2 does:

* ``center = fps * (t - timestamp_start) + start_index``;
* raw numbers ``center + (k - L//2) * I`` for ``k = 0..L-1`` (the keyframe sits at position ``L//2``);
* training only: add per-frame jitter drawn from the integers in ``[(-I)//2, (I+1)//2)``;
* clamp to ``[shot_info[0], shot_info[1] - 1]`` and **then add ``start_index`` again**.

With the AVADataset arguments (``start_index=1``, ``shot_info=(0, 27000)``) the keyframe file is
``img_{30(t-900)+2}`` -- one frame later than the nominal ``30(t-900)+1``; e.g. t=902 gives ``img_00062.jpg``.
With the AVAKineticsDataset arguments (``start_index=0``, ``shot_info=(1, 30*(end-start)+1)``,
``timestamp_start=start``; see :func:`ava_kinetics_sampling`) the keyframe file is ``img_{30(t-start)}``.

Errors
------
A missing, unreadable, corrupt or truncated video raises :class:`partwise.errors.InputError` naming the file and
the problem, from every function here.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from collections import OrderedDict
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from partwise.errors import ConfigError, InputError
from partwise.io import atomic_write

#: AVA constants (mmaction2 AVADataset / SlowFast ava_helper).
AVA_FPS = 30
AVA_TIMESTAMP_START = 900
AVA_TIMESTAMP_END = 1800
AVA_SHOT_INFO = (0, 27000)
AVA_FILENAME_TEMPLATE = "img_{:05d}.jpg"


@dataclass(frozen=True)
class VideoInfo:
    """Basic facts about a video stream: size in pixels, frames per second, frame count, duration in seconds."""

    width: int
    height: int
    fps: float
    num_frames: int
    duration: float


# --------------------------------------------------------------------------------------------------------------
# Opening and indexing


def _av():
    import av  # imported lazily: the rest of the package does not need FFmpeg to start

    return av


def _open(path: str | os.PathLike):
    """Open ``path`` for reading; returns ``(container, video_stream)`` or raises :class:`InputError`."""
    av = _av()
    path = Path(path)
    if not path.exists():
        raise InputError(path, None, "no such file")
    if not path.is_file():
        raise InputError(path, None, "not a regular file")
    try:
        container = av.open(str(path), mode="r")
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise InputError(path, None, f"cannot open as a video ({_reason(exc)})") from None
    if not container.streams.video:
        container.close()
        raise InputError(path, None, "has no video stream")
    stream = container.streams.video[0]
    if not stream.codec_context or not stream.codec_context.width:
        container.close()
        raise InputError(path, None, "video stream has no decodable frames (unknown frame size)")
    return container, stream


def _reason(exc: BaseException) -> str:
    text = (getattr(exc, "strerror", None) or str(exc)).strip() or type(exc).__name__
    # FFmpeg errors repeat the file name; keep the message one short line.
    return text.splitlines()[0][:200]


@dataclass(frozen=True)
class _Index:
    """Presentation-order timestamps of every frame and the positions of the keyframes among them."""

    pts: np.ndarray  # (N,) int64, sorted ascending: pts[i] is frame index i
    keyframes: np.ndarray  # (K,) int64, sorted frame indices that are keyframes (decoding can start there)


#: Frame indices of recently opened files, keyed by (path, size, mtime): clip loaders read the same videos often.
_INDEX_CACHE: "OrderedDict[tuple, _Index]" = OrderedDict()
_INDEX_CACHE_SIZE = 64


def _build_index(path: Path, container, stream) -> _Index:
    """Every frame's pts and the keyframes (cached per file version); detects truncated files."""
    try:
        st = path.stat()
        key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    except OSError:
        key = None
    if key is not None and key in _INDEX_CACHE:
        _INDEX_CACHE.move_to_end(key)
        return _INDEX_CACHE[key]
    index = _demux_index(path, container, stream)
    if key is not None:
        _INDEX_CACHE[key] = index
        while len(_INDEX_CACHE) > _INDEX_CACHE_SIZE:
            _INDEX_CACHE.popitem(last=False)
    return index


def _demux_index(path: Path, container, stream) -> _Index:
    """Demux (without decoding) to list every frame's pts; detects truncated files."""
    av = _av()
    pts, key = [], []
    try:
        for packet in container.demux(stream):
            if packet.size == 0:  # the demuxer's end-of-stream flush packet
                continue
            if packet.pts is None:
                raise InputError(path, None, "a video packet has no timestamp; cannot seek frame-exactly")
            pts.append(packet.pts)
            key.append(packet.is_keyframe)
    except av.error.FFmpegError as exc:
        raise InputError(path, None, f"corrupt or truncated video ({_reason(exc)})") from None
    if not pts:
        raise InputError(path, None, "video stream has no frames")
    pts_arr = np.asarray(pts, dtype=np.int64)
    order = np.argsort(pts_arr, kind="stable")
    sorted_pts = pts_arr[order]
    if np.any(np.diff(sorted_pts) == 0):
        raise InputError(path, None, "two frames share one timestamp; the file is damaged")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    keyframes = np.sort(rank[np.asarray(key, dtype=bool)])
    declared = stream.frames
    if declared and declared > sorted_pts.size:
        raise InputError(path, None, f"truncated video: the header lists {declared} frames but only {sorted_pts.size} are present")
    if keyframes.size == 0 or keyframes[0] != 0:
        raise InputError(path, None, "corrupt or truncated video (the first frame is not a keyframe)")
    return _Index(sorted_pts, keyframes)


def _fps(stream) -> float:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else 0.0


def probe(path: str | os.PathLike) -> VideoInfo:
    """Size, fps, exact frame count (by demuxing every packet) and duration of the first video stream."""
    path = Path(path)
    container, stream = _open(path)
    try:
        index = _build_index(path, container, stream)
        fps = _fps(stream)
        num = int(index.pts.size)
        duration = num / fps if fps else float(stream.duration * stream.time_base) if stream.duration else 0.0
        return VideoInfo(int(stream.codec_context.width), int(stream.codec_context.height), fps, num, duration)
    finally:
        container.close()


# --------------------------------------------------------------------------------------------------------------
# Decoding


def _to_rgb(frame) -> np.ndarray:
    return frame.to_ndarray(format="rgb24")


def _decode_targets(path: Path, container, stream, index: _Index, targets: np.ndarray) -> dict[int, np.ndarray]:
    """Decode the frames at the sorted unique indices ``targets``; seeks only when a later keyframe is closer."""
    av = _av()
    out: dict[int, np.ndarray] = {}
    wanted = set(int(t) for t in targets)
    position = -1  # index of the last frame decoded, -1 before any decoding
    floor = 0  # keyframe decoding last started from: frames shown before it (open GOP) lack references
    decoder = None
    for target in targets:
        target = int(target)
        if target in out:
            continue
        start_key = int(index.keyframes[np.searchsorted(index.keyframes, target, side="right") - 1])
        if decoder is None or target <= position or start_key > position + 1:
            try:
                container.seek(int(index.pts[start_key]), stream=stream, backward=True, any_frame=False)
            except av.error.FFmpegError as exc:
                raise InputError(path, None, f"cannot seek to frame {target} ({_reason(exc)})") from None
            decoder = container.decode(stream)
            floor = start_key
        try:
            for frame in decoder:
                i = _frame_position(index, frame)
                if i is None or i < floor:
                    continue
                position = max(position, i)
                if i in wanted and i not in out:
                    out[i] = _to_rgb(frame)
                if i >= target:
                    break
        except av.error.FFmpegError as exc:
            raise InputError(path, None, f"corrupt video: decoding failed near frame {target} ({_reason(exc)})") from None
        if target not in out:
            raise InputError(path, None, f"corrupt or truncated video: frame {target} could not be decoded")
    return out


def _frame_position(index: _Index, frame) -> int | None:
    """0-based index of a decoded frame from its pts; ``None`` for frames the index does not know."""
    if frame.pts is None:
        return None
    i = int(np.searchsorted(index.pts, frame.pts))
    return i if i < index.pts.size and index.pts[i] == frame.pts else None


def read_frames(path: str | os.PathLike, indices: Sequence[int] | np.ndarray) -> np.ndarray:
    """Frames at 0-based presentation ``indices`` (any order, repeats allowed) as ``(T, H, W, 3)`` uint8 RGB.

    Seeks are frame-exact: each frame is identified by its timestamp, decoding starts at the nearest keyframe
    before it. Indices outside ``0..num_frames-1`` raise :class:`InputError`.
    """
    path = Path(path)
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    container, stream = _open(path)
    try:
        index = _build_index(path, container, stream)
        n = index.pts.size
        bad = idx[(idx < 0) | (idx >= n)]
        if bad.size:
            raise InputError(path, None, f"frame index {int(bad[0])} out of range (the video has {n} frames)")
        height, width = int(stream.codec_context.height), int(stream.codec_context.width)
        if idx.size == 0:
            return np.zeros((0, height, width, 3), np.uint8)
        decoded = _decode_targets(path, container, stream, index, np.unique(idx))
        return np.stack([decoded[int(i)] for i in idx])
    finally:
        container.close()


def iter_frames(path: str | os.PathLike, start: int = 0, stop: int | None = None, step: int = 1) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(index, frame)`` for 0-based indices ``start, start+step, ...`` below ``stop`` (default: the end).

    Decodes sequentially from the keyframe before ``start``; ``frame`` is ``(H, W, 3)`` uint8 RGB.
    """
    if step < 1:
        raise ValueError("step must be >= 1")
    av = _av()
    path = Path(path)
    container, stream = _open(path)
    try:
        index = _build_index(path, container, stream)
        n = index.pts.size
        stop = n if stop is None else min(int(stop), n)
        if start >= stop:
            return
        start_key = int(index.keyframes[np.searchsorted(index.keyframes, start, side="right") - 1])
        try:
            container.seek(int(index.pts[start_key]), stream=stream, backward=True, any_frame=False)
            expected = start
            for frame in container.decode(stream):
                i = _frame_position(index, frame)
                if i is None or i < expected:
                    continue
                if i >= stop:
                    break
                if (i - start) % step == 0:
                    if i != expected:
                        raise InputError(path, None, f"corrupt video: frame {expected} could not be decoded")
                    yield i, _to_rgb(frame)
                    expected = i + step
                    if expected >= stop:
                        break
        except av.error.FFmpegError as exc:
            raise InputError(path, None, f"corrupt video: decoding failed ({_reason(exc)})") from None
        if expected < stop:
            raise InputError(path, None, f"corrupt or truncated video: frame {expected} could not be decoded")
    finally:
        container.close()


# --------------------------------------------------------------------------------------------------------------
# AVA frame arithmetic and clip sampling


def sec_to_frame(sec: float | np.ndarray, *, fps: int = AVA_FPS, timestamp_start: int = AVA_TIMESTAMP_START):
    """SlowFast's ``sec_to_frame``: ``(sec - 900) * 30`` (0-based frame index of a keyframe second)."""
    if np.isscalar(sec):
        return (sec - timestamp_start) * fps
    return (np.asarray(sec) - timestamp_start) * fps


def frame_filename(number: int, template: str = AVA_FILENAME_TEMPLATE) -> str:
    """The file name of frame file ``number``: ``frame_filename(62) == "img_00062.jpg"``."""
    return template.format(int(number))


def ava_clip_indices(
    timestamp: int | float,
    clip_len: int,
    frame_interval: int,
    *,
    fps: int = AVA_FPS,
    timestamp_start: int = AVA_TIMESTAMP_START,
    start_index: int = 1,
    shot_info: tuple[int, int] = AVA_SHOT_INFO,
    jitter: bool | Sequence[int] | np.ndarray | None = None,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Frame *file numbers* ``(clip_len,)`` int64 of the clip around keyframe second ``timestamp``.

    Implements mmaction2 ``SampleAVAFrames`` (see the module docstring). The defaults are AVADataset's; use
    :func:`ava_kinetics_sampling` for AVAKineticsDataset's. ``jitter``: ``None``/``False`` for test-time sampling;
    ``True`` for training jitter drawn with ``rng`` (``numpy.random.default_rng()`` if ``None``) uniformly from the
    integers in ``[(-I)//2, (I+1)//2)``; or an explicit ``(clip_len,)`` array of offsets.
    """
    if clip_len < 1 or frame_interval < 1:
        raise ValueError("clip_len and frame_interval must be >= 1")
    center_float = fps * (timestamp - timestamp_start)
    center = int(round(center_float))
    if abs(center - center_float) > 1e-6:
        raise ValueError(f"fps * (timestamp - timestamp_start) = {center_float} is not a whole frame number")
    center += start_index
    numbers = center + (np.arange(clip_len, dtype=np.int64) - clip_len // 2) * frame_interval
    if jitter is True:
        rng = np.random.default_rng() if rng is None else rng
        numbers = numbers + rng.integers((-frame_interval) // 2, (frame_interval + 1) // 2, size=clip_len)
    elif jitter is not None and jitter is not False:
        offsets = np.asarray(jitter, dtype=np.int64).reshape(-1)
        if offsets.size != clip_len:
            raise ValueError(f"jitter has {offsets.size} offsets, expected clip_len={clip_len}")
        numbers = numbers + offsets
    numbers = np.clip(numbers, shot_info[0], shot_info[1] - 1)
    return numbers + start_index


def ava_kinetics_sampling(video_id: str, *, fps: int = AVA_FPS) -> dict:
    """Keyword arguments of :func:`ava_clip_indices` that reproduce mmaction2's AVAKineticsDataset for a video.

    An 11-character id is an AVA video (start/end 900/1800); otherwise ``<ytid>_<start>_<end>`` gives the window.
    Result: ``timestamp_start=start, start_index=0, shot_info=(1, fps*(end-start)+1), fps=fps``.
    """
    if len(video_id) == 11:
        start, end = AVA_TIMESTAMP_START, AVA_TIMESTAMP_END
    else:
        fields = video_id.rsplit("_", 2)
        try:
            start, end = int(fields[1]), int(fields[2])
        except (IndexError, ValueError):
            raise InputError(None, video_id, "an AVA-Kinetics video id must be 11 characters or <ytid>_<start>_<end>") from None
    return {"fps": fps, "timestamp_start": start, "start_index": 0, "shot_info": (1, fps * (end - start) + 1)}


def clip_around(frame_index: int, clip_len: int, frame_interval: int, num_frames: int) -> np.ndarray:
    """0-based indices ``(clip_len,)`` of a clip with ``frame_index`` at position ``clip_len//2``.

    ``frame_index + (k - clip_len//2) * frame_interval`` for ``k = 0..clip_len-1``, clamped to
    ``[0, num_frames-1]`` (the first/last frame repeats at the video ends).
    """
    if num_frames < 1:
        raise ValueError("num_frames must be >= 1")
    offsets = (np.arange(clip_len, dtype=np.int64) - clip_len // 2) * frame_interval
    return np.clip(int(frame_index) + offsets, 0, num_frames - 1)


# --------------------------------------------------------------------------------------------------------------
# Frame extraction and encoding


def _resample(num_frames: int, src_fps: float, dst_fps: float | None, start: float | None, end: float | None) -> np.ndarray:
    """0-based source frame indices of the output frames for time window ``[start, end)`` seconds at ``dst_fps``.

    Output frame ``j`` shows the source frame nearest to time ``start + j/dst_fps`` (FFmpeg ``-r`` picks the
    nearest frame too); without ``dst_fps`` every source frame in the window is kept.
    """
    t0 = 0.0 if start is None else max(0.0, float(start))
    duration = num_frames / src_fps
    t1 = duration if end is None else min(float(end), duration)
    if dst_fps is None or abs(dst_fps - src_fps) < 1e-9:
        first = int(np.ceil(t0 * src_fps - 1e-9))
        last = int(np.ceil(t1 * src_fps - 1e-9))
        return np.arange(first, min(last, num_frames), dtype=np.int64)
    count = max(0, int(np.ceil((t1 - t0) * dst_fps - 1e-9)))
    times = t0 + np.arange(count) / dst_fps
    return np.clip(np.floor(times * src_fps + 0.5).astype(np.int64), 0, num_frames - 1)


def extract_frames(
    video_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    fps: float | None = None,
    start: float | None = None,
    end: float | None = None,
    name_template: str = AVA_FILENAME_TEMPLATE,
    start_index: int = 1,
    quality: int = 95,
    overwrite: bool = False,
    progress: bool = False,
) -> int:
    """Write the frames of ``video_path`` as JPEG files ``out_dir/name_template.format(start_index + j)``.

    ``fps`` re-times the output like ``ffmpeg -r`` (nearest source frame); ``start``/``end`` (seconds) cut a
    window. The frames go to a temporary folder renamed to ``out_dir`` at the end, so ``out_dir`` is either
    complete or untouched. An existing non-empty ``out_dir`` needs ``overwrite=True``. Returns the frame count.
    """
    from PIL import Image
    from tqdm import tqdm

    video_path, out_dir = Path(video_path), Path(out_dir)
    info = probe(video_path)
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise ConfigError(f"{out_dir}: exists and is not empty (pass overwrite=True to replace it)")
    sources = _resample(info.num_frames, info.fps or AVA_FPS, fps, start, end)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    try:
        if sources.size:
            # Decode once, sequentially, over the span the output needs; a source frame may feed several outputs.
            first, last = int(sources.min()), int(sources.max())
            positions: dict[int, list[int]] = {}
            for j, s in enumerate(sources.tolist()):
                positions.setdefault(s, []).append(j)
            bar = tqdm(total=sources.size, desc=f"frames {video_path.name}", unit="frame", disable=not progress)
            for i, frame in iter_frames(video_path, first, last + 1):
                for j in positions.get(i, ()):
                    Image.fromarray(frame).save(tmp / name_template.format(start_index + j), format="JPEG", quality=quality)
                    bar.update(1)
            bar.close()
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return int(sources.size)


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
    fps: float = AVA_FPS,
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
