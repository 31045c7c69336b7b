"""AVA frame arithmetic and clip sampling (mmaction2 ``SampleAVAFrames``, SlowFast ``sec_to_frame``).

Pure index arithmetic, no decoding; see "AVA clip sampling" in :mod:`partwise.data.video` for the conventions.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from partwise.errors import InputError

#: AVA constants (mmaction2 AVADataset / SlowFast ava_helper).
AVA_FPS = 30
AVA_TIMESTAMP_START = 900
AVA_TIMESTAMP_END = 1800
AVA_SHOT_INFO = (0, 27000)
AVA_FILENAME_TEMPLATE = "img_{:05d}.jpg"


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
