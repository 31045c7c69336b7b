import numpy as np
import pytest

from partwise.infer.kinematics import TPS_PARTS, kinematic_states

# A person standing upright, torso 100 px (shoulder midpoint (0,-100) to hip midpoint (0,0)), y down.
STAND = {0: (0, -130), 1: (-5, -135), 2: (5, -135), 3: (-10, -130), 4: (10, -130), 5: (20, -100), 6: (-20, -100),
         7: (22, -60), 8: (-22, -60), 9: (24, -20), 10: (-24, -20), 11: (12, 0), 12: (-12, 0), 13: (12, 50),
         14: (-12, 50), 15: (12, 100), 16: (-12, 100)}


def pose(overrides=None, scale=1.0, offset=(200, 300)):
    k = np.ones((17, 3))
    for j, xy in {**STAND, **(overrides or {})}.items():
        k[j, :2] = np.asarray(xy, float) * scale + offset
    return k


def sequence(make, frames=20, fps=10.0, scale=1.0):
    return np.stack([pose(make(t / fps), scale) for t in range(frames)]), fps


def middle(states):
    return states[len(states) // 2]


def test_still_standing_person():
    seq, fps = sequence(lambda s: {})
    s = middle(kinematic_states(seq, fps))
    assert set(s) == set(TPS_PARTS)
    assert s == {"head": "none", "hip": "stand", "left_arm": "none", "right_arm": "none", "left_hand": "none",
                 "right_hand": "none", "left_leg": "stand", "right_leg": "stand", "left_foot": "none", "right_foot": "none"}


def forearm(angle_deg):
    a = np.radians(angle_deg)  # 0 = hanging straight down (elbow angle 180), grows as the arm bends
    return {9: (22 + 40 * np.sin(a), -60 + 40 * np.cos(a))}


def test_arm_bend_and_unbend_from_the_elbow_angle_rate():
    bend, fps = sequence(lambda s: forearm(min(120, 120 * s)))  # 120 deg/s for 1 s
    assert middle(kinematic_states(bend, fps)[:10])["left_arm"] == "bend"
    assert kinematic_states(bend, fps)[-2]["left_arm"] == "none"  # finished bending: still
    unbend, fps = sequence(lambda s: forearm(max(0, 120 - 120 * s)))
    assert middle(kinematic_states(unbend, fps)[:10])["left_arm"] == "unbend"
    slow, fps = sequence(lambda s: forearm(30 * s))  # 30 deg/s, below the 60 deg/s threshold
    assert middle(kinematic_states(slow, fps))["left_arm"] in ("none", "lift")


def test_hand_raised_above_the_head():
    seq, fps = sequence(lambda s: {9: (30, -170), 7: (28, -135)})
    s = middle(kinematic_states(seq, fps))
    assert s["left_hand"] == "raise" and s["right_hand"] == "none"


def test_sitting_and_stooping_hip():
    sit, fps = sequence(lambda s: {13: (62, 0), 14: (38, 0), 15: (62, 50), 16: (38, 50)})
    assert middle(kinematic_states(sit, fps))["hip"] == "sit"
    # one thigh raised flat while the other carries the body, straight or bent below the hip (a kick, a run with
    # the ball as in OpenCV's messi5.jpg): not a seat
    for support in ({}, {14: (-30, 47), 16: (12, 77)}):
        kick, fps = sequence(lambda s, support=support: {13: (62, 0), 15: (95, 35), **support})
        assert middle(kinematic_states(kick, fps))["hip"] != "sit"
    # a straight leg held out level is not a standing leg
    level, fps = sequence(lambda s: {13: (62, 0), 15: (112, 5)})
    states = middle(kinematic_states(level, fps))
    assert states["left_leg"] == "none" and states["right_leg"] == "stand" and states["hip"] != "sit"
    # the same raised thigh while the other thigh is slanted (43 degrees) or flat too: a seat
    for other in ({14: (-50, 40), 16: (-50, 90)}, {14: (-62, 5), 16: (-112, 10)}):
        seated, fps = sequence(lambda s, other=other: {13: (62, 0), 15: (62, 50), **other})
        assert middle(kinematic_states(seated, fps))["hip"] == "sit"
    # seated, seen from the front: both thighs short (foreshortened), pointing down at the knees, shins down
    front, fps = sequence(lambda s: {13: (14, 10), 14: (-14, 10), 15: (14, 60), 16: (-14, 60)})
    assert middle(kinematic_states(front, fps))["hip"] == "sit"
    stoop, fps = sequence(lambda s: {5: (90, -70), 6: (50, -70), 0: (75, -95)})  # trunk 45 deg from vertical
    states = middle(kinematic_states(stoop, fps))
    assert states["hip"] == "stoop" and states["left_leg"] != "stand"


def test_head_turn_from_nose_offset():
    seq, fps = sequence(lambda s: {0: (-20 + 80 * min(s, 0.5), -130)})  # 2 shoulder widths per second
    assert middle(kinematic_states(seq, fps)[:5])["head"] == "turn"


def test_walking_feet_step():
    seq, fps = sequence(lambda s: {15: (12 + 60 * s, 100), 13: (12 + 30 * s, 50)})  # ankle 0.6 body/s
    s = middle(kinematic_states(seq, fps))
    assert s["left_foot"] == "step" and s["right_foot"] == "none"


def test_foot_raised():
    seq, fps = sequence(lambda s: {15: (12, 75), 13: (20, 45)})
    assert middle(kinematic_states(seq, fps))["left_foot"] == "raise"


def test_unreliable_keypoints_give_no_state():
    seq, fps = sequence(lambda s: {})
    seq[:, 9, 2] = 0.1
    s = middle(kinematic_states(seq, fps))
    assert "left_arm" not in s and "left_hand" not in s and "right_arm" in s


def test_invariant_to_resolution_and_frame_rate():
    base, fps = sequence(lambda s: forearm(min(120, 120 * s)), frames=20, fps=10.0)
    big, fps3 = sequence(lambda s: forearm(min(120, 120 * s)), frames=60, fps=30.0, scale=3.0)
    small_states = kinematic_states(base, fps)
    big_states = kinematic_states(big, fps3)
    assert [small_states[i]["left_arm"] for i in range(2, 18)] == [big_states[3 * i]["left_arm"] for i in range(2, 18)]


def test_bad_shape():
    with pytest.raises(ValueError):
        kinematic_states(np.zeros((5, 16, 3)), 10)
