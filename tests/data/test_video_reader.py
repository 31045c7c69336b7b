"""partwise.data.video kept open: VideoReader, the per-thread readers of read_frames, decoding on without seeking,
unwanted non-reference frames left undecoded, iter_frames reusing the arrays its caller let go of."""
from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import av
import numpy as np
import pytest

from partwise.data import video as V
from partwise.data import video_reader
from partwise.errors import InputError
from tests.data.test_video import _decode, _pattern, bad_files, coded_video  # noqa: F401 (fixtures)

N = 120  # the pattern spells 7 bits
GOP = 40


@pytest.fixture(scope="module")
def b_frames(tmp_path_factory) -> Path:
    """H.264 the way cameras and x264's defaults write it: B-frames (non-reference ones among them), long GOP."""
    path = tmp_path_factory.mktemp("reader") / "bframes.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.gop_size = GOP
        stream.options = {"bframes": "3", "b-pyramid": "normal", "keyint_min": str(GOP), "sc_threshold": "0",
                          "threads": "1"}
        for i in range(N):
            for packet in stream.encode(av.VideoFrame.from_ndarray(_pattern(i), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _values(frames: np.ndarray) -> list[int]:
    return [_decode(f) for f in frames]


def test_the_file_has_frames_a_decoder_may_leave_out(b_frames):
    with av.open(str(b_frames)) as container:
        stream = container.streams.video[0]
        stream.codec_context.skip_frame = "NONREF"
        decoded = sum(1 for _ in container.decode(stream))
    assert decoded < N - 20  # many non-reference B-frames: what skipping saves
    assert V.probe(b_frames).num_frames == N


def test_sparse_requests_are_exact_and_skip_unwanted_frames(b_frames):
    rng = np.random.default_rng(5)
    with V.VideoReader(b_frames) as reader:
        assert len(reader) == reader.num_frames == N
        assert reader.info == V.probe(b_frames)
        np.testing.assert_allclose(reader.frame_times(), np.arange(N) / 30)
        for _ in range(30):
            indices = rng.integers(0, N, rng.integers(1, 9))
            assert _values(reader.read_frames(indices)) == indices.tolist()
        reader.read_frames([GOP - 1])  # the last frame of a GOP: decoding passes the GOP's other frames
        assert reader._reader.passed  # packets were sent to be skipped if non-reference
        for clip_len, interval in ((8, 8), (32, 2), (4, 16)):
            for center in (0, 37, 99, N - 1):
                indices = V.clip_around(center, clip_len, interval, N)
                assert _values(reader.read_frames(indices)) == indices.tolist()


def test_a_frame_passed_over_by_an_earlier_request_is_decoded_when_asked_for(b_frames):
    with V.VideoReader(b_frames) as reader:
        for first, then in [(10, 11), (20, 21), (30, 31), (12, 13), (40, 41), (60, 62), (71, 72)]:
            assert _values(reader.read_frames([first])) == [first]
            assert _values(reader.read_frames([then, first])) == [then, first]
        # every frame, one request each, in order: every request decodes on from the last
        assert [_values(reader.read_frames([i]))[0] for i in range(N)] == list(range(N))


def test_a_request_ahead_in_the_same_gop_decodes_on_without_seeking(b_frames):
    with V.VideoReader(b_frames) as reader:
        seeks = []  # each time decoding starts again from a seek point
        original = reader._reader._start
        reader._reader._start = lambda target: (seeks.append(target), original(target))[1]
        assert _values(reader.read_frames(range(42, 50))) == list(range(42, 50))
        assert len(seeks) == 1
        assert _values(reader.read_frames(range(52, 60))) == list(range(52, 60))
        assert _values(reader.read_frames([75])) == [75]
        assert len(seeks) == 1  # 52..75 lie in the GOP that 42 started (40..79)
        assert _values(reader.read_frames([100])) == [100]  # next GOP: a seek
        assert _values(reader.read_frames([45])) == [45]  # behind: a seek
        assert len(seeks) == 3


def test_iter_frames_with_a_step_skips_and_stays_exact(b_frames):
    assert [(i, _decode(f)) for i, f in V.iter_frames(b_frames, 3, None, 7)] == [(i, i) for i in range(3, N, 7)]


def test_read_frames_keeps_the_file_open_until_it_changes(tmp_path, monkeypatch):
    path = tmp_path / "v.mp4"
    V.write_video(path, np.stack([_pattern(i) for i in range(30)]), 30, gop=10)
    opened = []
    real_open = video_reader._open
    monkeypatch.setattr(video_reader, "_open", lambda p: (opened.append(p), real_open(p))[1])
    assert _values(V.read_frames(path, [3, 4])) == [3, 4]
    assert V.probe(path).num_frames == 30
    assert _values(V.read_frames(path, [5])) == [5]
    assert len(opened) == 1
    V._INDEX_CACHE.clear()  # cold again: opened and indexed afresh
    assert _values(V.read_frames(path, [29])) == [29]
    assert len(opened) == 2
    V.write_video(path, np.stack([_pattern(i) for i in range(50, 70)]), 30, gop=10)
    assert _values(V.read_frames(path, [0, 19])) == [50, 69]
    assert len(opened) == 3
    path.write_bytes(b"not a video any more")
    with pytest.raises(InputError, match="cannot open as a video") as info:
        V.read_frames(path, [0])
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)


def test_kept_open_readers_are_per_thread(b_frames):
    V.read_frames(b_frames, [0])
    results, errors = {}, []

    def work(seed: int) -> None:
        try:
            indices = np.random.default_rng(seed).integers(0, N, 40)
            results[seed] = (_values(np.concatenate([V.read_frames(b_frames, [i]) for i in indices])),
                             indices.tolist())
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert all(got == want for got, want in results.values()) and len(results) == 3


def _child_reads(path: str) -> list[int]:
    return _values(V.read_frames(path, [110, 7, 75]))


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
def test_a_forked_worker_opens_its_own_reader(b_frames):
    # The parent's kept-open reader shares its file offset with a forked child: the child must not use it.
    assert _values(V.read_frames(b_frames, [60])) == [60]
    with multiprocessing.get_context("fork").Pool(2) as pool:
        got = pool.map(_child_reads, [str(b_frames)] * 4)
    assert got == [[110, 7, 75]] * 4
    assert _values(V.read_frames(b_frames, [61, 119])) == [61, 119]


def test_iter_frames_never_reuses_an_array_still_held(b_frames):
    held = []
    views = []
    for i, frame in V.iter_frames(b_frames, 0, 40):
        if i % 3 == 0:
            held.append(frame)
        elif i % 3 == 1:
            views.append(frame[:, :, 0])
    assert _values(np.stack(held)) == list(range(0, 40, 3))
    assert [_decode(np.repeat(v[:, :, None], 3, axis=2)) for v in views] == list(range(1, 40, 3))
    assert len({id(f) for f in held}) == len(held)


@pytest.mark.parametrize("kind", ["missing", "folder", "half", "noise", "empty", "fast_half"])
def test_video_reader_on_bad_files(bad_files, kind):  # noqa: F811
    path, reason = bad_files[kind]
    with pytest.raises(InputError, match=reason) as info:
        with V.VideoReader(path) as reader:
            reader.read_frames([0, 1])
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)


_FORK_SCRIPT = """
import gc, os, sys, time
import numpy as np
from partwise.data import video as V, video_reader
real = sys.argv[1]
first = V.read_frames(real, [60])
pid = os.fork()
if pid == 0:
    code = 1
    try:
        video_reader._open_readers()  # the child's own cache: the inherited one is dropped
        gc.collect()
        code = 0 if np.array_equal(V.read_frames(real, [60]), first) else 1
    finally:
        os._exit(code)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_that_drops_inherited_readers_does_not_hang():
    # The child's first read replaces the inherited per-thread cache and frees the inherited decoder: one with
    # FFmpeg's slice threads (as a real 768x576 H.264 file gets by default) waited forever there for threads that
    # only exist in the parent. A fresh process, so that no other test's threads are forked along.
    real = Path(__file__).resolve().parents[2] / "examples" / "real" / "vtest_0000_0149.mp4"
    proc = subprocess.Popen([sys.executable, "-c", _FORK_SCRIPT, str(real)], stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        _, stderr = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the hung child too
        proc.communicate()
        pytest.fail("the forked child hung freeing the parent's decoders")
    assert proc.returncode == 0, stderr[-2000:]
