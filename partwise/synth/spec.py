"""What the synthetic generator draws from: the postures and activities with their labels in every vocabulary
(PaSta, AVA actions, Kinetics-TPS part states, objects), the video classes, the generation parameters and the
per-person types. Data only, so the labels can be read without the simulation and rendering of
:mod:`partwise.synth.generator`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from partwise import vocab


#: Person colors (right side; the left side is drawn darker) and object colors, chosen far apart.
PERSON_COLORS: tuple[tuple[int, int, int], ...] = (
    (220, 40, 40), (40, 80, 225), (30, 160, 60), (235, 130, 20), (210, 50, 190), (20, 170, 175),
)
OBJECT_COLORS: dict[str, tuple[int, int, int]] = {
    "ball": (245, 225, 40), "box": (150, 95, 50), "cup": (250, 250, 250), "chair": (70, 70, 70),
}
#: Object classes and their category ids (GIO ``object_id``).
OBJECT_CLASSES: tuple[str, ...] = ("ball", "box", "cup", "chair")


@dataclass(frozen=True)
class StateSpec:
    """What a lower posture or upper activity means for the labels."""

    pasta: tuple[str, ...]  # pasta_ava87 names
    actions: tuple[int, ...]  # ava80 ids
    tps: dict  # body part -> Kinetics-TPS state tag
    object_action: int | None = None  # AVA id of the interaction with the object, if there is one
    objects: tuple[str, ...] = ()  # object classes the activity uses (one is drawn per segment)


def _legs(leg: str, foot: str, hip: str) -> dict:
    return {"right_leg": leg, "left_leg": leg, "right_foot": foot, "left_foot": foot, "hip": hip}


def _arms(arm: str, hand: str, head: str = "none", right_only: bool = False) -> dict:
    if right_only:
        return {"right_arm": arm, "right_hand": hand, "left_arm": "none", "left_hand": "none", "head": head}
    return {"right_arm": arm, "left_arm": arm, "right_hand": hand, "left_hand": hand, "head": head}


LOWER: dict[str, StateSpec] = {
    "stand": StateSpec(("foot: stand on",), (12,), _legs("stand", "stand", "none")),
    "walk": StateSpec(("foot: walk with", "leg: walk with"), (14,), _legs("step", "step", "none")),
    "sit": StateSpec(("hip: sit on",), (11,), _legs("bend", "none", "sit"), 11, ("chair",)),
    "kneel": StateSpec(("leg: kneel",), (3,), _legs("bend", "none", "none")),
    "crouch": StateSpec(("leg: bend",), (3,), _legs("bend", "stand", "none")),
    "bow": StateSpec(("foot: stand on", "hip: bend"), (1,), _legs("unbend", "stand", "stoop")),
}
UPPER: dict[str, StateSpec] = {
    "none": StateSpec((), (), _arms("none", "none")),
    "raise": StateSpec(("hand: raise(over head)",), (), _arms("raise", "raise")),
    "wave": StateSpec(("hand: gesture to",), (69,), _arms("raise", "swing", right_only=True)),
    "hold": StateSpec(("hand: hold",), (17,), _arms("bend", "hold"), 17, ("ball", "box", "cup")),
    "inspect": StateSpec(("hand: hold", "head: inspect"), (17,), _arms("bend", "hold", head="bend"), 17, ("ball", "box", "cup")),
    "swing": StateSpec(("arm: swing",), (), _arms("swing", "swing")),
    "touch": StateSpec(("hand: touch",), (59,), _arms("unbend", "grab", right_only=True), 59, ("box", "ball")),
    "lift": StateSpec(("hand: lift",), (36,), _arms("lift", "lift"), 36, ("box", "ball", "cup")),
}
#: Upper activities each lower posture allows.
ALLOWED_UPPER: dict[str, tuple[str, ...]] = {
    "stand": tuple(UPPER),
    "walk": ("none", "raise", "wave", "hold", "inspect", "swing"),
    "sit": ("none", "raise", "wave", "hold", "inspect", "touch", "lift"),
    "kneel": ("none", "raise", "wave", "hold", "inspect", "touch", "lift"),
    "crouch": ("none", "hold", "inspect", "touch", "lift"),
    "bow": ("none", "hold", "touch", "lift"),
}
#: Video classes (Kinetics-TPS style) -> (weights over LOWER, weights over UPPER).
VIDEO_CLASSES: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "walking_around": ((2, 7, 0.5, 0.3, 0.3, 0.5), (3, 1, 2, 2, 0.5, 3, 0.3, 0.5)),
    "front_raises": ((6, 1, 0.5, 0.5, 0.5, 0.5), (1, 5, 1, 1, 0.5, 1, 0.5, 4)),
    "lunge": ((1, 1, 0.5, 4, 4, 3), (3, 1, 0.5, 1, 0.5, 1, 1, 2)),
    "sitting_with_objects": ((1, 0.5, 6, 1, 0.5, 0.5), (1, 0.5, 1, 3, 4, 0.5, 3, 1)),
}
#: Every PaSta name the generator can emit (a subset of pasta_ava87).
PASTA_STATES: tuple[str, ...] = tuple(sorted({p for spec in (*LOWER.values(), *UPPER.values()) for p in spec.pasta},
                                             key=lambda n: vocab.load("pasta_ava87").id_of(n)))
#: Every AVA action the generator can emit (all in the evaluated 60).
AVA_ACTIONS: tuple[int, ...] = tuple(sorted({a for spec in (*LOWER.values(), *UPPER.values()) for a in spec.actions}))


@dataclass(frozen=True)
class SynthConfig:
    """Generation parameters (see the CLI ``partwise synth``)."""

    seed: int = 0
    videos: int = 4
    seconds: int = 10
    width: int = 320
    height: int = 240
    people: tuple[int, int] = (2, 4)
    frames: bool = True

    def check(self) -> None:
        from partwise.errors import ConfigError

        if self.videos < 1:
            raise ConfigError("--videos must be at least 1")
        if self.seconds < 4:
            raise ConfigError("--seconds must be at least 4 (keyframes are at 902 .. 900+seconds-2)")
        if self.width < 64 or self.height < 64 or self.width % 2 or self.height % 2:
            raise ConfigError(f"--size {self.width}x{self.height}: both sides must be even and at least 64")
        lo, hi = self.people
        if not 1 <= lo <= hi <= len(PERSON_COLORS):
            raise ConfigError(f"--people must be within 1..{len(PERSON_COLORS)} (got {lo}-{hi})")


@dataclass
class Segment:
    start: float  # seconds from the video start
    lower: str
    upper: str
    obj: str | None  # object class for the upper activity, or None


@dataclass
class Person:
    track_id: int
    color: tuple[int, int, int]
    ground_y: float
    scale: float
    speed: float  # px/s when walking
    phase: float  # seconds added to the clock of periodic motions
    segments: list[Segment] = field(default_factory=list)


@dataclass
class VideoTrack:
    """Per-frame geometry of one person: ``joints (T, J, 2)``, ``facing (T,)``, ``segment (T,)`` index."""

    person: Person
    joints: np.ndarray
    facing: np.ndarray
    segment: np.ndarray
    x: np.ndarray
