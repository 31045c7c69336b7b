"""Video decoding, frame-exact reading, clip sampling, frame extraction and encoding (PyAV): the public API.

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

Frames come out upright, as players and ``ffmpeg`` show them: a file stored turned with a display matrix (a phone's
portrait video is stored sideways) is turned back, and :func:`probe` gives the upright width and height. Where the
timestamps cannot be used (every frame stamped 0), the frame rate is the one coded in the stream.

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

Modules
-------
This module re-exports the public names of the modules that implement them, one concern each (imports flow
down this list, never up):

* :mod:`partwise.data.video_sampling`: AVA frame arithmetic and clip sampling (no decoding);
* :mod:`partwise.data.video_ffmpeg`: opening files, FFmpeg's messages as one-line errors;
* :mod:`partwise.data.video_index`: the frame index (demuxed timestamps, or decoding once), cached per file;
* :mod:`partwise.data.video_reader`: frame-exact reading (:func:`read_frames`, :func:`iter_frames`,
  :class:`VideoReader`, :func:`probe`, :func:`frame_times`);
* :mod:`partwise.data.video_extract`: frames to JPEG files;
* :mod:`partwise.data.video_write`: RGB frames to an MP4 file.
"""
from __future__ import annotations

from partwise.data.video_extract import extract_frames
# The index cache is part of the module's state that callers clear (tests start cold with it).
from partwise.data.video_index import _INDEX_CACHE  # noqa: F401
from partwise.data.video_reader import VideoInfo, VideoReader, frame_times, iter_frames, probe, read_frames
from partwise.data.video_sampling import (AVA_FILENAME_TEMPLATE, AVA_FPS, AVA_SHOT_INFO, AVA_TIMESTAMP_END,
                                          AVA_TIMESTAMP_START, ava_clip_indices, ava_kinetics_sampling, clip_around,
                                          frame_filename, sec_to_frame)
from partwise.data.video_write import write_video

__all__ = [
    "AVA_FILENAME_TEMPLATE", "AVA_FPS", "AVA_SHOT_INFO", "AVA_TIMESTAMP_END", "AVA_TIMESTAMP_START", "VideoInfo",
    "VideoReader", "ava_clip_indices", "ava_kinetics_sampling", "clip_around", "extract_frames", "frame_filename",
    "frame_times", "iter_frames", "probe", "read_frames", "sec_to_frame", "write_video",
]
