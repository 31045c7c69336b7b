"""Frame extraction: a video's frames as numbered JPEG files (``partwise data frames``), written atomically."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from partwise.data.video_ffmpeg import _ffmpeg_log
from partwise.data.video_reader import _Reader, _Reindexed
from partwise.data.video_sampling import AVA_FILENAME_TEMPLATE, AVA_FPS
from partwise.errors import ConfigError




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
                reader.want(np.asarray(sorted(positions), np.int64))
                bar = tqdm(total=sources.size, desc=f"frames {video_path.name}", unit="frame", disable=not progress)
                try:
                    with _ffmpeg_log():
                        for s in sorted(positions):
                            image = Image.fromarray(reader.rgb(reader.frame(s)))
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
