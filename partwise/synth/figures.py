"""Articulated stick figures: postures, poses over time, part boxes, and drawing with Pillow.

Geometry conventions
--------------------
* Image coordinates in pixels, ``x`` to the right, ``y`` down.
* A figure is placed by its ground point ``(x, ground_y)`` (where its feet touch the floor), its ``scale`` (the
  standing height in pixels) and ``facing`` (+1 right, -1 left).
* Limb angles are in radians from "straight down", positive toward the facing direction; the torso angle is from
  "straight up", positive leaning forward.
* A pose is a ``(len(JOINTS), 2)`` float array of joint positions.

The figure draws the **right** limbs in the person's color and the **left** limbs in a darker shade of it, so the
two sides can be told apart; head, torso and hip use the full color.

Part boxes follow HAKE's pose-derived rule (Activity2Vec ``part_box_generation``): a square centred on the part's
joint, half-width ``torso * part_size / 2`` with ``torso = |pelvis - thorax|``, ``thorax = 0.75 neck + 0.25 head``
and ``part_size = [1.2, 1, 1, 1.2, 1.2, 1.2, 0.9, 1, 1, 0.9]`` in :data:`partwise.vocab.BODY_PARTS` order
(feet: ankles, legs: knees, hip: pelvis, head: head centre, hands: wrists, arms: shoulders).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from partwise.vocab import BODY_PARTS

JOINTS: tuple[str, ...] = (
    "head", "neck", "pelvis",
    "r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow", "l_wrist",
    "r_knee", "r_ankle", "r_toe", "l_knee", "l_ankle", "l_toe",
)
J = {name: k for k, name in enumerate(JOINTS)}

#: Body proportions as fractions of the standing height.
HEAD_RADIUS = 0.075
NECK_TO_HEAD = 0.11
TORSO = 0.30
THIGH = 0.24
SHIN = 0.24
UPPER_ARM = 0.16
FOREARM = 0.15
SHOULDER_HALF = 0.05
HIP_HALF = 0.035
FOOT = 0.06

#: Lower-body postures and upper-body activities the figures can show.
LOWER_POSTURES: tuple[str, ...] = ("stand", "walk", "sit", "kneel", "crouch", "bow")
UPPER_ACTIVITIES: tuple[str, ...] = ("none", "raise", "wave", "hold", "inspect", "swing", "touch", "lift")

#: HAKE part-box sizes, BODY_PARTS order, and the joint each part box is centred on.
PART_SIZE: tuple[float, ...] = (1.2, 1.0, 1.0, 1.2, 1.2, 1.2, 0.9, 1.0, 1.0, 0.9)
PART_JOINT: dict[str, str] = {
    "right_foot": "r_ankle", "right_leg": "r_knee", "left_leg": "l_knee", "left_foot": "l_ankle", "hip": "pelvis",
    "head": "head", "right_hand": "r_wrist", "right_arm": "r_shoulder", "left_arm": "l_shoulder", "left_hand": "l_wrist",
}

#: Walking cadence (strides per second) and waving / lifting / swinging rates (cycles per second).
STEP_HZ = 1.0
WAVE_HZ = 2.0
LIFT_HZ = 0.6
SWING_HZ = 0.9


@dataclass(frozen=True)
class Placement:
    """Where a figure stands: ground point ``(x, ground_y)`` in pixels, ``scale`` (height px), ``facing`` (+1/-1)."""

    x: float
    ground_y: float
    scale: float
    facing: int


def _limb(origin: np.ndarray, angle: float, length: float, facing: int) -> np.ndarray:
    """End point of a limb of ``length`` px from ``origin`` at ``angle`` from straight down (toward facing)."""
    return origin + length * np.array([math.sin(angle) * facing, math.cos(angle)])


def _leg_angles(posture: str, t: float) -> tuple[float, float, float, float]:
    """(right thigh, right shin, left thigh, left shin) angles of a lower posture at time ``t`` seconds."""
    if posture == "walk":
        swing = 0.45 * math.sin(2 * math.pi * STEP_HZ * t)
        # The knee bends while the leg swings forward (thigh moving forward), straight in stance.
        r_knee = 0.5 * max(0.0, math.cos(2 * math.pi * STEP_HZ * t))
        l_knee = 0.5 * max(0.0, -math.cos(2 * math.pi * STEP_HZ * t))
        return swing, swing - r_knee, -swing, -swing - l_knee
    if posture == "sit":
        return 1.45, 0.05, 1.35, -0.05
    if posture == "kneel":
        return 0.0, -math.pi / 2, 1.5, 0.0
    if posture == "crouch":
        return 1.35, -0.55, 1.25, -0.6
    return 0.07, 0.05, -0.07, -0.05  # stand, bow


def _torso_angle(posture: str, upper: str) -> float:
    if posture == "bow":
        return 1.15
    if posture == "crouch":
        return 0.35
    return 0.0


def _arm_angles(upper: str, posture: str, t: float) -> tuple[float, float, float, float]:
    """(right upper arm, right forearm, left upper arm, left forearm) angles, from straight down, toward facing."""
    if upper == "raise":
        return math.pi - 0.25, math.pi - 0.1, math.pi + 0.25, math.pi + 0.1
    if upper == "wave":
        wave = 0.55 * math.sin(2 * math.pi * WAVE_HZ * t)
        return 2.2, math.pi + wave, -0.1, 0.0
    if upper == "hold":
        return 0.35, 1.55, 0.25, 1.5
    if upper == "inspect":
        return 0.6, 2.2, 0.5, 2.15
    if upper == "swing":
        arc = 1.1 * math.sin(2 * math.pi * SWING_HZ * t)
        return arc, arc + 0.3, -arc, -arc + 0.3
    if upper == "touch":
        return 1.45, 1.6, -0.1, 0.0
    if upper == "lift":
        # Hands go from the waist to above the shoulders and back, holding the object.
        phase = 0.5 - 0.5 * math.cos(2 * math.pi * LIFT_HZ * t)
        upper_arm = 0.3 + 1.5 * phase
        fore = 1.2 + 1.3 * phase
        return upper_arm, fore, upper_arm - 0.1, fore - 0.1
    if posture == "walk":
        arc = 0.35 * math.sin(2 * math.pi * STEP_HZ * t)
        return -arc, -arc + 0.2, arc, arc + 0.2
    return 0.12, 0.05, -0.12, -0.05  # none: arms hang


def _head_tilt(upper: str) -> float:
    return 1.0 if upper == "inspect" else 0.0


def pose(posture: str, upper: str, t: float, place: Placement) -> np.ndarray:
    """Joint positions ``(len(JOINTS), 2)`` of a figure in ``posture``/``upper`` at ``t`` seconds into the state."""
    s, f = place.scale, place.facing
    rt, rs, lt, ls = _leg_angles(posture, t)
    # Legs hang from the pelvis; the pelvis height is chosen so that the lowest foot point touches the ground.
    pelvis0 = np.zeros(2)
    r_hip = pelvis0 + np.array([-HIP_HALF * s, 0.0])
    l_hip = pelvis0 + np.array([HIP_HALF * s, 0.0])
    r_knee = _limb(r_hip, rt, THIGH * s, f)
    r_ankle = _limb(r_knee, rs, SHIN * s, f)
    l_knee = _limb(l_hip, lt, THIGH * s, f)
    l_ankle = _limb(l_knee, ls, SHIN * s, f)
    if posture == "sit":
        # The seat carries the hip: feet on the floor, the chair makes up the rest.
        lowest = max(r_ankle[1], l_ankle[1])
    elif posture == "kneel":
        lowest = max(r_knee[1], r_ankle[1], l_ankle[1])
    else:
        lowest = max(r_ankle[1], l_ankle[1])
    shift = np.array([place.x, place.ground_y - lowest])
    r_knee, r_ankle, l_knee, l_ankle = r_knee + shift, r_ankle + shift, l_knee + shift, l_ankle + shift
    pelvis = pelvis0 + shift
    foot = np.array([FOOT * s * f, 0.0])
    r_toe, l_toe = r_ankle + foot, l_ankle + foot
    if posture == "kneel":
        r_toe = r_ankle + np.array([-FOOT * s * f, 0.0])  # the kneeling leg's foot lies flat behind

    torso = _torso_angle(posture, upper)
    neck = pelvis + TORSO * s * np.array([math.sin(torso) * f, -math.cos(torso)])
    head_angle = torso + _head_tilt(upper)
    head = neck + NECK_TO_HEAD * s * np.array([math.sin(head_angle) * f, -math.cos(head_angle)])

    ra, rf, la, lf = _arm_angles(upper, posture, t)
    r_shoulder = neck + np.array([-SHOULDER_HALF * s * f, 0.0])
    l_shoulder = neck + np.array([SHOULDER_HALF * s * f, 0.0])
    r_elbow = _limb(r_shoulder, ra, UPPER_ARM * s, f)
    r_wrist = _limb(r_elbow, rf, FOREARM * s, f)
    l_elbow = _limb(l_shoulder, la, UPPER_ARM * s, f)
    l_wrist = _limb(l_elbow, lf, FOREARM * s, f)
    return np.stack([head, neck, pelvis, r_shoulder, r_elbow, r_wrist, l_shoulder, l_elbow, l_wrist,
                     r_knee, r_ankle, r_toe, l_knee, l_ankle, l_toe])


def line_width(scale: float) -> int:
    """Stroke width of the limbs in pixels for a figure of standing height ``scale``."""
    return max(2, int(round(0.045 * scale)))


def person_box(joints: np.ndarray, scale: float) -> np.ndarray:
    """Tight box ``(4,)`` ``[x1, y1, x2, y2]`` around everything drawn for the figure (not clipped)."""
    pad = line_width(scale) / 2 + 0.5
    x1, y1 = joints.min(axis=0) - pad
    x2, y2 = joints.max(axis=0) + pad
    head = joints[J["head"]]
    r = HEAD_RADIUS * scale
    return np.array([min(x1, head[0] - r), min(y1, head[1] - r), max(x2, head[0] + r), max(y2, head[1] + r)])


def part_boxes(joints: np.ndarray) -> np.ndarray:
    """HAKE part boxes ``(10, 4)`` in :data:`BODY_PARTS` order (not clipped); see the module docstring."""
    thorax = 0.75 * joints[J["neck"]] + 0.25 * joints[J["head"]]
    torso = float(np.linalg.norm(joints[J["pelvis"]] - thorax))
    centres = np.stack([joints[J[PART_JOINT[part]]] for part in BODY_PARTS])
    half = torso * np.asarray(PART_SIZE)[:, None] / 2
    return np.concatenate([centres - half, centres + half], axis=1)


#: COCO-17 keypoints taken directly from a figure joint (COCO index -> JOINTS name); the face points and the hips
#: are derived in :func:`coco_keypoints`.
COCO_FROM_JOINT: dict[int, str] = {
    5: "l_shoulder", 6: "r_shoulder", 7: "l_elbow", 8: "r_elbow", 9: "l_wrist", 10: "r_wrist",
    13: "l_knee", 14: "r_knee", 15: "l_ankle", 16: "r_ankle",
}


def coco_keypoints(joints: np.ndarray, scale: float, facing: int, size: tuple[int, int] | None = None) -> np.ndarray:
    """The figure's pose as 17 COCO keypoints ``(17, 3)`` ``[x, y, score]`` in pixels (COCO order, odd = left).

    Mapping from :data:`JOINTS` (nothing is invented beyond the face points, which a stick figure does not draw):

    * shoulders, elbows, wrists, knees, ankles (5-10, 13-16): the figure's joints of the same name;
    * hips (11 left, 12 right): ``pelvis -/+ HIP_HALF * scale`` along x -- the hip points the legs of :func:`pose`
      hang from (the drawing starts both legs at the pelvis), so their mean is the pelvis, as the Activity2Vec rule
      expects;
    * face points, on the drawn head circle (centre ``head``, radius ``HEAD_RADIUS * scale``), in the head's frame
      ``up = (head - neck) / |head - neck|`` and ``forward`` = ``up`` turned 90 degrees toward ``facing`` (the
      figures are drawn in profile): nose (0) on the circle straight ahead, ``head + r * forward``; both eyes (1, 2)
      at ``head + r * (0.5 forward + 0.25 up)`` (one point: in profile the eyes coincide); both ears (3, 4) at the
      head centre.

    Scores are 1 for every keypoint inside the frame ``size = (width, height)`` and 0 outside it (like COCO,
    which does not label points outside the image); without ``size`` every score is 1. Toes are not COCO points.
    """
    k = np.zeros((17, 3))
    for index, name in COCO_FROM_JOINT.items():
        k[index, :2] = joints[J[name]]
    pelvis = joints[J["pelvis"]]
    hip_offset = np.array([HIP_HALF * scale, 0.0])
    k[11, :2] = pelvis + hip_offset  # pose(): l_hip = pelvis + HIP_HALF*s, r_hip = pelvis - HIP_HALF*s
    k[12, :2] = pelvis - hip_offset
    head, neck = joints[J["head"]], joints[J["neck"]]
    up = head - neck
    up = up / max(float(np.linalg.norm(up)), 1e-9)
    forward = facing * np.array([-up[1], up[0]])
    r = HEAD_RADIUS * scale
    k[0, :2] = head + r * forward
    k[1, :2] = k[2, :2] = head + r * (0.5 * forward + 0.25 * up)
    k[3, :2] = k[4, :2] = head
    k[:, 2] = 1.0
    if size is not None:
        width, height = size
        inside = (k[:, 0] >= 0) & (k[:, 0] <= width) & (k[:, 1] >= 0) & (k[:, 1] <= height)
        k[:, 2] = inside.astype(np.float64)
    return k


def object_box(kind: str, joints: np.ndarray, upper: str, place: Placement) -> np.ndarray:
    """Box ``(4,)`` of the object a figure interacts with: at the hands (held, lifted, inspected, touched)."""
    s = place.scale
    size = {"ball": 0.13, "box": 0.15, "cup": 0.10, "chair": 0.0}[kind] * s
    if upper == "touch":
        hand = joints[J["r_wrist"]]
        cx = hand[0] + place.facing * (size / 2 + 0.02 * s)
        cy = hand[1]
    else:
        hand = 0.5 * (joints[J["r_wrist"]] + joints[J["l_wrist"]])
        cx = hand[0] + place.facing * size * 0.35
        cy = hand[1] - size * 0.1
    w = size if kind != "cup" else size * 0.75
    return np.array([cx - w / 2, cy - size / 2, cx + w / 2, cy + size / 2])


def chair_box(joints: np.ndarray, place: Placement) -> np.ndarray:
    """Box ``(4,)`` of the chair under a sitting figure: the seat just under the pelvis spans from behind it to
    under the thighs, legs go down to the floor, and the backrest rises as high above the seat as the seat is
    above the floor (so the seat is at the box's mid-height)."""
    s = place.scale
    pelvis = joints[J["pelvis"]]
    back = pelvis[0] - place.facing * 0.06 * s
    front = pelvis[0] + place.facing * 0.22 * s
    seat = pelvis[1] + 0.04 * s
    top = seat - (place.ground_y - seat)
    return np.array([min(back, front), top, max(back, front), place.ground_y])


def shade(color: tuple[int, int, int], factor: float = 0.6) -> tuple[int, int, int]:
    return tuple(int(c * factor) for c in color)


def draw_object(draw: ImageDraw.ImageDraw, kind: str, box: np.ndarray, color: tuple[int, int, int], facing: int) -> None:
    """Draw an object shape filling ``box``."""
    x1, y1, x2, y2 = (float(v) for v in box)
    if kind == "ball":
        draw.ellipse([x1, y1, x2, y2], fill=color)
    elif kind == "box":
        draw.rectangle([x1, y1, x2, y2], fill=color, outline=shade(color, 0.5))
    elif kind == "cup":
        inset = (x2 - x1) * 0.18
        draw.polygon([(x1, y1), (x2, y1), (x2 - inset, y2), (x1 + inset, y2)], fill=color)
    elif kind == "chair":
        width = max(2, int((y2 - y1) * 0.05))
        seat_y = (y1 + y2) / 2
        back_x = x1 if facing > 0 else x2
        front_x = x2 if facing > 0 else x1
        draw.line([(x1, seat_y), (x2, seat_y)], fill=color, width=width)
        draw.line([(front_x, seat_y), (front_x, y2)], fill=color, width=width)
        draw.line([(back_x, y1), (back_x, y2)], fill=color, width=width)
    else:
        raise ValueError(f"unknown object kind {kind!r}")


def draw_figure(draw: ImageDraw.ImageDraw, joints: np.ndarray, scale: float, color: tuple[int, int, int]) -> None:
    """Draw a stick figure: left limbs, torso, right limbs, head (right side in ``color``, left side darker)."""
    width = line_width(scale)
    dark = shade(color)
    p = {name: tuple(float(v) for v in joints[k]) for name, k in J.items()}
    for side, col in (("l", dark), ("r", color)):
        draw.line([p["pelvis"], p[f"{side}_knee"], p[f"{side}_ankle"], p[f"{side}_toe"]], fill=col, width=width, joint="curve")
        draw.line([p["neck"], p[f"{side}_shoulder"], p[f"{side}_elbow"], p[f"{side}_wrist"]], fill=col, width=width, joint="curve")
        r = max(1.5, 0.03 * scale)
        wx, wy = p[f"{side}_wrist"]
        draw.ellipse([wx - r, wy - r, wx + r, wy + r], fill=col)
        if side == "l":
            draw.line([p["pelvis"], p["neck"]], fill=color, width=int(width * 1.6) + 1)
    hx, hy = p["head"]
    r = HEAD_RADIUS * scale
    draw.ellipse([hx - r, hy - r, hx + r, hy + r], fill=color)


def background(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A light, lightly textured background ``(H, W, 3)`` uint8: a wall, a floor, smooth noise."""
    base = np.empty((height, width, 3), np.float32)
    horizon = int(height * 0.62)
    wall = rng.uniform(185, 215, size=3)
    floor = rng.uniform(150, 175, size=3)
    base[:horizon] = wall
    base[horizon:] = floor
    coarse = rng.normal(0, 6, size=(height // 8 + 2, width // 8 + 2, 1)).astype(np.float32)
    texture = np.repeat(np.repeat(coarse, 8, axis=0), 8, axis=1)[:height, :width]
    return np.clip(base + texture, 0, 255).astype(np.uint8)


def render(bg: np.ndarray, items: list) -> np.ndarray:
    """Draw ``items`` (callables taking an ``ImageDraw``) in order on a copy of ``bg``; returns ``(H, W, 3)`` uint8."""
    image = Image.fromarray(bg)
    draw = ImageDraw.Draw(image)
    for item in items:
        item(draw)
    return np.array(image)
