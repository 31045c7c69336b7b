"""``partwise run``'s per-keyframe stages, each alone (partwise.infer.people, .poses, .tracking, .objects,
.run_models, .rows), the frames shared between the pipeline and the annotated video (inputs._Frames), and the
annotated frame's cached text (draw._draw_text) against Pillow's own drawing."""
from pathlib import Path

import numpy as np
import pytest

from partwise.infer import draw, render
from partwise.infer.inputs import InputItem, Keyframe, _Frames
from partwise.infer.people import KeyframePeople, PeopleSource
from partwise.infer.pipeline import RunOptions
from partwise.infer.poses import KeyframePoses, estimate_poses
from partwise.infer.rows import VideoContext, keyframe_rows
from partwise.infer.objects import keyframe_relations
from partwise.infer.run_models import keyframe_outputs
from partwise.infer.timings import Timings
from partwise.infer.tracking import IoUTracker, track_keyframe


class _NoFrames:
    """A frame source that must not be read."""

    def read(self, indices):
        raise AssertionError("this stage should not read frames")


def test_people_from_a_box_file_are_thresholded_and_in_pixels():
    boxes = {902.0: np.array([[0.1, 0.2, 0.3, 0.6, 0.95], [0.5, 0.5, 0.7, 0.9, 0.5]])}
    source = PeopleSource(RunOptions(box_threshold=0.9), 200, 100, video_boxes=boxes)
    timings = Timings()
    people = source.at(0, Keyframe(2.0, 902.0, 60), _NoFrames(), timings)
    assert isinstance(people, KeyframePeople) and len(people) == 1
    np.testing.assert_allclose(people.boxes, [[20, 20, 60, 60]])
    np.testing.assert_allclose(people.scores, [0.95])
    assert len(source.at(1, Keyframe(3.0, 903.0, 90), _NoFrames(), timings)) == 0  # no boxes at that time


class _Frames3:
    """Three 8x8 frames: the frame index in every pixel."""

    def read(self, indices):
        return np.stack([np.full((8, 8, 3), int(i), np.uint8) for i in np.asarray(indices).reshape(-1)])


class _FakePose:
    """One person walking right 2 px per frame, all 17 keypoints seen; detect_all finds them."""

    def detect_all(self, frame, max_people):
        i = float(frame[0, 0, 0])
        kp = np.column_stack([np.full(17, 10 + 2 * i), np.linspace(0, 40, 17), np.full(17, 0.9)])
        return [(np.array([2 * i, 0, 20 + 2 * i, 40.0]), kp, 0.8)]

    def estimate_many(self, frame, boxes):
        return np.stack([self.detect_all(frame, 1)[0][1] for _ in boxes])


def test_people_then_poses_hand_on_keypoints_states_and_velocity():
    options = RunOptions(pose_fps=5.0, pose_window_s=0.2)  # at 10 fps: the keyframe and 2 frames either side
    timings = Timings()
    kf = Keyframe(1.0, 1.0, 10)
    people = PeopleSource(options, 64, 48, pose=_FakePose()).at(0, kf, _Frames3(), timings)
    assert len(people) == 1 and people.scores[0] == pytest.approx(0.8)
    poses = estimate_poses(_FakePose(), _Frames3(), kf, people.boxes, 10.0, 30, options, timings)
    assert isinstance(poses, KeyframePoses) and poses.frames == 3
    assert poses.keypoints.shape == (1, 17, 3) and poses.keypoints[0, 0, 0] == pytest.approx(30)  # frame 10
    # 2 px per frame at 10 fps, reported per keyframe step (1 s at --fps 1): 20 px
    np.testing.assert_allclose(poses.velocities, [[20, 0]])
    assert timings.pose > 0 and timings.decode > 0
    none = estimate_poses(None, _NoFrames(), kf, people.boxes, 10.0, 30, options, timings)
    assert none.keypoints is None and none.velocities is None and none.kinematic == [{}]
    assert none.keypoints_or_zeros.shape == (1, 17, 3) and not none.keypoints_or_zeros.any()


def test_tracking_stage_keeps_ids_of_people_who_move():
    tracker = IoUTracker()
    boxes = np.array([[0, 0, 10, 30], [100, 0, 110, 30.0]])
    first = track_keyframe(tracker, boxes, None, 1.0)
    # both move 12 px right: more than a body width, within the buffered boxes
    second = track_keyframe(tracker, boxes + [12, 0, 12, 0], None, 1.0)
    assert list(first) == list(second) and len(set(first)) == 2


def test_objects_and_model_stages_without_a_source_read_nothing():
    boxes = np.zeros((2, 4))
    assert keyframe_relations(None, None, np.zeros((2, 17, 3)), np.zeros((2, 10, 4)), boxes) == [[], []]
    assert keyframe_outputs(None, _NoFrames(), 0, 10, boxes, np.zeros((2, 10, 4)), np.zeros((2, 17, 3)),
                            Timings()) is None


def test_rows_stage_writes_one_row_per_person():
    item = InputItem(Path("clip.mp4"), "clip", "video")
    ctx = VideoContext(item, 64, 48, video_label="walking")
    people = KeyframePeople(np.array([[1, 2, 30, 40.0]]), np.array([0.7]))
    poses = KeyframePoses(np.zeros((1, 17, 3)), [{"hip": "stand"}], None, 1)
    parts = np.tile(np.array([1, 2, 30, 40.0]), (1, 10, 1))
    rows = keyframe_rows(ctx, Keyframe(1.0, 901.0, 10), people, poses, np.array([4]), parts, [[]], None,
                         RunOptions())
    (row,) = rows
    assert row["track_id"] == 4 and row["time_s"] == 901.0 and row["frame_index"] == 10
    assert row["pasta"] == ["hip: stand"] and row["pasta_vocab"] == "kinetics-tps"
    assert row["video_label"] == "walking" and row["box_px"] == [1, 2, 30, 40.0]
    assert {p["part"]: p["state"] for p in row["part_boxes"]}["hip"] == "stand"


@pytest.fixture(scope="module")
def small_video(tmp_path_factory):
    from partwise.data.video_write import write_video

    rng = np.random.default_rng(0)
    frames = [np.clip(rng.integers(0, 255, (48, 64, 3)) // 32 * 32 + t, 0, 255).astype(np.uint8)
              for t in range(25)]
    path = tmp_path_factory.mktemp("vid") / "v.mp4"
    write_video(path, frames, 10)
    return path


def test_shared_frames_equal_the_frames_read_by_seeking(small_video, monkeypatch):
    item = InputItem(Path(small_video), "v", "video")
    shared, plain = _Frames(item, share=True), _Frames(item)
    assert shared.share and not plain.share and plain.shared() is None
    indices = np.array([0, 7, 12, 24])
    shared.prefetch(indices)
    plain.prefetch(indices)
    np.testing.assert_array_equal(shared.read(indices), plain.read(indices))
    assert len(shared.shared()) == 25
    from partwise.infer import inputs

    monkeypatch.setattr(inputs, "SHARED_FRAMES_BYTES", 64 * 48 * 3 * 24)  # one frame short: not kept
    assert not _Frames(item, share=True).share


def test_a_photo_with_an_exif_orientation_is_read_upright(tmp_path):
    """A phone stores a portrait photo sideways with EXIF orientation 6 ("turn 90 degrees clockwise to view"):
    ``partwise run`` sees it as viewers show it."""
    from PIL import Image

    upright = np.zeros((60, 40, 3), np.uint8)
    upright[:10] = 255  # a white band at the top
    stored = Image.fromarray(np.ascontiguousarray(np.rot90(upright, 1)))  # turned counter-clockwise: band at left
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(tmp_path / "portrait.png", exif=exif)
    frames = _Frames(InputItem(tmp_path / "portrait.png", "portrait.png", "image"))
    assert (frames.width, frames.height) == (40, 60)
    np.testing.assert_array_equal(frames.image, upright)


def test_annotated_video_from_shared_frames_is_the_same_file(small_video, tmp_path):
    import pyarrow as pa

    from partwise.data import video

    frames = [f for _, f in video.iter_frames(small_video)]
    rows = [{"frame_index": 10, "track_id": 1, "px1": 5.0, "py1": 5.0, "px2": 30.0, "py2": 40.0,
             "pasta": ["hip: stand"], "part_boxes": [], "keypoints": None}]
    table = pa.Table.from_pylist(rows)
    render.render_video(small_video, table, tmp_path / "a.mp4", 10.0)
    render.render_video(small_video, table, tmp_path / "b.mp4", 10.0, frames=frames)
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()


@pytest.mark.parametrize("text,size,fill", [("#3", 14, (230, 25, 75)), ("walk 0.91 – stand", 11, (240, 240, 240)),
                                            ("right hand: hold", 9, (0, 0, 0))])
def test_cached_text_draws_the_pixels_pillow_draws(text, size, fill):
    from PIL import Image, ImageDraw

    base = (np.arange(60 * 200 * 3).reshape(60, 200, 3) % 251).astype(np.uint8)
    ours, theirs = Image.fromarray(base.copy()), Image.fromarray(base.copy())
    draw._draw_text(ImageDraw.Draw(ours), (3, 7), text, size, fill)
    ImageDraw.Draw(theirs).text((3, 7), text, font=draw.font(size), fill=fill)
    assert np.array_equal(np.asarray(ours), np.asarray(theirs))
    assert not np.array_equal(np.asarray(ours), base)  # something was drawn
