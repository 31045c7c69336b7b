"""Frame indexing: which frame FFmpeg gives is frame ``i`` (by demuxed timestamps, or by decoding once).

See "Frame numbering" in :mod:`partwise.data.video`. Indices are cached per file version in the process.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from partwise.data.video_ffmpeg import _AV_LOG_ERROR, _av, _ffmpeg_log, _fps, _open, _reason
from partwise.data.video_sampling import AVA_FPS
from partwise.errors import InputError

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
    skip_broken: bool = False  # frames came out wrong while unwanted ones were skipped: never skip them again
    # quarter turns counter-clockwise that show the frames upright (the display matrix; 0-3); None: not known yet
    # (it comes with a decoded frame, and a demuxed index decodes none)
    turns: int | None = None

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


def _turns(rotation) -> int:
    """Quarter turns (counter-clockwise, 0-3) of a frame's display rotation in degrees (PyAV's ``frame.rotation``,
    counter-clockwise; absent before PyAV 13: no turn)."""
    return int(round(float(rotation or 0) / 90)) % 4


def _first_frame_turns(path: Path) -> int:
    """:func:`_turns` of the file's first decodable frame (a phone's portrait video is stored sideways with a
    display matrix, which every player and ``ffmpeg`` honour); 0 when none decodes (reading will say why)."""
    av = _av()
    try:
        container, stream = _open(path)
    except InputError:
        return 0
    try:
        with _ffmpeg_log():
            for frame in container.decode(stream):
                return _turns(getattr(frame, "rotation", 0))
    except av.error.FFmpegError:
        pass
    finally:
        container.close()
    return 0


def _timing(sorted_pts: np.ndarray | None, n: int, stream) -> dict:
    """``times`` (each frame's, s after frame 0), ``fps``, ``duration`` and ``variable_rate`` of a stream; from
    the pts when ``sorted_pts`` is given. A variable-rate stream's fps is its mean rate."""
    fps = _fps(stream, timestamps_usable=sorted_pts is not None)
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
    turns = None
    try:
        with _ffmpeg_log() as logs:
            try:
                for frame in container.decode(stream):
                    labels.append(_NO_PTS if frame.pts is None else frame.pts)
                    if turns is None:
                        turns = _turns(getattr(frame, "rotation", 0))
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
                  declared=declared, turns=turns, **timing)
