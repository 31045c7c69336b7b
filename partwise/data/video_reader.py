"""Frame-exact reading: the frame at any index, decoding forward from the nearest seek point, checked frame by
frame and recovering from seeks that land wrong (see "Frame numbering" in :mod:`partwise.data.video`).
"""
from __future__ import annotations

import os
import sys
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from partwise.data.video_ffmpeg import _av, _ffmpeg_log, _open, _reason
from partwise.data.video_index import (_INDEX_CACHE, _NO_PTS, _Index, _build_index, _cache_key, _decoding_index,
                                       _demux_packets, _first_frame_turns, _remember, _turns)
from partwise.errors import InputError


@dataclass(frozen=True)
class VideoInfo:
    """Basic facts about a video stream: size in pixels, frames per second, frame count, duration in seconds."""

    width: int
    height: int
    fps: float
    num_frames: int
    duration: float


def probe(path: str | os.PathLike) -> VideoInfo:
    """Size, fps, exact frame count and duration of the first video stream (demuxes every packet; see "Frame
    numbering" for files whose timestamps cannot be trusted, which are decoded once)."""
    with _borrowed(path) as reader:
        return reader.info()


def frame_times(path: str | os.PathLike) -> np.ndarray:
    """``(num_frames,)`` float64 presentation time of each frame in seconds after frame 0 (from the timestamps;
    ``i / fps`` where the file has none that can be trusted). Variable-frame-rate files have uneven steps."""
    with _borrowed(path) as reader:
        return reader.index.times.copy()


# --------------------------------------------------------------------------------------------------------------
# Decoding


#
# A request names the frames it wants (``_Reader.want``). Frames between them are decoded only as far as the
# codec needs: for codecs whose decoder can drop non-reference pictures without harm to the others
# (``_SKIPPABLE_CODECS``), a packet whose frame nobody wants and that comes before the last wanted frame is sent
# with ``skip_frame=NONREF``, so a B-frame that no other frame refers to is not decoded at all (about 40% of the frames of x264's default GOP, the cost of
# a random seek falling by about as much). Frames are still identified by their pts, and any disagreement while
# skipping turns skipping off for the file before the usual recovery.

#: Codecs where FFmpeg's ``skip_frame=NONREF`` drops exactly the pictures no other picture refers to.
_SKIPPABLE_CODECS = frozenset({"h264", "hevc"})


class _Overshoot(Exception):
    """A seek landed after the wanted keyframe."""


class _Disorder(Exception):
    """Decoded frames do not come out as the index says."""


class _Reindexed(Exception):
    """The file's index was rebuilt by decoding: frame indices may have changed, redo the request."""


class _Reader:
    """One open video and its index: the frame at any index, decoding forward from the nearest seek point.

    Kept open between requests (:class:`VideoReader`, the per-thread cache of :func:`read_frames`), a request for
    a frame ahead of the last one, with no seek point in between, decodes on from where the last one stopped.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.container, self.stream = _open(self.path)
        try:
            self.index, self.used = _build_index(self.path, self.container, self.stream)  # used: read since opened
        except BaseException:
            self.container.close()
            raise
        ctx = self.stream.codec_context
        self.coded_size = (int(ctx.width), int(ctx.height))  # the decoder's frame size (the first frame's)
        self.frames = None  # iterator of (index, frame) from the current start, or None
        self.next = -1  # index of the frame self.frames gives next
        self.attempt = 0  # 0: seek point by pts (or dts), 1: by dts, 2: from the start
        self.origin = "start"  # where self.frames began: "seek" or "start"
        self.wanted: np.ndarray | None = None  # sorted indices the current request wants (None: every frame)
        self.wanted_pts: set | None = None  # their pts, when unwanted non-reference frames may be skipped
        self.skip_below = _NO_PTS  # only packets with a pts below this may be skipped
        self.passed: set = set()  # pts of packets sent with skipping since the last start (may not come out)
        self.skipped = False  # the current self.frames skipped a packet

    def __enter__(self) -> "_Reader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.frames = None
        self.container.close()

    def info(self) -> VideoInfo:
        index = self.index
        return VideoInfo(self.width, self.height, index.fps, index.n, index.duration)

    @property
    def turns(self) -> int:
        """Quarter turns (counter-clockwise) that show the frames upright, as players do: a phone's portrait video
        is stored sideways with a display matrix. Known from the first frame decoded; asked before any, it costs
        the decoding of one."""
        if self.index.turns is None:
            self.index.turns = _first_frame_turns(self.path)
        return self.index.turns

    @property
    def width(self) -> int:
        """Output frame width: upright (see :attr:`turns`)."""
        return self.coded_size[self.turns % 2]

    @property
    def height(self) -> int:
        return self.coded_size[1 - self.turns % 2]

    def rgb(self, frame) -> np.ndarray:
        """A decoded frame as ``(height, width, 3)`` uint8 RGB, upright."""
        if self.index.turns is None:
            self.index.turns = _turns(getattr(frame, "rotation", 0))
        rgb = _to_rgb(frame, *self.coded_size)
        return np.ascontiguousarray(np.rot90(rgb, self.index.turns)) if self.index.turns else rgb

    def want(self, targets: np.ndarray | None) -> None:
        """Declare the sorted frame indices the coming :meth:`frame` calls ask for (None: any, no skipping)."""
        index = self.index
        self.wanted = targets
        skippable = (targets is not None and not index.by_decoding and not index.skip_broken
                     and self.stream.codec_context.name in _SKIPPABLE_CODECS)
        self.wanted_pts = set(index.labels[targets].tolist()) if skippable else None
        # Packets after the last wanted frame are decoded in full: the next request may want them.
        self.skip_below = int(index.labels[targets[-1]]) if skippable and targets.size else _NO_PTS

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
        self.passed, self.skipped = set(), False
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

    def _decoded(self) -> Iterator[object]:
        """The decoder's frames from the current position, leaving out unwanted non-reference frames (see above)."""
        ctx = self.stream.codec_context
        ctx.skip_frame = "DEFAULT"
        skipping, self.skipped = False, False
        for packet in self.container.demux(self.stream):
            wanted, pts = self.wanted_pts, packet.pts
            skip = wanted is not None and pts is not None and pts < self.skip_below and pts not in wanted
            if skip != skipping:
                ctx.skip_frame = "NONREF" if skip else "DEFAULT"
                skipping = skip
            if skip:
                self.passed.add(pts)
                self.skipped = True
            yield from packet.decode()

    def _between(self, first: int, stop: int) -> bool:
        """Whether the current request wants a frame in ``first..stop-1``."""
        wanted = self.wanted
        if wanted is None:
            return True
        j = int(np.searchsorted(wanted, first))
        return j < wanted.size and int(wanted[j]) < stop

    def _decode(self, floor: int, counting: bool) -> Iterator[tuple[int, object]]:
        """``(index, frame)`` for consecutive indices from ``floor`` (unwanted skipped ones left out); raises
        :class:`_Overshoot`, :class:`_Disorder`."""
        index = self.index
        labels, n = index.labels, index.n
        expected = floor
        for frame in self._decoded():
            if counting or (expected < n and frame.pts == labels[expected]):
                i = expected  # the frame due (the usual case: no search)
            else:
                i = index.position(frame.pts)
                if i is None:
                    raise _Disorder(f"a decoded frame has pts {frame.pts}, which no packet has")
                if i < floor and expected == floor:
                    continue  # shown before the keyframe (open GOP) or decoded from an earlier keyframe
                if i != expected and not (self.skipped and i > expected and not self._between(expected, i)):
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
        if self.skipped and not isinstance(problem, _av().error.FFmpegError):
            # Decide with every frame decoded: a file that misleads the skipping is read without it from now on.
            index.skip_broken = True
            self.wanted_pts = None
            return
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
        self.wanted_pts = None
        raise _Reindexed()

    # -- reading

    def frame(self, target: int):
        """The decoded frame (a PyAV ``VideoFrame``) at index ``target``; decodes forward when it is near.

        Raises :class:`_Reindexed` when the index had to be rebuilt (frame indices may have changed)."""
        av = _av()
        with _ffmpeg_log() as logs:
            while True:
                if (self.frames is None or target < self.next
                        or (target > self.next and self._seek_point(target) > self.next)
                        or (self.passed and int(self.index.labels[target]) in self.passed)):
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

    def read(self, indices: np.ndarray) -> np.ndarray:
        """``(T, H, W, 3)`` uint8 RGB frames at ``indices`` (int64, any order, repeats allowed)."""
        while True:
            index = self.index
            bad = indices[(indices < 0) | (indices >= index.n)]
            if bad.size:
                raise _out_of_range(self.path, index, int(bad[0]))
            targets, inverse = np.unique(indices, return_inverse=True)
            out = None  # its frame size is known with the first frame (see turns)
            self.want(targets)
            try:
                with _ffmpeg_log():
                    for k, t in enumerate(targets.tolist()):
                        rgb = self.rgb(self.frame(t))
                        if out is None:
                            out = np.empty((targets.size, *rgb.shape), np.uint8)
                        out[k] = rgb
            except _Reindexed:
                continue
            finally:
                self.want(None)
            if out is None:
                return np.empty((0, self.height, self.width, 3), np.uint8)
            if targets.size == indices.size and np.array_equal(targets, indices):
                return out
            return out[inverse.reshape(-1)]


_RGB_OPTIONS: dict = {}


def _to_rgb(frame, width: int, height: int) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB by FFmpeg's swscale, on the calling thread."""
    if frame.width != width or frame.height != height:  # the stream changed size: keep the first frame's size
        frame = frame.reformat(width=width, height=height)
    if not _RGB_OPTIONS:
        # PyAV >= 13 lets swscale pick a thread count, and then starts fresh threads for every frame, which cost
        # more than the conversion (twice the CPU of a whole decode); older PyAV converts on one thread anyway.
        try:
            rgb = frame.to_ndarray(format="rgb24", threads=1)
        except TypeError:
            _RGB_OPTIONS.update(format="rgb24")
        else:
            _RGB_OPTIONS.update(format="rgb24", threads=1)
            return rgb
    return frame.to_ndarray(**_RGB_OPTIONS)


def _out_of_range(path: Path, index: _Index, bad: int) -> InputError:
    header = f"; its header lists {index.declared}" if index.declared and index.declared != index.n else ""
    return InputError(path, None, f"frame index {bad} out of range (the video has {index.n} frames{header})")


# --------------------------------------------------------------------------------------------------------------
# Readers kept open
#
# read_frames(path, ...) keeps the last few files it read open, per thread, with their decoder and position: a
# data loader asking for many clips of one video pays for opening it once, and a clip after the last one in the
# same GOP decodes on instead of seeking. An entry is used only while its file is unchanged (same size and
# mtime) and its index is the cached one (so clearing _INDEX_CACHE starts cold), and only in the process that
# opened it (a forked worker shares the parent's file offsets: it opens its own).

_OPEN_READERS = threading.local()
_OPEN_READERS_SIZE = 4


def _open_readers() -> "OrderedDict[tuple, _Reader]":
    pid = os.getpid()
    if getattr(_OPEN_READERS, "pid", None) != pid:
        _OPEN_READERS.pid, _OPEN_READERS.readers = pid, OrderedDict()
    return _OPEN_READERS.readers


class _borrowed:
    """``with _borrowed(path) as reader``: a kept-open :class:`_Reader` for ``path`` (or a new one), handed back
    to the per-thread cache after the block when nothing went wrong, closed otherwise."""

    __slots__ = ("key", "reader")

    def __init__(self, path: str | os.PathLike):
        path = Path(path)
        self.key = _cache_key(path)
        readers = _open_readers()
        reader = readers.pop(self.key, None) if self.key is not None else None
        if reader is not None and _INDEX_CACHE.get(self.key) is not reader.index:
            reader.close()
            reader = None
        self.reader = reader if reader is not None else _Reader(path)

    def __enter__(self) -> _Reader:
        return self.reader

    def __exit__(self, exc_type, *exc) -> None:
        reader = self.reader
        if exc_type is not None or self.key is None:
            reader.close()
            return
        key = _cache_key(reader.path)  # the key the index was cached under (a file that changed meanwhile: new)
        readers = _open_readers()
        if key is None or _INDEX_CACHE.get(key) is not reader.index:
            reader.close()
            return
        old = readers.pop(key, None)
        if old is not None:
            old.close()
        readers[key] = reader
        while len(readers) > _OPEN_READERS_SIZE:
            readers.popitem(last=False)[1].close()



def read_frames(path: str | os.PathLike, indices: Sequence[int] | np.ndarray) -> np.ndarray:
    """Frames at 0-based presentation ``indices`` (any order, repeats allowed) as ``(T, H, W, 3)`` uint8 RGB.

    Seeks are frame-exact (see "Frame numbering"): decoding starts at the nearest keyframe before each wanted
    frame (or goes on from the last request's position when that is nearer) and every decoded frame is
    identified. Indices outside ``0..num_frames-1`` raise :class:`InputError`. The file stays open for the next
    call from this thread (a few files per thread); :class:`VideoReader` holds one open explicitly.
    """
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    with _borrowed(path) as reader:
        return reader.read(idx)


class VideoReader:
    """One video kept open for many requests: ``with VideoReader(path) as video: clip = video.read_frames(idx)``.

    The same frames as :func:`read_frames` (frame-exact, ``(T, H, W, 3)`` uint8 RGB), with the container, the
    decoder and the position kept between requests: a request ahead of the last one, with no keyframe in between,
    decodes on without seeking. One per thread (PyAV's decoders are not thread-safe); close it, or use ``with``.
    """

    def __init__(self, path: str | os.PathLike):
        self._reader = _Reader(path)
        self.path = self._reader.path

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __len__(self) -> int:
        return self._reader.index.n

    @property
    def info(self) -> VideoInfo:
        """Size, fps, frame count and duration, as :func:`probe` gives them."""
        return self._reader.info()

    @property
    def num_frames(self) -> int:
        return self._reader.index.n

    def frame_times(self) -> np.ndarray:
        """``(num_frames,)`` float64 seconds after frame 0, as :func:`frame_times` gives them."""
        return self._reader.index.times.copy()

    def read_frames(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Frames at 0-based ``indices`` (any order, repeats allowed) as ``(T, H, W, 3)`` uint8 RGB."""
        return self._reader.read(np.asarray(indices, dtype=np.int64).reshape(-1))

    def close(self) -> None:
        self._reader.close()


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
        i, given = int(start), None  # given: (index, pts label) of the last frame yielded
        recycled = _Recycler()
        while i < (reader.index.n if stop is None else min(int(stop), reader.index.n)):
            if step > 1 and reader.wanted is None:
                end = reader.index.n if stop is None else min(int(stop), reader.index.n)
                reader.want(np.arange(i, end, step, dtype=np.int64))
            try:
                frame = reader.frame(i)
            except _Reindexed:
                # Frames given so far were numbered by timestamps; go on only if decoding numbers them the same.
                labels = reader.index.labels
                if given is not None and not (given[0] < labels.size and labels[given[0]] == given[1]):
                    raise InputError(path, None, f"the video's timestamps disagree with its decoding order: frames "
                                                 f"before {i} were misnumbered; read it again") from None
                reader.want(None)
                continue
            given = (i, _NO_PTS if frame.pts is None else frame.pts)
            yield i, recycled.take(reader.rgb(frame))
            i += step


class _Recycler:
    """Hands out frame arrays, reusing one the caller has let go of (nobody else holds a reference to it).

    A fresh frame-sized array per frame costs more in page faults than in copying: glibc gives freed memory at
    the top of the heap back to the system, and every new array faults its pages in again (this doubled the CPU
    time of a full decode). Arrays still held anywhere (kept in a list, viewed, wrapped by torch) are never
    reused."""

    __slots__ = ("arrays",)

    def __init__(self, size: int = 3):
        self.arrays: list = [None] * size

    def take(self, frame: np.ndarray) -> np.ndarray:
        arrays = self.arrays
        for k in range(len(arrays)):
            held = arrays[k]
            if held is None:
                arrays[k] = frame
                return frame
            # 3 references: the list's, ``held`` and getrefcount's argument.
            if sys.getrefcount(held) == 3 and held.shape == frame.shape:
                np.copyto(held, frame)
                return held
        return frame
