import numpy as np

from partwise.infer.tracking import IoUTracker, iou_matrix, track_sequence


def test_iou_matrix_by_hand():
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 10, 10]])
    assert np.allclose(iou_matrix(a, b), [[50 / 150, 0, 1]])


def crossing_people(steps=12):
    """Person A walks right, person B walks left, crossing in the middle (boxes overlap heavily there); the
    detections come in a shuffled order each step."""
    rng = np.random.default_rng(0)
    frames, truth = [], []
    for t in range(steps):
        a = np.array([10 + 10 * t, 20, 50 + 10 * t, 120], float)
        b = np.array([130 - 10 * t, 25, 170 - 10 * t, 125], float)
        boxes = np.stack([a, b]) + rng.normal(scale=0.5, size=(2, 4))
        order = rng.permutation(2)
        frames.append(boxes[order])
        truth.append(np.array(["A", "B"])[order])
    return frames, truth


def test_ids_constant_for_people_who_cross():
    frames, truth = crossing_people()
    ids = track_sequence(frames)
    mapping = {}
    for frame_ids, frame_truth in zip(ids, truth):
        for track_id, person in zip(frame_ids, frame_truth):
            assert mapping.setdefault(person, track_id) == track_id
    assert len(set(mapping.values())) == 2


def test_motion_prediction_resolves_a_crossing_that_plain_iou_swaps():
    # A moves +4 px per step from x=0, B -4 px from x=20; at step 3 B's box equals A's box of step 2 exactly.
    steps = [np.array([[4 * t, 0, 4 * t + 10, 10], [20 - 4 * t, 0, 30 - 4 * t, 10]], float) for t in range(4)]
    with_motion = track_sequence(steps)
    assert [ids.tolist() for ids in with_motion] == [[1, 2]] * 4
    plain = track_sequence(steps, use_motion=False)
    assert [ids.tolist() for ids in plain] == [[1, 2]] * 3 + [[2, 1]]  # plain IoU gives A's id to B


def test_new_people_and_track_expiry():
    tracker = IoUTracker(max_age=1)
    assert tracker.update([[0, 0, 10, 10]]).tolist() == [1]
    assert tracker.update([[0, 0, 10, 10], [50, 50, 60, 60]]).tolist() == [1, 2]
    assert tracker.update([[50, 50, 60, 60]]).tolist() == [2]       # 1 unseen once
    assert tracker.update([]).tolist() == []                          # 1 unseen twice -> gone; 2 once
    assert tracker.update([[0, 0, 10, 10], [50, 50, 60, 60]]).tolist() == [3, 2]


def test_a_person_who_turns_back_keeps_the_id():
    # A walks right 25 px per step, then turns back: the constant-velocity prediction overshoots (no overlap with
    # the new box) while the last box still overlaps it; B stands still far away.
    a = [[0, 0, 40, 100], [25, 0, 65, 100], [50, 0, 90, 100], [35, 0, 75, 100], [20, 0, 60, 100]]
    b = [300, 0, 340, 100]
    steps = [np.array([box, b], float) for box in a]
    assert [i.tolist() for i in track_sequence(steps)] == [[1, 2]] * 5
    # the prediction alone loses A at the turn: predicted [75, 0, 115, 100] vs [35, 0, 75, 100] -> IoU 0
    assert iou_matrix([[75, 0, 115, 100]], [[35, 0, 75, 100]])[0, 0] == 0


def test_measured_velocity_carries_a_walker_between_keyframes():
    """A walker moving 60 px per step with a 30 px wide box: plain IoU (even buffered) loses him after a new track
    starts without motion; with his measured velocity the new track already predicts the next box."""
    from partwise.infer.tracking import IoUTracker

    boxes = [np.array([[100.0 + 60 * t, 100, 130.0 + 60 * t, 200]]) for t in range(5)]
    plain = IoUTracker()
    assert len({int(plain.update(b)[0]) for b in boxes}) > 1
    tracker = IoUTracker()
    ids = {int(tracker.update(b, np.array([[60.0, 0.0]]))[0]) for b in boxes}
    assert ids == {1}
    # NaN velocity (unknown) falls back to the box-to-box rule
    tracker = IoUTracker()
    assert tracker.update(boxes[0], np.array([[np.nan, np.nan]]))[0] == 1
    assert np.allclose(tracker.tracks[0].velocity, 0)
