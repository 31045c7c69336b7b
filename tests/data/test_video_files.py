"""partwise.data.video on awkward files: frame i is the i-th frame FFmpeg's decoder gives from the start.

Every test video is made here with PyAV; each frame spells its own index in 7 vertical bars (white = 1), which
survives lossy coding, so every check is frame-exact: sequential decoding, random seeks, clip sampling and the
files ``partwise data frames`` writes. The files:

* an MPEG-4 Part 2 (``mpeg4``, DivX/Xvid-style) AVI with B-frames whose first packet has pts 1 -- the shape of
  OpenCV's ``Megamind.avi``, which used to fail with "frame 0 could not be decoded" -- and one whose timestamps
  start at 7, so its header frame count is larger than the frames present;
* variable-frame-rate H.264 in MP4 and in Matroska;
* a Matroska file whose stored pts disagree with the decoder's order (as DivX packed B-frames do);
* an MP4 whose edit list hides its first frames;
* damaged files: FFmpeg's own failure, with its reason, is the only "corrupt".
"""
from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from partwise.cli import main
from partwise.data import video as V
from partwise.errors import InputError
from tests.data.test_video import HEIGHT, WIDTH, _decode, _pattern

# the frames spell their index in 7 bars (tests/data/test_video.py's pattern): one encoder, one reader
pattern, spelled = _pattern, _decode


def encode(path: Path, fmt: str, codec: str, pts: list[int], *, time_base: Fraction | None = None,
           max_b_frames: int = 2, gop: int = 12, intra: tuple[int, ...] = ()) -> Path:
    """Frame k spells k and has timestamp ``pts[k]`` (in ``time_base``, default 1/30 s); frames ``intra`` are
    coded as keyframes."""
    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=30)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.codec_context.gop_size = gop
        stream.codec_context.max_b_frames = max_b_frames
        stream.thread_count = 1
        if time_base is not None:
            stream.codec_context.time_base = time_base
        if codec == "mpeg4":
            stream.codec_context.bit_rate = 3_000_000
        for k, t in enumerate(pts):
            frame = av.VideoFrame.from_ndarray(pattern(k), format="rgb24")
            frame.pts = t
            if k in intra:
                frame.pict_type = av.video.frame.PictureType.I
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def pyav_sequence(path: Path) -> list[int]:
    """What a plain sequential PyAV decode gives: the reference order."""
    with av.open(str(path)) as container:
        return [spelled(f.to_ndarray(format="rgb24")) for f in container.decode(container.streams.video[0])]


def packets(path: Path) -> list:
    with av.open(str(path)) as container:
        return [p for p in container.demux(container.streams.video[0]) if p.size]


N = 90
#: variable frame rate: steps of 20, 33, 50 and 70 ms
VFR_PTS = np.cumsum([0] + [(20, 33, 50, 70)[k % 4] for k in range(N - 1)]).tolist()


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("awkward")
    made = {
        # Two keyframes first, as in Megamind.avi (I I B B P ...).
        "avi": encode(folder / "divx.avi", "avi", "mpeg4", list(range(N)), intra=(0, 1)),
        "avi_offset": encode(folder / "offset.avi", "avi", "mpeg4", list(range(7, 7 + N)), intra=(0, 1)),
        "vfr_mp4": encode(folder / "vfr.mp4", "mp4", "libx264", VFR_PTS, time_base=Fraction(1, 1000)),
        "vfr_mkv": encode(folder / "vfr.mkv", "matroska", "libx264", VFR_PTS, time_base=Fraction(1, 1000)),
        "hidden_start": encode(folder / "edit.mp4", "mp4", "libx264", list(range(-3, N - 3))),
    }
    # Matroska whose stored pts are wrong for some B-frames: the decoder's order is the truth.
    source = encode(folder / "plain.mkv", "matroska", "libx264", list(range(N)))
    made["mislabelled"] = folder / "mislabelled.mkv"
    with av.open(str(source)) as src, av.open(str(made["mislabelled"]), "w", format="matroska") as dst:
        in_stream = src.streams.video[0]
        out_stream = dst.add_stream_from_template(in_stream)
        demuxed = [p for p in src.demux(in_stream) if p.size]
        stamps = [p.pts for p in demuxed]
        for j in range(0, len(demuxed) - 4, 6):
            if not demuxed[j + 2].is_keyframe and not demuxed[j + 3].is_keyframe:
                stamps[j + 2], stamps[j + 3] = stamps[j + 3], stamps[j + 2]
        for packet, stamp in zip(demuxed, stamps):
            packet.pts, packet.dts, packet.stream = stamp, None, out_stream
            dst.mux(packet)
    V._INDEX_CACHE.clear()
    return made


# ---------------------------------------------------------------------------------------------------------------
# The files are what they claim to be


def test_the_avi_is_divx_style_with_b_frames_and_a_late_first_pts(files):
    with av.open(str(files["avi"])) as container:
        stream = container.streams.video[0]
        assert (container.format.name, stream.codec_context.name) == ("avi", "mpeg4")
        kinds = {int(f.pict_type) for f in container.decode(stream)}
    assert int(av.video.frame.PictureType.B) in kinds
    demuxed = packets(files["avi"])
    pts = [p.pts for p in demuxed]
    assert pts[0] == 1 and pts != sorted(pts)  # first pts not 0; B-frames reorder
    later = packets(files["avi_offset"])
    assert later[0].pts >= 7
    with av.open(str(files["avi_offset"])) as container:
        assert container.streams.video[0].frames > N  # the header counts frames that are not there


def test_the_old_seek_trap_is_present(files):
    """Seeking an AVI to its first keyframe's pts lands on a later keyframe: AVI seeks by its dts index."""
    demuxed = packets(files["avi"])
    keys = [p for p in demuxed if p.is_keyframe]
    with av.open(str(files["avi"])) as container:
        stream = container.streams.video[0]
        landed = []
        for key in keys[:4]:
            container.seek(key.pts, stream=stream, backward=True, any_frame=False)
            landed.append(next(container.decode(stream)).pts)
    assert any(got > key.pts for got, key in zip(landed, keys)), landed


def test_the_mislabelled_file_disagrees_with_its_decoder(files):
    with av.open(str(files["mislabelled"])) as container:
        stamps = [f.pts for f in container.decode(container.streams.video[0])]
    assert stamps != sorted(stamps)
    assert pyav_sequence(files["mislabelled"]) == list(range(N))


def test_the_vfr_files_are_variable_rate(files):
    for name in ("vfr_mp4", "vfr_mkv"):
        stamps = sorted(p.pts * p.time_base for p in packets(files[name]))
        steps = {round(float(step) * 1000) for step in np.diff(stamps)}
        assert steps == {20, 33, 50, 70}, (name, steps)


# ---------------------------------------------------------------------------------------------------------------
# Frame-exact reading

ALL = ["avi", "avi_offset", "vfr_mp4", "vfr_mkv", "mislabelled", "hidden_start"]


def expected_sequence(name: str) -> list[int]:
    # The edit list hides the first three encoded frames: frame 0 is the one that spells 3.
    return list(range(3, N)) if name == "hidden_start" else list(range(N))


@pytest.mark.parametrize("name", ALL)
def test_sequential_decoding(files, name):
    V._INDEX_CACHE.clear()
    expected = expected_sequence(name)
    assert pyav_sequence(files[name]) == expected
    info = V.probe(files[name])
    assert (info.width, info.height, info.num_frames) == (WIDTH, HEIGHT, len(expected))
    got = [(i, spelled(f)) for i, f in V.iter_frames(files[name])]
    assert got == list(enumerate(expected))
    assert [spelled(f) for _, f in V.iter_frames(files[name], 5, 40, 3)] == expected[5:40:3]


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("cold", [True, False], ids=["cold", "cached"])
def test_random_seeks(files, name, cold):
    expected = expected_sequence(name)
    rng = np.random.default_rng(3)
    indices = rng.integers(0, len(expected), 25)
    if cold:
        V._INDEX_CACHE.clear()
    singles = [spelled(V.read_frames(files[name], [int(i)])[0]) for i in indices]
    assert singles == [expected[i] for i in indices]
    if cold:
        V._INDEX_CACHE.clear()
    batch = V.read_frames(files[name], np.r_[indices, indices[::-1], [0, len(expected) - 1]])
    assert [spelled(f) for f in batch] == [expected[i] for i in np.r_[indices, indices[::-1], [0, len(expected) - 1]]]


@pytest.mark.parametrize("name", ALL)
def test_clip_sampling(files, name):
    V._INDEX_CACHE.clear()
    expected = expected_sequence(name)
    n = V.probe(files[name]).num_frames
    for center in (0, 1, 13, 44, n - 2):
        for clip_len, interval in ((8, 8), (4, 16), (32, 2)):
            indices = V.clip_around(center, clip_len, interval, n)
            assert [spelled(f) for f in V.read_frames(files[name], indices)] == [expected[i] for i in indices]


# ---------------------------------------------------------------------------------------------------------------
# Times and `partwise data frames`


def test_vfr_times_duration_and_rate(files):
    for name in ("vfr_mp4", "vfr_mkv"):
        times = V.frame_times(files[name])
        np.testing.assert_allclose(times, np.asarray(VFR_PTS) / 1000, atol=1e-9)
        info = V.probe(files[name])
        mean_step = VFR_PTS[-1] / 1000 / (N - 1)
        assert info.fps == pytest.approx(1 / mean_step)
        assert info.duration == pytest.approx(VFR_PTS[-1] / 1000 + mean_step)
    np.testing.assert_allclose(V.frame_times(files["avi"]), np.arange(N) / 30)


def _encode_all(container, stream, make_frame, pts="index", time_base=None) -> None:
    """Encode and mux ``make_frame(k)`` (RGB) for k < N, frame k stamped k (``pts=None``: no stamp), then flush."""
    for k in range(N):
        frame = av.VideoFrame.from_ndarray(make_frame(k), format="rgb24")
        if time_base is not None:
            frame.time_base = time_base
        frame.pts = k if pts == "index" else pts
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)


def test_an_mp4_whose_frames_all_carry_pts_0_keeps_its_coded_rate(tmp_path):
    """Frames encoded without timestamps: the MP4 muxer stores pts 0 for every one, and FFmpeg's average rate (frames
    over their time span) comes out absurd (here 90 frames over 0.1 s: 900 fps). The rate coded in the H.264 stream
    (30 fps) times them instead: ``partwise run`` took one keyframe from 15 s of such a video."""
    path = tmp_path / "no_pts.mp4"
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        # no pts, a time base of their own: as frames re-encoded from a decoder may come
        _encode_all(container, stream, pattern, pts=None, time_base=Fraction(1, 10240))
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert {f.pts for f in container.decode(stream)} == {0} and float(stream.average_rate) > 100
    info = V.probe(path)
    assert (info.fps, info.num_frames) == (30, N) and info.duration == pytest.approx(N / 30)
    np.testing.assert_allclose(V.frame_times(path), np.arange(N) / 30)
    assert [spelled(f) for f in V.read_frames(path, [0, 45, 89])] == [0, 45, 89]


@pytest.mark.parametrize("quarters", [1, 2, 3])
def test_a_video_stored_turned_comes_out_upright(tmp_path, quarters, capsys):
    """A phone stores a portrait video sideways and a display matrix that players (and ``ffmpeg``) turn it back
    by: every reader gives the frames as shown. Stored frames are the upright pattern turned ``quarters`` times
    counter-clockwise, the matrix turns them back."""
    path = tmp_path / f"turned{quarters}.mp4"
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=30)
        stored = np.rot90(pattern(0), quarters)
        stream.width, stream.height, stream.pix_fmt = stored.shape[1], stored.shape[0], "yuv420p"
        stream.set_display_rotation(-90 * quarters)
        _encode_all(container, stream, lambda k: np.ascontiguousarray(np.rot90(pattern(k), quarters)))
    info = V.probe(path)
    assert (info.width, info.height, info.num_frames) == (WIDTH, HEIGHT, N)
    frames = V.read_frames(path, [0, 45, 89, 3])
    assert frames.shape == (4, HEIGHT, WIDTH, 3) and [spelled(f) for f in frames] == [0, 45, 89, 3]
    assert [spelled(f) for _, f in V.iter_frames(path, 10, 20, 5)] == [10, 15]
    code, _, _ = cli(capsys, "data", "frames", path, tmp_path / "jpegs", "--fps", "15")
    assert code == 0 and jpeg_values(tmp_path / "jpegs") == list(range(0, N, 2))


def test_the_video_stream_is_the_one_players_show_not_the_first(tmp_path):
    """A Matroska file whose first video stream is a one-frame cover picture (32x24 MJPEG) before the video:
    the frames are the video's, as FFmpeg's own choice of stream gives."""
    path = tmp_path / "cover_first.mkv"
    with av.open(str(path), "w", format="matroska") as container:
        cover = container.add_stream("mjpeg", rate=1)
        cover.width, cover.height, cover.pix_fmt = 32, 24, "yuvj420p"
        video = container.add_stream("libx264", rate=30)
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        picture = av.VideoFrame.from_ndarray(np.full((24, 32, 3), 128, np.uint8), format="rgb24")
        picture = picture.reformat(format="yuvj420p")
        picture.pts = 0
        for packet in [*cover.encode(picture), *cover.encode()]:
            container.mux(packet)
        _encode_all(container, video, pattern)
    info = V.probe(path)
    assert (info.width, info.height, info.num_frames) == (WIDTH, HEIGHT, N)
    assert [spelled(f) for f in V.read_frames(path, [0, 44, 89])] == [0, 44, 89]


def jpeg_values(folder: Path) -> list[int]:
    return [spelled(np.asarray(Image.open(p).convert("RGB"))) for p in sorted(folder.iterdir())]


def cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("name", ALL)
def test_cli_frames_writes_every_frame_in_order(files, name, tmp_path, capsys):
    V._INDEX_CACHE.clear()
    expected = expected_sequence(name)
    code, out, err = cli(capsys, "data", "frames", files[name], tmp_path / "all", "--no-progress")
    assert code == 0, err
    assert out.strip() == f"wrote {len(expected)} frames to {tmp_path / 'all'}"
    assert sorted(p.name for p in (tmp_path / "all").iterdir())[:2] == ["img_00001.jpg", "img_00002.jpg"]
    assert jpeg_values(tmp_path / "all") == expected


def test_cli_frames_retimes_a_vfr_video_by_its_timestamps(files, tmp_path, capsys):
    times = np.asarray(VFR_PTS) / 1000
    start, end, fps = 0.5, 2.0, 10
    for name in ("vfr_mp4", "vfr_mkv"):
        out = tmp_path / name
        code, _, err = cli(capsys, "data", "frames", files[name], out, "--fps", fps, "--start", start, "--end", end,
                           "--no-progress")
        assert code == 0, err
        # By hand: output slot j (at start + j/fps) shows the last frame whose time, rounded to a slot, is <= j.
        slots = np.floor((times - start) * fps + 0.5)
        expected = [int(np.flatnonzero(slots <= j)[-1]) for j in range(int((end - start) * fps))]
        assert jpeg_values(out) == expected
        window = tmp_path / f"{name}_window"
        code, _, err = cli(capsys, "data", "frames", files[name], window, "--start", start, "--end", end, "--no-progress")
        assert code == 0, err
        assert jpeg_values(window) == np.flatnonzero((times >= start) & (times < end)).tolist()


def test_cli_frames_of_the_avi_at_another_rate(files, tmp_path, capsys):
    code, _, err = cli(capsys, "data", "frames", files["avi"], tmp_path / "f10", "--fps", 10, "--no-progress")
    assert code == 0, err
    assert jpeg_values(tmp_path / "f10") == list(range(0, N, 3))


# ---------------------------------------------------------------------------------------------------------------
# Damaged files: "corrupt" only when FFmpeg fails, with its reason, on one line


def test_truncated_mp4_names_ffmpegs_reason(files, tmp_path, capsys):
    source = tmp_path / "fast.mp4"
    with av.open(str(source), "w", format="mp4", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for k in range(N):
            for packet in stream.encode(av.VideoFrame.from_ndarray(pattern(k), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    data = source.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(InputError) as info:
        V.read_frames(cut, [0])
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(cut))
    assert "corrupt or truncated video: the header lists 90 frames but only" in message
    assert message.endswith("partial file)") and "(FFmpeg: mov: stream 0, offset 0x" in message
    code, _, err = cli(capsys, "data", "frames", cut, tmp_path / "out", "--no-progress")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "partial file" in err
    assert not (tmp_path / "out").exists()


def test_damaged_packet_is_ffmpegs_failure_with_its_reason(tmp_path):
    """One H.264 packet with a broken NAL length: frames before it decode, reading past it is a one-line error."""
    path = tmp_path / "ok.mp4"
    V.write_video(path, np.stack([pattern(k) for k in range(40)]), 30, gop=10)
    with av.open(str(path)) as container:
        offset = [p for p in container.demux(container.streams.video[0]) if p.size][33].pos  # in the GOP 30..39
    data = bytearray(path.read_bytes())
    data[offset:offset + 4] = b"\x7f\xff\xff\xff"
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(bytes(data))
    assert [spelled(f) for f in V.read_frames(damaged, [0, 5, 19, 25])] == [0, 5, 19, 25]
    for call in (lambda: V.read_frames(damaged, [35]), lambda: list(V.iter_frames(damaged))):
        with pytest.raises(InputError) as info:
            call()
        message = str(info.value)
        assert "\n" not in message
        assert "corrupt video: decoding failed near frame" in message
        assert "(FFmpeg: Invalid data found when processing input; h264: " in message


def test_truncated_avi_without_ffmpeg_error_is_read_as_far_as_it_goes(files, tmp_path):
    """An AVI cut short (no index at its end) demuxes and decodes without FFmpeg error: its frames are read; a
    frame past the end says how many the header promised."""
    data = files["avi"].read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) * 3 // 5])
    n = V.probe(cut).num_frames
    assert 0 < n < N
    assert [spelled(f) for _, f in V.iter_frames(cut)][: n - 1] == list(range(n - 1))
    with pytest.raises(InputError, match=rf"frame index {N - 1} out of range \(the video has {n} frames; its header "
                                         rf"lists {N}\)"):
        V.read_frames(cut, [N - 1])


def test_ffmpeg_logging_is_left_as_it_was(files):
    assert av.logging.get_level() is None
    V.read_frames(files["avi"], [3])
    assert av.logging.get_level() is None


# ---------------------------------------------------------------------------------------------------------------
# The real file, when present (Debian's opencv-doc: usr/share/doc/opencv-doc/examples/data/Megamind.avi)


@pytest.mark.skipif(not os.environ.get("PARTWISE_MEGAMIND"), reason="set PARTWISE_MEGAMIND to OpenCV's Megamind.avi")
def test_megamind_is_frame_exact():
    path = Path(os.environ["PARTWISE_MEGAMIND"])
    with av.open(str(path)) as container:
        reference = [f.to_ndarray(format="rgb24") for f in container.decode(container.streams.video[0])]
    V._INDEX_CACHE.clear()
    assert V.probe(path).num_frames == len(reference) == 270
    assert all(np.array_equal(f, reference[i]) for i, f in V.iter_frames(path))
    rng = np.random.default_rng(0)
    for i in rng.integers(0, 270, 20):
        assert np.array_equal(V.read_frames(path, [int(i)])[0], reference[i])
