"""Kinematic part states in the Kinetics-TPS style -- how each body part moves -- from a person's keypoint track.

The offline default of ``partwise run`` when no learned model covers a state. Input: one track's COCO-17 keypoints
(T, 17, 3) ``[x, y, score]`` in pixels (y down) sampled at ``fps``. Output: for every frame a dict from the ten TPS
part names to a state tag, or no entry when the part's keypoints are unreliable (score < 0.2).

Everything is normalized so the rules hold at any resolution and frame rate: distances are in units of the
person's **body scale** s (median torso length, shoulder midpoint to hip midpoint), speeds in s per second, angle
rates in degrees per second; derivatives are central differences over ``window_s`` seconds.

Rules (first match wins; thresholds in :class:`Thresholds`):

=========== ======================================================================================================
part        rule
=========== ======================================================================================================
arms        elbow angle (shoulder-elbow-wrist) closing faster than ``angle_rate`` -> ``bend``; opening faster ->
            ``unbend``; wrist rising faster than ``lift_speed`` -> ``lift``; else ``none``
hands       wrist above the nose -> ``raise``; wrist speed above ``swing_speed`` -> ``swing``; wrist rising faster
            than ``lift_speed`` -> ``lift``; else ``none``
legs        knee angle (hip-knee-ankle) closing faster than ``angle_rate`` -> ``bend``, opening -> ``unbend``; ankle
            moving faster than ``step_speed`` -> ``step``; knee straighter than ``straight_knee`` degrees, thigh
            within ``support_thigh`` of vertical, upright trunk -> ``stand``; else ``none``
feet        ankle moving faster than ``step_speed`` -> ``step``; ankle higher than the other by ``raise_height``
            -> ``raise``; else ``none``
hip         trunk more than ``stoop_angle`` degrees from vertical -> ``stoop``; a thigh within ``sit_thigh`` of
            horizontal (|hip y - knee y| < sit_thigh * s) while the other leg does not carry the body (its thigh
            within ``support_thigh`` degrees of vertical and not that flat: a kick, a run, a high step) -> ``sit``;
            both knees straight -> ``stand``; else ``none``
head        the nose's horizontal offset from the shoulder midpoint (in shoulder widths) changing faster than
            ``turn_rate`` per second -> ``turn``; nose rising relative to the shoulders faster than ``lift_speed``
            -> ``raise``; else ``none``
=========== ======================================================================================================
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TPS_PARTS = ("head", "hip", "left_arm", "right_arm", "left_hand", "right_hand", "left_leg", "right_leg",
             "left_foot", "right_foot")
NOSE, L_SHOULDER, R_SHOULDER, L_ELBOW, R_ELBOW, L_WRIST, R_WRIST = 0, 5, 6, 7, 8, 9, 10
L_HIP, R_HIP, L_KNEE, R_KNEE, L_ANKLE, R_ANKLE = 11, 12, 13, 14, 15, 16
MIN_SCORE = 0.2


@dataclass(frozen=True)
class Thresholds:
    window_s: float = 0.2
    angle_rate: float = 60.0  # degrees per second
    lift_speed: float = 0.5  # body scales per second, upward
    swing_speed: float = 2.5  # body scales per second
    step_speed: float = 0.4  # body scales per second
    raise_height: float = 0.15  # body scales
    straight_knee: float = 160.0  # degrees
    stoop_angle: float = 40.0  # degrees from vertical
    sit_thigh: float = 0.25  # body scales
    support_thigh: float = 30.0  # degrees from vertical: a thigh this upright carries the body (not sitting)
    turn_rate: float = 0.8  # shoulder widths per second


def _angle(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Angle at b (degrees) between b->a and b->c, per frame. Inputs (T, 2)."""
    u, v = a - b, c - b
    cos = (u * v).sum(-1) / np.maximum(np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1), 1e-9)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def _rate(values: np.ndarray, fps: float, window_s: float) -> np.ndarray:
    """Central-difference derivative per second over about ``window_s`` (edges one-sided). (T, ...) -> (T, ...)."""
    t = len(values)
    half = max(1, int(round(window_s * fps / 2)))
    idx = np.arange(t)
    lo, hi = np.clip(idx - half, 0, t - 1), np.clip(idx + half, 0, t - 1)
    span = np.maximum(hi - lo, 1)[(...,) + (None,) * (values.ndim - 1)]
    return (values[hi] - values[lo]) / span * fps


def kinematic_states(keypoints: np.ndarray, fps: float, thresholds: Thresholds = Thresholds()) -> list[dict[str, str]]:
    """Per-frame ``{part: state}`` for one keypoint track (see the module docstring)."""
    k = np.asarray(keypoints, dtype=np.float64)
    if k.ndim != 3 or k.shape[1:] != (17, 3):
        raise ValueError(f"keypoints must be (T, 17, 3), got {k.shape}")
    th = thresholds
    xy, score = k[..., :2], k[..., 2]
    ok = score >= MIN_SCORE
    shoulder_mid = (xy[:, L_SHOULDER] + xy[:, R_SHOULDER]) / 2
    hip_mid = (xy[:, L_HIP] + xy[:, R_HIP]) / 2
    torso_ok = ok[:, [L_SHOULDER, R_SHOULDER, L_HIP, R_HIP]].all(1)
    torso = np.linalg.norm(shoulder_mid - hip_mid, axis=1)
    scale = float(np.median(torso[torso_ok])) if torso_ok.any() else float(np.median(torso) or 1.0)
    scale = max(scale, 1e-6)
    velocity = _rate(xy, fps, th.window_s) / scale  # (T, 17, 2), y down
    speed = np.linalg.norm(velocity, axis=-1)
    rising = -velocity[..., 1]
    trunk = shoulder_mid - hip_mid
    trunk_angle = np.degrees(np.arctan2(np.abs(trunk[:, 0]), np.maximum(-trunk[:, 1], 1e-9)))
    knee_angle = {side: _angle(xy[:, hip], xy[:, knee], xy[:, ankle])
                  for side, (hip, knee, ankle) in {"left": (L_HIP, L_KNEE, L_ANKLE), "right": (R_HIP, R_KNEE, R_ANKLE)}.items()}
    knee_rate = {side: _rate(angle, fps, th.window_s) for side, angle in knee_angle.items()}
    elbow_angle = {side: _angle(xy[:, sh], xy[:, el], xy[:, wr])
                   for side, (sh, el, wr) in {"left": (L_SHOULDER, L_ELBOW, L_WRIST), "right": (R_SHOULDER, R_ELBOW, R_WRIST)}.items()}
    elbow_rate = {side: _rate(angle, fps, th.window_s) for side, angle in elbow_angle.items()}
    shoulder_width = np.maximum(np.linalg.norm(xy[:, L_SHOULDER] - xy[:, R_SHOULDER], axis=1), 1e-6)
    nose_offset = (xy[:, NOSE, 0] - shoulder_mid[:, 0]) / shoulder_width
    nose_turn = np.abs(_rate(nose_offset, fps, th.window_s))
    nose_rise = -_rate((xy[:, NOSE, 1] - shoulder_mid[:, 1]) / scale, fps, th.window_s)
    straight = {side: knee_angle[side] > th.straight_knee for side in knee_angle}
    upright = trunk_angle < th.stoop_angle
    flat, supporting = {}, {}
    for side, (hip, knee) in {"left": (L_HIP, L_KNEE), "right": (R_HIP, R_KNEE)}.items():
        thigh = xy[:, knee] - xy[:, hip]
        flat[side] = np.abs(thigh[:, 1]) < th.sit_thigh * scale
        from_vertical = np.degrees(np.arctan2(np.abs(thigh[:, 0]), thigh[:, 1]))  # 0: knee straight below the hip
        # long as well as upright: a seated person seen from the front has short thighs that may point down too
        supporting[side] = ((from_vertical < th.support_thigh) & (thigh[:, 1] >= th.sit_thigh * scale)
                            & ok[:, [hip, knee]].all(axis=1))
    joints = {"left": (L_SHOULDER, L_ELBOW, L_WRIST, L_HIP, L_KNEE, L_ANKLE),
              "right": (R_SHOULDER, R_ELBOW, R_WRIST, R_HIP, R_KNEE, R_ANKLE)}
    frames: list[dict[str, str]] = []
    for t in range(len(k)):
        states: dict[str, str] = {}
        if ok[t, [NOSE, L_SHOULDER, R_SHOULDER]].all():
            states["head"] = "turn" if nose_turn[t] > th.turn_rate else "raise" if nose_rise[t] > th.lift_speed else "none"
        if torso_ok[t] and ok[t, [L_KNEE, R_KNEE]].all():
            # a thigh raised flat while the other leg carries the body is a kick or a step, not a seat
            sitting = ((flat["left"][t] and not supporting["right"][t])
                       or (flat["right"][t] and not supporting["left"][t]))
            states["hip"] = ("stoop" if not upright[t] else "sit" if sitting
                             else "stand" if straight["left"][t] and straight["right"][t] else "none")
        for side, (sh, el, wr, hp, kn, an) in joints.items():
            other_ankle = R_ANKLE if side == "left" else L_ANKLE
            if ok[t, [sh, el, wr]].all():
                rate = elbow_rate[side][t]
                states[f"{side}_arm"] = ("bend" if rate < -th.angle_rate else "unbend" if rate > th.angle_rate
                                         else "lift" if rising[t, wr] > th.lift_speed else "none")
            if ok[t, [wr, NOSE]].all():
                states[f"{side}_hand"] = ("raise" if xy[t, wr, 1] < xy[t, NOSE, 1] else "swing" if speed[t, wr] > th.swing_speed
                                          else "lift" if rising[t, wr] > th.lift_speed else "none")
            if ok[t, [hp, kn, an]].all():
                rate = knee_rate[side][t]
                states[f"{side}_leg"] = ("bend" if rate < -th.angle_rate else "unbend" if rate > th.angle_rate
                                         else "step" if speed[t, an] > th.step_speed
                                         else "stand" if straight[side][t] and upright[t] and supporting[side][t]
                                         else "none")
            if ok[t, an]:
                higher = ok[t, other_ankle] and (xy[t, other_ankle, 1] - xy[t, an, 1]) > th.raise_height * scale
                states[f"{side}_foot"] = "step" if speed[t, an] > th.step_speed else "raise" if higher else "none"
        frames.append(states)
    return frames
