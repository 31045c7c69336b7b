"""Video decoding, frame-exact reading, clip sampling, frame extraction and encoding (PyAV).

Frame numbering
---------------
Functions that take frame *indices* (:func:`read_frames`, :func:`iter_frames`, :func:`clip_around`) count frames
0-based in presentation order: index ``i`` is the ``i``-th frame FFmpeg's decoder gives when the file is decoded
from its start (what a player shows; what OpenCV's ``VideoCapture`` counts reading on). This holds for any file
FFmpeg reads: a first timestamp that is not 0, B-frames, DivX packed B-frames, variable frame rate, odd time
bases, missing or wrong frame counts in the header, MP4 edit lists that hide leading frames.

Files whose container stores presentation timestamps (MP4, MOV, MKV, WebM, MPEG-TS/PS, ...) are indexed by
demuxing alone (nothing is decoded). Files whose timestamps are guessed or missing (AVI with a reordering codec,
MPEG-4 Part 2 with B-frames, raw streams) are decoded once from the start to number their frames (cached per
file version in the process; about 4,000 frames a second for 720x528 MPEG-4). Every seek is checked frame by
frame, and a file whose decoder contradicts its timestamps is numbered by decoding instead. :func:`frame_times`
gives each frame's time; a variable-rate file's ``fps`` is its mean rate. Frame *files* follow the dataset
convention ``img_%05d.jpg`` numbered from ``start_index`` (1 for AVA and Kinetics-TPS), so file
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
the problem on one line, from every function here. "Corrupt" means FFmpeg itself failed (to open, demux or decode
the file); the message ends with FFmpeg's reason, e.g. ``(FFmpeg: Invalid data found when processing input;
h264: Error splitting the input into NAL units.)``. A file cut short that FFmpeg reads without error (an AVI
without its index) gives the frames it holds.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from partwise.errors import ConfigError, InputError
from partwise.data.video_write import rgb_to_yuv420p, write_video  # noqa: F401 (public here too)

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
# Opening, FFmpeg's messages


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
    stream = container.streams.video[0]
    if not stream.codec_context or not stream.codec_context.width:
        container.close()
        raise InputError(path, None, "video stream has no decodable frames (unknown frame size)")
    return container, stream


def _fps(stream) -> float:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else 0.0


# --------------------------------------------------------------------------------------------------------------
# Frame indexing
#
# Frame i is the i-th frame FFmpeg's decoder gives when decoding the file from its start. Two ways to find it:
#
# * by timestamps (the fast path, for files whose container stores presentation timestamps: MP4, MOV, MKV, WebM,
#   MPEG-TS, ...): demuxing alone lists every packet's pts; sorted, they are the frames in presentation order, and
#   a decoded frame is identified by its pts. Nothing is decoded to build this index.
# * by decoding (files whose timestamps cannot be trusted: no or repeated pts, containers where libavformat
#   guesses pts from the decoding order (AVI, raw streams) with reordered frames, MPEG-4 Part 2 with reordered
#   frames (DivX "packed B-frames" put two pictures in one packet, so the guessed pts come out shuffled)): the file
#   is decoded once from the start, frame i is the i-th decoded frame, and the pts each frame carries (a label,
#   right or wrong as a time) identifies it after a seek.
#
# Decoding from a seek point is checked frame by frame: frames must come out as consecutive indices from the seek
# point. A seek that lands after the wanted keyframe is retried by dts and then from the start; frames out of
# order switch a timestamp-indexed file to the decoding index (and the request is redone).

_NO_PTS = np.iinfo(np.int64).min
#: AVFMT_NOTIMESTAMPS: the format stores no timestamps (raw elementary streams).
_AVFMT_NOTIMESTAMPS = 0x0080
#: Containers that store only the decoding order: libavformat guesses the pts of frames of reordering codecs.
_GUESSED_PTS_FORMATS = frozenset({"avi"})
#: Codecs whose streams may hold DivX-style packed B-frames (the pts of reordered frames come out shuffled).
_PACKED_B_CODECS = frozenset({"mpeg4"})


@dataclass(eq=False)
class _Index:
    """How the frame indices of one file map to what FFmpeg gives (see "Frame indexing" above)."""

    labels: np.ndarray  # (N,) int64: the pts decoded frame i carries (_NO_PTS: none)
    keys: np.ndarray  # sorted labels that identify a frame (empty: frames are known by counting from the start)
    key_pos: np.ndarray  # frame index of each key
    seek_pos: np.ndarray  # (K,) ascending frame indices decoding can start at (keyframes)
    seek_ts: np.ndarray  # (K, 2) int64 pts and dts of the keyframe packet, to seek to
    times: np.ndarray  # (N,) float64 presentation time of each frame, seconds after frame 0
    fps: float  # the stream's frame rate (the mean rate of a variable-rate stream)
    duration: float
    variable_rate: bool
    by_decoding: bool  # frame order from decoding the file (timestamps not trusted)
    declared: int  # frame count the header lists (0: none)
    seek_by_dts: bool = False  # seeking by pts landed after the keyframe once: seek by dts
    seek_broken: bool = False  # a seek gave frames out of order once: decode from the start

    @property
    def n(self) -> int:
        return int(self.labels.size)

    def position(self, label) -> int | None:
        """Frame index of a decoded frame's pts label; ``None`` when the label names no frame."""
        if label is None or not self.keys.size:
            return None
        j = int(np.searchsorted(self.keys, label))
        return int(self.key_pos[j]) if j < self.keys.size and self.keys[j] == label else None


#: Frame indices of recently opened files, keyed by (path, size, mtime): clip loaders read the same videos often.
_INDEX_CACHE: "OrderedDict[tuple, _Index]" = OrderedDict()
_INDEX_CACHE_SIZE = 64


def _cache_key(path: Path) -> tuple | None:
    try:
        st = path.stat()
        return (str(path.resolve()), st.st_size, st.st_mtime_ns)
    except OSError:
        return None


def _remember(key: tuple | None, index: _Index) -> _Index:
    if key is not None:
        _INDEX_CACHE[key] = index
        _INDEX_CACHE.move_to_end(key)
        while len(_INDEX_CACHE) > _INDEX_CACHE_SIZE:
            _INDEX_CACHE.popitem(last=False)
    return index


def _build_index(path: Path, container, stream) -> tuple[_Index, bool]:
    """The file's index (cached per file version) and whether ``container`` was read to build it."""
    key = _cache_key(path)
    if key is not None and key in _INDEX_CACHE:
        _INDEX_CACHE.move_to_end(key)
        return _INDEX_CACHE[key], False
    return _remember(key, _demux_index(path, container, stream)), True


def _timing(sorted_pts: np.ndarray | None, n: int, stream) -> dict:
    """``times`` (each frame's, s after frame 0), ``fps``, ``duration`` and ``variable_rate`` of a stream; from
    the pts when ``sorted_pts`` is given. A variable-rate stream's fps is its mean rate."""
    fps = _fps(stream)
    time_base = stream.time_base
    if sorted_pts is not None and time_base and n > 1:
        times = (sorted_pts - sorted_pts[0]).astype(np.float64) * float(time_base)
        if not fps and times[-1] > 0:
            fps = (n - 1) / times[-1]
    else:
        times = np.arange(n, dtype=np.float64) / (fps or AVA_FPS)
    timing = {"times": times, "fps": fps, "duration": n / fps if fps else 0.0, "variable_rate": False}
    if fps and n > 2:
        steps = np.diff(times)
        if np.abs(steps * fps - 1).max() > 0.25 and times[-1] > 0:  # not one frame every 1/fps s
            mean_step = times[-1] / (n - 1)
            timing.update(fps=1.0 / mean_step, duration=float(times[-1] + mean_step), variable_rate=True)
    return timing


def _demux_packets(path: Path, container, stream):
    """Every packet's pts, dts (``_NO_PTS``: none), keyframe flag and shown flag (MP4 edit lists hide leading
    frames), in decoding order, and the error messages FFmpeg logged on the way."""
    av = _av()
    pts, dts, key, shown = [], [], [], []
    with _ffmpeg_log() as logs:
        try:
            for packet in container.demux(stream):
                if packet.size == 0:  # the demuxer's end-of-stream flush packet
                    continue
                pts.append(_NO_PTS if packet.pts is None else packet.pts)
                dts.append(_NO_PTS if packet.dts is None else packet.dts)
                key.append(packet.is_keyframe)
                shown.append(not packet.is_discard)
        except av.error.FFmpegError as exc:
            raise InputError(path, None, f"corrupt or truncated video ({_reason(exc, logs)})") from None
        logs = [log for log in logs if log[0] <= _AV_LOG_ERROR]
    return (np.asarray(pts, np.int64), np.asarray(dts, np.int64), np.asarray(key, bool), np.asarray(shown, bool),
            logs)


def _demux_index(path: Path, container, stream) -> _Index:
    """Index by demuxing (no decoding); falls back to :func:`_decoding_index` when timestamps cannot be trusted.

    A file is "truncated" here only when FFmpeg reports an error while demuxing and fewer packets came than the
    header lists; a header count that is merely wrong is ignored.
    """
    pts_a, dts_a, key_a, shown_a, demux_logs = _demux_packets(path, container, stream)
    declared = int(stream.frames or 0)
    if demux_logs and declared > pts_a.size:
        raise InputError(path, None, f"corrupt or truncated video: the header lists {declared} frames but only "
                                     f"{pts_a.size} are present ({_reason(None, demux_logs)})")
    if not pts_a.size:
        detail = f" ({_reason(None, demux_logs)})" if demux_logs else ""
        raise InputError(path, None, f"video stream has no frames{detail}")
    p = pts_a[shown_a]
    fmt, codec = container.format, stream.codec_context.codec
    no_timestamps = bool(int(getattr(fmt, "flags", 0) or 0) & _AVFMT_NOTIMESTAMPS)
    trusted = (not no_timestamps and p.size > 0 and not np.any(p == _NO_PTS) and np.unique(p).size == p.size
               and key_a.any())
    if trusted and fmt.name in _GUESSED_PTS_FORMATS and getattr(codec, "reorder", True):
        trusted = False  # the pts of reordered frames are guesses (H.264 in AVI gets them in decoding order)
    if trusted and codec.name in _PACKED_B_CODECS and np.any(np.diff(p) < 0):
        trusted = False  # DivX packed B-frames shuffle the pts
    if not trusted:
        # Raw streams get timestamps counted from wherever reading starts: after a seek they name the wrong frames.
        return _decoding_index(path, pts_a, dts_a, key_a, declared, seekable=not no_timestamps)

    sorted_p = np.sort(p)
    # Seek points: keyframe packets (hidden ones too: decoding must start there), each at the first frame shown at
    # or after its time; open-GOP frames shown before it come out first after a seek and are skipped.
    k_pts, k_dts = pts_a[key_a], dts_a[key_a]
    ok = k_pts != _NO_PTS
    k_pts, k_dts = k_pts[ok], k_dts[ok]
    k_dts = np.where(k_dts == _NO_PTS, k_pts, np.minimum(k_dts, k_pts))
    order = np.argsort(k_pts, kind="stable")
    k_pts, k_dts = k_pts[order], k_dts[order]
    pos = np.searchsorted(sorted_p, k_pts)
    last = np.r_[pos[1:] != pos[:-1], True] & (pos < sorted_p.size)  # the latest keyframe for each position
    return _Index(labels=sorted_p, keys=sorted_p, key_pos=np.arange(sorted_p.size, dtype=np.int64),
                  seek_pos=pos[last].astype(np.int64), seek_ts=np.stack([k_pts[last], k_dts[last]], axis=1),
                  by_decoding=False, declared=declared, **_timing(sorted_p, sorted_p.size, stream))


def _decoding_index(path: Path, pts: np.ndarray, dts: np.ndarray, key: np.ndarray, declared: int,
                     seekable: bool = True) -> _Index:
    """Index by decoding the whole file once from its start (frame i = the i-th frame the decoder gives).

    Without ``seekable`` (or when the frames' pts cannot name them) every read decodes from the start."""
    av = _av()
    container, stream = _open(path)
    labels = []
    try:
        with _ffmpeg_log() as logs:
            try:
                for frame in container.decode(stream):
                    labels.append(_NO_PTS if frame.pts is None else frame.pts)
            except av.error.FFmpegError as exc:
                raise InputError(path, None, f"corrupt video: decoding failed near frame {len(labels)} "
                                             f"({_reason(exc, logs)})") from None
            if not labels:
                raise InputError(path, None, "no frame could be decoded" + (f" ({_reason(None, logs)})" if logs else ""))
        labels_a = np.asarray(labels, np.int64)
        identifiable = not np.any(labels_a == _NO_PTS) and np.unique(labels_a).size == labels_a.size
        if identifiable:
            order = np.argsort(labels_a, kind="stable")
            keys, key_pos = labels_a[order], order.astype(np.int64)
            k_pts, k_dts = pts[key], dts[key]
            k_dts = np.where(k_dts == _NO_PTS, k_pts, k_dts)
            found = np.isin(k_pts, keys)
            k_pts, k_dts = k_pts[found], k_dts[found]
            pos = key_pos[np.searchsorted(keys, k_pts)]
            order = np.argsort(pos, kind="stable")
            pos, k_pts, k_dts = pos[order], k_pts[order], k_dts[order]
            last = np.r_[pos[1:] != pos[:-1], True]
            seek_pos, seek_ts = pos[last], np.stack([k_pts[last], k_dts[last]], axis=1)
            if not seekable:
                seek_pos, seek_ts = seek_pos[:0], seek_ts[:0]
            # The labels as a set are the frames' times (packed B-frames shuffle them among neighbours).
            timing = _timing(keys, keys.size, stream)
        else:
            keys = key_pos = seek_pos = np.zeros(0, np.int64)
            seek_ts = np.zeros((0, 2), np.int64)
            timing = _timing(None, labels_a.size, stream)
    finally:
        container.close()
    return _Index(labels=labels_a, keys=keys, key_pos=key_pos, seek_pos=seek_pos, seek_ts=seek_ts, by_decoding=True,
                  declared=declared, **timing)


def probe(path: str | os.PathLike) -> VideoInfo:
    """Size, fps, exact frame count and duration of the first video stream (demuxes every packet; see "Frame
    numbering" for files whose timestamps cannot be trusted, which are decoded once)."""
    with _Reader(path) as reader:
        index = reader.index
        ctx = reader.stream.codec_context
        return VideoInfo(int(ctx.width), int(ctx.height), index.fps, index.n, index.duration)


def frame_times(path: str | os.PathLike) -> np.ndarray:
    """``(num_frames,)`` float64 presentation time of each frame in seconds after frame 0 (from the timestamps;
    ``i / fps`` where the file has none that can be trusted). Variable-frame-rate files have uneven steps."""
    with _Reader(path) as reader:
        return reader.index.times.copy()


# --------------------------------------------------------------------------------------------------------------
# Decoding


class _Overshoot(Exception):
    """A seek landed after the wanted keyframe."""


class _Disorder(Exception):
    """Decoded frames do not come out as the index says."""


class _Reindexed(Exception):
    """The file's index was rebuilt by decoding: frame indices may have changed, redo the request."""


class _Reader:
    """One open video and its index: the frame at any index, decoding forward from the nearest seek point."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.container, self.stream = _open(self.path)
        try:
            self.index, self.used = _build_index(self.path, self.container, self.stream)  # used: read since opened
        except BaseException:
            self.container.close()
            raise
        self.frames = None  # iterator of (index, frame) from the current start, or None
        self.next = -1  # index of the frame self.frames gives next
        self.attempt = 0  # 0: seek point by pts (or dts), 1: by dts, 2: from the start
        self.origin = "start"  # where self.frames began: "seek" or "start"

    def __enter__(self) -> "_Reader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.frames = None
        self.container.close()

    # -- starting points

    def _seek_point(self, target: int) -> int:
        """Position of the seek point decoding ``target`` would start from (0: the start of the file)."""
        index = self.index
        if index.seek_broken or not index.seek_pos.size:
            return 0
        k = int(np.searchsorted(index.seek_pos, target, side="right")) - 1
        return int(index.seek_pos[k]) if k >= 0 else 0

    def _start(self, target: int) -> None:
        """Make ``self.frames`` give frames from a starting point at or before ``target``."""
        index = self.index
        k = int(np.searchsorted(index.seek_pos, target, side="right")) - 1
        if self.attempt < 2 and not index.seek_broken and k >= 0:
            pts, dts = (int(t) for t in index.seek_ts[k])
            by_dts = self.attempt == 1 or index.seek_by_dts or index.by_decoding
            try:
                self.container.seek(dts if by_dts else pts, stream=self.stream, backward=True, any_frame=False)
            except _av().error.FFmpegError:
                self.attempt = 2
            else:
                self.used, self.origin = True, "seek"
                self.frames = self._decode(int(index.seek_pos[k]), counting=False)
                self.next = int(index.seek_pos[k])
                return
        if self.used:  # from the start: a freshly opened file is the definition of frame 0
            self.container.close()
            self.container, self.stream = _open(self.path)
        self.used, self.origin = True, "start"
        self.frames = self._decode(0, counting=index.by_decoding)
        self.next = 0

    def _decode(self, floor: int, counting: bool) -> Iterator[tuple[int, object]]:
        """``(index, frame)`` for consecutive indices from ``floor``; raises :class:`_Overshoot`, :class:`_Disorder`."""
        index = self.index
        labels, n = index.labels, index.n
        expected = floor
        for frame in self.container.decode(self.stream):
            if counting or (expected < n and frame.pts == labels[expected]):
                i = expected  # the frame due (the usual case: no search)
            else:
                i = index.position(frame.pts)
                if i is None:
                    raise _Disorder(f"a decoded frame has pts {frame.pts}, which no packet has")
                if i < floor and expected == floor:
                    continue  # shown before the keyframe (open GOP) or decoded from an earlier keyframe
                if i != expected:
                    if expected == floor and i > floor:
                        raise _Overshoot(f"decoding started at frame {i}, not {floor}")
                    raise _Disorder(f"frame {i} came out where frame {expected} was due")
            expected = i + 1
            yield i, frame

    # -- recovery

    def _recover(self, problem: BaseException, logs: list) -> None:
        """Choose the next starting point after ``problem`` (or rebuild the index, or raise)."""
        index, origin = self.index, self.origin
        self.frames = None
        if origin == "seek":
            if isinstance(problem, _Overshoot) and self.attempt == 0 and not index.seek_by_dts and not index.by_decoding:
                index.seek_by_dts = True  # e.g. AVI finds seek points in its dts index
                self.attempt = 1
                return
            if index.by_decoding and isinstance(problem, (_Disorder, _Overshoot)):
                index.seek_broken = True
            self.attempt = 2  # from the start
            return
        if not index.by_decoding and not isinstance(problem, _av().error.FFmpegError):
            self._reindex()
        if isinstance(problem, _av().error.FFmpegError):
            raise InputError(self.path, None, f"corrupt video: decoding failed near frame {self.next} "
                                              f"({_reason(problem, logs)})") from None
        detail = f" ({_reason(None, logs)})" if logs else ""
        raise InputError(self.path, None, f"corrupt video: frame {self.next} could not be decoded{detail}")

    def _reindex(self) -> None:
        """Switch this file to the decoding index and tell the caller to redo its request."""
        container, stream = _open(self.path)
        try:
            pts, dts, key, _, _ = _demux_packets(self.path, container, stream)
        finally:
            container.close()
        index = _decoding_index(self.path, pts, dts, key, self.index.declared)
        self.index = _remember(_cache_key(self.path), index)
        self.attempt = 0
        raise _Reindexed()

    # -- reading

    def frame(self, target: int):
        """The decoded frame (a PyAV ``VideoFrame``) at index ``target``; decodes forward when it is near.

        Raises :class:`_Reindexed` when the index had to be rebuilt (frame indices may have changed)."""
        av = _av()
        with _ffmpeg_log() as logs:
            while True:
                if (self.frames is None or target < self.next
                        or (target > self.next and self._seek_point(target) > self.next)):
                    self._start(target)
                try:
                    while True:
                        i, frame = next(self.frames)
                        self.next = i + 1
                        if i == target:
                            self.attempt = 0
                            return frame
                except (_Overshoot, _Disorder, StopIteration, av.error.FFmpegError) as problem:
                    self._recover(problem, logs)


def _to_rgb(frame, width: int, height: int) -> np.ndarray:
    if frame.width != width or frame.height != height:  # the stream changed size: keep the first frame's size
        frame = frame.reformat(width=width, height=height)
    return frame.to_ndarray(format="rgb24")


def _out_of_range(path: Path, index: _Index, bad: int) -> InputError:
    header = f"; its header lists {index.declared}" if index.declared and index.declared != index.n else ""
    return InputError(path, None, f"frame index {bad} out of range (the video has {index.n} frames{header})")


def read_frames(path: str | os.PathLike, indices: Sequence[int] | np.ndarray) -> np.ndarray:
    """Frames at 0-based presentation ``indices`` (any order, repeats allowed) as ``(T, H, W, 3)`` uint8 RGB.

    Seeks are frame-exact (see "Frame numbering"): decoding starts at the nearest keyframe before each wanted
    frame and every decoded frame is identified. Indices outside ``0..num_frames-1`` raise :class:`InputError`.
    """
    path = Path(path)
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    with _Reader(path) as reader, _ffmpeg_log():
        height, width = int(reader.stream.codec_context.height), int(reader.stream.codec_context.width)
        while True:
            index = reader.index
            bad = idx[(idx < 0) | (idx >= index.n)]
            if bad.size:
                raise _out_of_range(path, index, int(bad[0]))
            if idx.size == 0:
                return np.zeros((0, height, width, 3), np.uint8)
            try:
                decoded = {t: _to_rgb(reader.frame(t), width, height) for t in np.unique(idx).tolist()}
            except _Reindexed:
                continue
            return np.stack([decoded[i] for i in idx.tolist()])


def iter_frames(path: str | os.PathLike, start: int = 0, stop: int | None = None, step: int = 1) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(index, frame)`` for 0-based indices ``start, start+step, ...`` below ``stop`` (default: the end).

    Decodes sequentially from the keyframe before ``start``; ``frame`` is ``(H, W, 3)`` uint8 RGB.
    """
    if step < 1:
        raise ValueError("step must be >= 1")
    if start < 0:
        raise ValueError("start must be >= 0")
    path = Path(path)
    with _Reader(path) as reader:
        height, width = int(reader.stream.codec_context.height), int(reader.stream.codec_context.width)
        i, given = int(start), None  # given: (index, pts label) of the last frame yielded
        while i < (reader.index.n if stop is None else min(int(stop), reader.index.n)):
            try:
                frame = reader.frame(i)
            except _Reindexed:
                # Frames given so far were numbered by timestamps; go on only if decoding numbers them the same.
                labels = reader.index.labels
                if given is not None and not (given[0] < labels.size and labels[given[0]] == given[1]):
                    raise InputError(path, None, f"the video's timestamps disagree with its decoding order: frames "
                                                 f"before {i} were misnumbered; read it again") from None
                continue
            given = (i, _NO_PTS if frame.pts is None else frame.pts)
            yield i, _to_rgb(frame, width, height)
            i += step


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


def _resample(num_frames: int, src_fps: float, dst_fps: float | None, start: float | None, end: float | None,
              times: np.ndarray | None = None, duration: float | None = None) -> np.ndarray:
    """0-based source frame indices of the output frames for time window ``[start, end)`` seconds at ``dst_fps``.

    Constant frame rate (``times`` None): output frame ``j`` shows the source frame nearest to time
    ``start + j/dst_fps`` (FFmpeg ``-r`` picks the nearest frame too); without ``dst_fps`` every source frame in
    the window is kept. Variable frame rate (``times``: each frame's time, ``duration``: the video's): the window
    keeps the frames whose times fall in it, and output frame ``j`` shows the last frame whose time, rounded to
    the output rate, is at or before slot ``j`` (FFmpeg's ``fps`` filter).
    """
    t0 = 0.0 if start is None else max(0.0, float(start))
    if times is None:
        duration = num_frames / src_fps
    elif duration is None:
        duration = float(times[-1]) + 1.0 / src_fps
    t1 = duration if end is None else min(float(end), duration)
    if times is not None:
        if dst_fps is None:
            return np.flatnonzero((times >= t0 - 1e-9) & (times < t1 - 1e-9)).astype(np.int64)
        count = max(0, int(np.ceil((t1 - t0) * dst_fps - 1e-9)))
        slots = np.floor((np.asarray(times, np.float64) - t0) * dst_fps + 0.5)
        return np.clip(np.searchsorted(slots, np.arange(count), side="right") - 1, 0, num_frames - 1).astype(np.int64)
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

    ``fps`` re-times the output like ``ffmpeg -r`` (nearest source frame; by the frames' own times in a
    variable-frame-rate video); ``start``/``end`` (seconds after the first frame) cut a window. The frames go to a
    temporary folder renamed to ``out_dir`` at the end, so ``out_dir`` is either complete or untouched. An
    existing non-empty ``out_dir`` needs ``overwrite=True``. Returns the frame count.
    """
    from PIL import Image
    from tqdm import tqdm

    video_path, out_dir = Path(video_path), Path(out_dir)
    with _Reader(video_path) as reader:
        if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
            raise ConfigError(f"{out_dir}: exists and is not empty (pass overwrite=True to replace it)")
        height, width = int(reader.stream.codec_context.height), int(reader.stream.codec_context.width)
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
        try:
            while True:
                index = reader.index
                vfr = index.variable_rate
                sources = _resample(index.n, index.fps or AVA_FPS, fps, start, end,
                                    times=index.times if vfr else None, duration=index.duration if vfr else None)
                # Decode once, forward; a source frame may feed several outputs.
                positions: dict[int, list[int]] = {}
                for j, s in enumerate(sources.tolist()):
                    positions.setdefault(s, []).append(j)
                bar = tqdm(total=sources.size, desc=f"frames {video_path.name}", unit="frame", disable=not progress)
                try:
                    with _ffmpeg_log():
                        for s in sorted(positions):
                            image = Image.fromarray(_to_rgb(reader.frame(s), width, height))
                            for j in positions[s]:
                                image.save(tmp / name_template.format(start_index + j), format="JPEG", quality=quality)
                                bar.update(1)
                except _Reindexed:  # numbered again by decoding: start over
                    for stale in tmp.iterdir():
                        stale.unlink()
                    continue
                finally:
                    bar.close()
                break
            if out_dir.exists():
                shutil.rmtree(out_dir)
            os.replace(tmp, out_dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return int(sources.size)
