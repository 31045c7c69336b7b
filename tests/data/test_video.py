"""partwise.data.video: frame-exact reading, AVA clip sampling by hand, extraction, encoding, bad files."""
from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from partwise.data import video as V
from partwise.errors import ConfigError, InputError

N_FRAMES = 90
WIDTH, HEIGHT = 64, 48
BITS = 7
BAR = WIDTH // 8


def _pattern(index: int) -> np.ndarray:
    """A frame whose 7 vertical bars spell ``index`` in binary (white = 1): survives lossy compression."""
    frame = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    for bit in range(BITS):
        if (index >> bit) & 1:
            frame[:, bit * BAR:(bit + 1) * BAR] = 255
    frame[:, BITS * BAR:] = 128
    return frame


def _decode(frame: np.ndarray) -> int:
    value = 0
    for bit in range(BITS):
        if frame[4:-4, bit * BAR + 2:(bit + 1) * BAR - 2].mean() > 127:
            value |= 1 << bit
    return value


@pytest.fixture(scope="module")
def coded_video(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("video") / "coded.mp4"
    written = V.write_video(path, np.stack([_pattern(i) for i in range(N_FRAMES)]), 30, gop=7)
    assert written == N_FRAMES
    return path


def _faststart_copy(frames: np.ndarray, path: Path) -> None:
    """An MP4 with its index (moov) at the front, so a truncated copy still opens."""
    with av.open(str(path), "w", format="mp4", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def test_probe(coded_video):
    info = V.probe(coded_video)
    assert (info.width, info.height, info.num_frames) == (WIDTH, HEIGHT, N_FRAMES)
    assert info.fps == pytest.approx(30.0)
    assert info.duration == pytest.approx(3.0)


def test_written_video_has_b_frames_and_short_gop(coded_video):
    # Reordered frames are what makes frame-exact seeking non-trivial; make sure the test exercises it.
    with av.open(str(coded_video)) as container:
        packets = [p for p in container.demux(container.streams.video[0]) if p.size]
    pts = [p.pts for p in packets]
    assert pts != sorted(pts)
    key_positions = sorted(sorted(pts).index(p.pts) for p in packets if p.is_keyframe)
    assert max(np.diff(key_positions)) <= 7


def test_read_frames_random_indices_are_exact(coded_video):
    rng = np.random.default_rng(7)
    indices = rng.integers(0, N_FRAMES, size=60)
    frames = V.read_frames(coded_video, indices)
    assert frames.shape == (60, HEIGHT, WIDTH, 3) and frames.dtype == np.uint8
    assert [_decode(f) for f in frames] == indices.tolist()


def test_read_frames_descending_repeated_and_edges(coded_video):
    indices = [89, 0, 45, 45, 44, 6, 7, 8, 88, 1]
    assert [_decode(f) for f in V.read_frames(coded_video, indices)] == indices
    assert V.read_frames(coded_video, []).shape == (0, HEIGHT, WIDTH, 3)


def test_read_frames_out_of_range(coded_video):
    with pytest.raises(InputError, match=r"frame index 90 out of range \(the video has 90 frames\)"):
        V.read_frames(coded_video, [3, 90])
    with pytest.raises(InputError, match="frame index -1"):
        V.read_frames(coded_video, [-1])


def test_iter_frames(coded_video):
    got = [(i, _decode(f)) for i, f in V.iter_frames(coded_video, 5, 30, 4)]
    assert got == [(i, i) for i in range(5, 30, 4)]
    everything = list(V.iter_frames(coded_video))
    assert [i for i, _ in everything] == list(range(N_FRAMES))
    assert all(_decode(f) == i for i, f in everything)
    assert list(V.iter_frames(coded_video, 95)) == []


# ---------------------------------------------------------------------------------------------------------------
# AVA frame arithmetic: every expected value below is worked out by hand from the SampleAVAFrames rule.


def test_sec_to_frame_and_names():
    assert V.sec_to_frame(902) == 60
    assert V.sec_to_frame(np.array([900, 1798])).tolist() == [0, 26940]
    assert V.sec_to_frame([902, 903]).tolist() == [60, 90]
    assert V.frame_filename(62) == "img_00062.jpg"
    assert V.frame_filename(1, "{:06d}.png") == "000001.png"


def test_ava_keyframe_is_one_frame_late():
    # center = 30*(902-900) + 1 = 61; clamp to [0, 26999]; + start_index 1 -> 62.
    assert V.ava_clip_indices(902, 1, 1).tolist() == [62]
    assert V.frame_filename(V.ava_clip_indices(902, 1, 1)[0]) == "img_00062.jpg"
    assert V.ava_clip_indices(1798, 1, 1).tolist() == [30 * 898 + 2]


def test_ava_clip_4x16_and_8x8():
    # 4x16: raw 61 + (k-2)*16 = 29, 45, 61, 77 -> +1.
    assert V.ava_clip_indices(902, 4, 16).tolist() == [30, 46, 62, 78]
    # 8x8: raw 61 + (k-4)*8 = 29..85 step 8 -> +1; keyframe at position 4.
    clip = V.ava_clip_indices(902, 8, 8)
    assert clip.tolist() == [30, 38, 46, 54, 62, 70, 78, 86]
    assert clip[8 // 2] == 62
    # 32x2 (SlowFast): offsets -32..+30.
    clip = V.ava_clip_indices(905, 32, 2)
    assert clip[0] == 151 - 32 + 1 and clip[-1] == 151 + 30 + 1 and clip[16] == 152


def test_ava_clip_clamps_then_adds_start_index():
    # t=900: raw 1-32, 1-16, 1, 17 -> clamp [0, 26999] -> 0, 0, 1, 17 -> +1.
    assert V.ava_clip_indices(900, 4, 16).tolist() == [1, 1, 2, 18]
    # t=1800: raw 27001 + (k-4)*8 = 26969..27025 -> clamp at 26999 -> +1.
    assert V.ava_clip_indices(1800, 8, 8).tolist() == [26970, 26978, 26986, 26994, 27000, 27000, 27000, 27000]


def test_ava_kinetics_variant():
    args = V.ava_kinetics_sampling("abcdefghijk_000010_000020")
    assert args == {"fps": 30, "timestamp_start": 10, "start_index": 0, "shot_info": (1, 301)}
    # center = 30*(12-10) + 0 = 60 -> keyframe file img_{30(t-start)} = 60.
    assert V.ava_clip_indices(12, 4, 16, **args).tolist() == [28, 44, 60, 76]
    # t=10: raw -32, -16, 0, 16 -> clamp to [1, 300] -> 1, 1, 1, 16 (+0).
    assert V.ava_clip_indices(10, 4, 16, **args).tolist() == [1, 1, 1, 16]
    # 11-character ids are AVA videos inside AVA-Kinetics: 900/1800, still start_index 0.
    ava_args = V.ava_kinetics_sampling("-5KQ66BBWC4")
    assert V.ava_clip_indices(902, 1, 1, **ava_args).tolist() == [60]
    # The two dataset classes disagree by 2 frames on the same AVA keyframe.
    assert V.ava_clip_indices(902, 1, 1)[0] - V.ava_clip_indices(902, 1, 1, **ava_args)[0] == 2
    with pytest.raises(InputError):
        V.ava_kinetics_sampling("not_an_id")


def test_ava_clip_jitter():
    # Explicit offsets are added before clamping.
    assert V.ava_clip_indices(902, 4, 16, jitter=[-3, 0, 2, 7]).tolist() == [27, 46, 64, 85]
    rng = np.random.default_rng(0)
    base = V.ava_clip_indices(950, 4, 16)
    deltas = np.concatenate([V.ava_clip_indices(950, 4, 16, jitter=True, rng=rng) - base for _ in range(400)])
    assert deltas.min() == -8 and deltas.max() == 7  # integers in [-16//2, 17//2) = [-8, 8)
    deltas = np.concatenate([V.ava_clip_indices(950, 4, 3, jitter=True, rng=rng) - V.ava_clip_indices(950, 4, 3)
                             for _ in range(400)])
    assert set(deltas.tolist()) == {-2, -1, 0, 1}  # [(-3)//2, 4//2) = [-2, 2)
    with pytest.raises(ValueError):
        V.ava_clip_indices(902, 4, 16, jitter=[1, 2])


def test_clip_around_clamps_at_both_ends():
    assert V.clip_around(5, 4, 3, 10).tolist() == [0, 2, 5, 8]
    assert V.clip_around(9, 4, 3, 10).tolist() == [3, 6, 9, 9]
    assert V.clip_around(4, 1, 8, 10).tolist() == [4]
    assert V.clip_around(0, 3, 1, 1).tolist() == [0, 0, 0]


# ---------------------------------------------------------------------------------------------------------------
# Extraction and encoding


def _jpeg_value(path: Path) -> int:
    return _decode(np.asarray(Image.open(path).convert("RGB")))


def test_extract_all_frames(coded_video, tmp_path):
    out = tmp_path / "frames"
    assert V.extract_frames(coded_video, out) == N_FRAMES
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"img_{n:05d}.jpg" for n in range(1, N_FRAMES + 1)]
    assert [_jpeg_value(out / f"img_{n:05d}.jpg") for n in (1, 2, 45, 90)] == [0, 1, 44, 89]


def test_extract_retimed_window_and_template(coded_video, tmp_path):
    out = tmp_path / "f10"
    # 10 fps from 30 fps: output k (0-based) shows source frame 3k.
    assert V.extract_frames(coded_video, out, fps=10) == 30
    assert [_jpeg_value(out / f"img_{n:05d}.jpg") for n in (1, 2, 30)] == [0, 3, 87]
    window = tmp_path / "window"
    assert V.extract_frames(coded_video, window, start=1.0, end=2.0, name_template="{:06d}.jpg", start_index=0) == 30
    assert sorted(p.name for p in window.iterdir())[0] == "000000.jpg"
    assert _jpeg_value(window / "000000.jpg") == 30 and _jpeg_value(window / "000029.jpg") == 59


def test_extract_refuses_non_empty_folder(coded_video, tmp_path):
    out = tmp_path / "busy"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(ConfigError, match="not empty"):
        V.extract_frames(coded_video, out, end=0.1)
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    assert V.extract_frames(coded_video, out, end=0.1, overwrite=True) == 3
    assert sorted(p.name for p in out.iterdir()) == ["img_00001.jpg", "img_00002.jpg", "img_00003.jpg"]


def test_write_video_rejects_bad_frames(tmp_path):
    with pytest.raises(ValueError, match="even"):
        V.write_video(tmp_path / "odd.mp4", np.zeros((2, 31, 32, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        V.write_video(tmp_path / "float.mp4", np.zeros((2, 32, 32, 3), np.float32))
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_write_video_is_deterministic_and_mpeg4_works(tmp_path):
    frames = np.stack([_pattern(i) for i in range(20)])
    V.write_video(tmp_path / "a.mp4", frames, 30, gop=5)
    V.write_video(tmp_path / "b.mp4", iter(frames), 30, gop=5)
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()
    V.write_video(tmp_path / "c.mp4", frames, 25, gop=5, codec="mpeg4")
    info = V.probe(tmp_path / "c.mp4")
    assert (info.num_frames, info.fps) == (20, 25.0)
    assert [_decode(f) for f in V.read_frames(tmp_path / "c.mp4", [19, 3, 11])] == [19, 3, 11]


# ---------------------------------------------------------------------------------------------------------------
# Bad files


def _calls(path: Path, tmp_path: Path):
    return {
        "probe": lambda: V.probe(path),
        "read_frames": lambda: V.read_frames(path, [0]),
        "iter_frames": lambda: list(V.iter_frames(path)),
        "extract_frames": lambda: V.extract_frames(path, tmp_path / "out"),
    }


@pytest.fixture
def bad_files(coded_video, tmp_path) -> dict[str, tuple[Path, str]]:
    data = coded_video.read_bytes()
    half = tmp_path / "half.mp4"
    half.write_bytes(data[: len(data) // 2])
    noise = tmp_path / "noise.mp4"
    noise.write_bytes(np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    fast = tmp_path / "fast.mp4"
    _faststart_copy(np.stack([_pattern(i) for i in range(N_FRAMES)]), fast)
    fast_half = tmp_path / "fast_half.mp4"
    raw = fast.read_bytes()
    fast_half.write_bytes(raw[: len(raw) // 2])
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    return {
        "missing": (tmp_path / "nope.mp4", "no such file"),
        "folder": (tmp_path, "not a regular file"),
        "half": (half, "cannot open as a video"),
        "noise": (noise, "cannot open as a video"),
        "empty": (empty, "cannot open as a video"),
        "fast_half": (fast_half, r"truncated video: the header lists 90 frames but only \d+ are present"),
    }


@pytest.mark.parametrize("kind", ["missing", "folder", "half", "noise", "empty", "fast_half"])
def test_bad_files_give_input_error_from_every_function(bad_files, kind, tmp_path):
    path, reason = bad_files[kind]
    for name, call in _calls(path, tmp_path).items():
        with pytest.raises(InputError, match=reason) as info:
            call()
        message = str(info.value)
        assert message.startswith(str(path)), (name, message)
        assert "\n" not in message
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]  # no temp folder left behind


def test_rewritten_file_is_indexed_again(tmp_path):
    path = tmp_path / "v.mp4"
    V.write_video(path, np.stack([_pattern(i) for i in range(12)]), 30, gop=4)
    assert V.probe(path).num_frames == 12
    V.write_video(path, np.stack([_pattern(i) for i in range(40, 60)]), 30, gop=4)
    assert V.probe(path).num_frames == 20
    assert [_decode(f) for f in V.read_frames(path, [19, 0])] == [59, 40]
