"""Annotated frames for ``partwise run``: person boxes in a per-track colour with ``#track`` and the top states,
thin part boxes, the COCO-17 skeleton when keypoints exist, and the objects a body part touches (thin box in the
track colour, labelled ``class: parts``).

In the annotated video each frame shows the persons of its nearest keyframe when that keyframe is at most half a
keyframe spacing away (so 1 Hz annotations stay on screen for one second, centred on their keyframe); a person
whose track is also in the keyframe on the other side of the frame has its boxes and keypoints interpolated
linearly between the two, so boxes follow people who move between keyframes.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa

#: distinct colours, cycled by track id.
PALETTE = ((230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
           (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (170, 110, 40))
#: COCO-17 limbs drawn for the skeleton.
LIMBS = ((5, 7), (7, 9), (6, 8), (8, 10), (5, 6), (5, 11), (6, 12), (11, 12), (11, 13), (13, 15), (12, 14),
         (14, 16), (0, 5), (0, 6))
MIN_KEYPOINT_SCORE = 0.2


def track_colour(track_id: int) -> tuple[int, int, int]:
    return PALETTE[int(track_id) % len(PALETTE)]


def _label(row: dict) -> str:
    states = row["pasta"][:2]
    return f"#{row['track_id']} " + "; ".join(states)


def draw_persons(frame: np.ndarray, rows: list[dict]) -> np.ndarray:
    """A copy of ``frame`` (H, W, 3) uint8 RGB with ``rows`` (dicts with ``px1..py2``, ``track_id``, ``pasta``,
    ``part_boxes``, ``keypoints``) drawn on it."""
    from PIL import Image, ImageDraw

    image = Image.fromarray(np.ascontiguousarray(frame))
    draw = ImageDraw.Draw(image)
    placed: list[tuple[float, float, float, float]] = []
    for row in rows:
        colour = track_colour(row["track_id"])
        faint = tuple(int(c * 0.6) for c in colour)
        for part in row["part_boxes"] or []:
            draw.rectangle([part["px1"], part["py1"], part["px2"], part["py2"]], outline=faint, width=1)
        if row.get("keypoints"):
            k = np.asarray(row["keypoints"], np.float64).reshape(17, 3)
            for a, b in LIMBS:
                if k[a, 2] >= MIN_KEYPOINT_SCORE and k[b, 2] >= MIN_KEYPOINT_SCORE:
                    draw.line([tuple(k[a, :2]), tuple(k[b, :2])], fill=colour, width=2)
        box = [row["px1"], row["py1"], row["px2"], row["py2"]]
        draw.rectangle(box, outline=colour, width=2)
        for obj in row.get("objects") or []:  # objects a part touches: box and "class: parts" in the track colour
            touching = [p["part"] for p in row.get("part_objects") or [] if p["object_id"] == obj["object_id"]]
            obox = [obj["px1"], obj["py1"], obj["px2"], obj["py2"]]
            draw.rectangle(obox, outline=colour, width=1)
            text = f"{obj['class_name']}: {', '.join(touching)}"
            draw.rectangle([obox[0], obox[3], obox[0] + draw.textlength(text) + 2, obox[3] + LABEL_HEIGHT],
                           fill=(0, 0, 0))
            draw.text((obox[0] + 1, obox[3] - 1), text, fill=colour)
        text = _label(row)
        x, y = label_position(box, draw.textlength(text) + 2, placed)
        draw.rectangle([x, y, x + draw.textlength(text) + 2, y + LABEL_HEIGHT], fill=(0, 0, 0))
        draw.text((x + 1, y - 1), text, fill=colour)
    return np.asarray(image)


LABEL_HEIGHT = 10


def label_position(box, width: float, placed: list[tuple[float, float, float, float]]) -> tuple[float, float]:
    """Top-left corner of a ``width`` x :data:`LABEL_HEIGHT` label for ``box`` (x1, y1, x2, y2): just above the box,
    else the first free line inside it going down, else above it anyway; the label's rectangle is added to
    ``placed`` so that labels of people standing side by side do not cover each other."""
    x = float(box[0])
    step = LABEL_HEIGHT + 1
    inside = max(0, int((box[3] - box[1]) // step))
    candidates = [max(0.0, box[1] - step)] + [box[1] + 1 + i * step for i in range(inside)]

    def free(y: float) -> bool:
        return all(x + width <= a or a2 <= x or y + LABEL_HEIGHT <= b or b2 <= y for a, b, a2, b2 in placed)

    y = next((c for c in candidates if free(c)), candidates[0])
    placed.append((x, y, x + width, y + LABEL_HEIGHT))
    return x, y


def _rows_by_frame(table: pa.Table) -> dict[int, list[dict]]:
    cols = ["frame_index", "track_id", "px1", "py1", "px2", "py2", "pasta", "part_boxes", "keypoints"]
    cols += [c for c in ("objects", "part_objects") if c in table.column_names]
    out: dict[int, list[dict]] = {}
    for row in table.select(cols).to_pylist():
        out.setdefault(row["frame_index"], []).append(row)
    return out


def nearest_keyframe(frame_indices: np.ndarray, keyframes: np.ndarray, max_distance: float) -> np.ndarray:
    """For each frame index, the nearest keyframe index (from sorted ``keyframes``) or -1 when it is farther than
    ``max_distance`` frames (ties go to the earlier keyframe)."""
    frame_indices = np.asarray(frame_indices, np.int64)
    if len(keyframes) == 0:
        return np.full(len(frame_indices), -1)
    keyframes = np.asarray(keyframes, np.int64)
    pos = np.clip(np.searchsorted(keyframes, frame_indices), 1, max(1, len(keyframes) - 1))
    left = keyframes[pos - 1] if len(keyframes) > 1 else keyframes[np.zeros_like(pos)]
    right = keyframes[np.minimum(pos, len(keyframes) - 1)]
    nearest = np.where(np.abs(frame_indices - left) <= np.abs(right - frame_indices), left, right)
    return np.where(np.abs(nearest - frame_indices) <= max_distance, nearest, -1)


def _lerp_row(row: dict, other: dict, weight: float) -> dict:
    """``row`` with its person box, part boxes and keypoints moved ``weight`` (0..1) of the way to ``other``'s."""
    out = dict(row)
    for key in ("px1", "py1", "px2", "py2"):
        out[key] = (1 - weight) * row[key] + weight * other[key]
    if row["part_boxes"] and other["part_boxes"]:
        parts = {p["part"]: p for p in other["part_boxes"]}
        out["part_boxes"] = [{**p, **{k: (1 - weight) * p[k] + weight * parts[p["part"]][k]
                                      for k in ("px1", "py1", "px2", "py2")}} if p["part"] in parts else p
                             for p in row["part_boxes"]]
    if row.get("keypoints") and other.get("keypoints"):
        a, b = np.asarray(row["keypoints"]), np.asarray(other["keypoints"])
        out["keypoints"] = ((1 - weight) * a + weight * b).tolist()
    return out


def rows_at(index: int, by_frame: dict[int, list[dict]], keyframes: np.ndarray, half: float) -> list[dict]:
    """The persons drawn on frame ``index`` (see the module docstring)."""
    nearest = int(nearest_keyframe(np.array([index]), keyframes, half)[0])
    if nearest < 0:
        return []
    pos = int(np.searchsorted(keyframes, nearest))
    neighbour = pos + (1 if index >= nearest else -1)
    if index == nearest or not 0 <= neighbour < len(keyframes) or abs(keyframes[neighbour] - nearest) > 3 * half:
        return by_frame[nearest]
    other_frame = int(keyframes[neighbour])
    weight = abs(index - nearest) / abs(other_frame - nearest)
    others = {r["track_id"]: r for r in by_frame[other_frame]}
    return [_lerp_row(r, others[r["track_id"]], weight) if r["track_id"] in others else r for r in by_frame[nearest]]


def render_video(path: str | os.PathLike, table: pa.Table, out: str | os.PathLike, fps: float) -> int:
    """Write the annotated video of ``path`` (every frame, at its own rate) to ``out``; returns the frames written."""
    from partwise.data import video

    by_frame = _rows_by_frame(table)
    keyframes = np.array(sorted(by_frame), np.int64)
    spacing = np.diff(keyframes).min() if len(keyframes) > 1 else fps
    half = max(1.0, spacing / 2)

    def frames():
        for index, frame in video.iter_frames(path):
            rows = rows_at(index, by_frame, keyframes, half)
            h, w = frame.shape[:2]
            if h % 2 or w % 2:  # the encoder needs even sizes
                frame = np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)))
            yield draw_persons(frame, rows) if rows else frame

    return video.write_video(out, frames(), fps)


def render_image(path: str | os.PathLike, table: pa.Table, out: str | os.PathLike) -> None:
    from PIL import Image

    from partwise.io import atomic_write

    with Image.open(path) as im:
        frame = np.asarray(im.convert("RGB"))
    annotated = draw_persons(frame, [r for rows in _rows_by_frame(table).values() for r in rows])
    with atomic_write(out, "wb") as fh:
        Image.fromarray(annotated).save(fh, format="JPEG", quality=90)


def write_thumbnail(item, table: pa.Table, out: str | os.PathLike, width: int = 320) -> None:
    """The annotated middle keyframe (the first frame when there are no rows), ``width`` pixels wide, as JPEG."""
    from PIL import Image

    from partwise.io import atomic_write

    by_frame = _rows_by_frame(table)
    keyframes = sorted(by_frame)
    index = keyframes[len(keyframes) // 2] if keyframes else 0
    if item.kind == "image":
        with Image.open(item.path) as im:
            frame = np.asarray(im.convert("RGB"))
    else:
        from partwise.data import video

        frame = video.read_frames(item.path, [index])[0]
    image = Image.fromarray(draw_persons(frame, by_frame.get(index, [])))
    image = image.resize((width, max(1, round(image.height * width / image.width))))
    with atomic_write(Path(out), "wb") as fh:
        image.save(fh, format="JPEG", quality=85)
