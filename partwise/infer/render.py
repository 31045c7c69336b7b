"""Annotated frames for ``partwise run`` and ``results.plot()``.

In the annotated video each frame shows the persons of its nearest keyframe when that keyframe is at most half a
keyframe spacing away (so 1 Hz annotations stay on screen for one second, centred on their keyframe); a person
whose track is also in the keyframe on the other side of the frame has its boxes and keypoints interpolated
linearly between the two, so boxes follow people who move between keyframes.

Drawing one frame (the per-person boxes, skeletons, trails and labels, sizes, label layout: :func:`annotate`) lives
in :mod:`partwise.infer.draw`; its names are re-exported here.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa

from partwise.infer.draw import (  # noqa: F401  (re-exported: callers import them from here)
    PALETTE, PART_COLOURS, LIMBS, MIN_KEYPOINT_SCORE, LABEL_OPACITY, PART_LABEL_MIN_LINES, EMPTY_STATES,
    track_colour, part_colour, Style, Scale, scale_for, _font_file, font, _is_empty, _pretty, state_entries, _names,
    action_entries, _fmt, person_lines, Label, Layout, _measure, _text_extent, _text_length, _text_size, _fit_cached,
    _glyph_mask, _draw_text, _fit, _line_height, _readable_on, _box, _person_candidates, _touches, annotate,
    draw_persons, LABEL_HEIGHT, label_position)


def _rows_by_frame(table: pa.Table) -> dict[int, list[dict]]:
    cols = ["frame_index", "track_id", "px1", "py1", "px2", "py2", "pasta", "part_boxes", "keypoints"]
    cols += [c for c in ("pasta_scores", "actions", "action_scores", "verbs", "verb_scores", "objects",
                         "part_objects") if c in table.column_names]
    out: dict[int, list[dict]] = {}
    for row in table.select(cols).to_pylist():
        out.setdefault(row["frame_index"], []).append(row)
    return out


def _foot(row: dict) -> tuple[float, float]:
    return (float(row["px1"]) + float(row["px2"])) / 2, float(row["py2"])


def trails_at(index: int, rows: list[dict], by_frame: dict[int, list[dict]], keyframes: np.ndarray,
              length: int, max_gap: float) -> dict[int, list[tuple[float, float]]]:
    """Per track of ``rows`` (the persons drawn on frame ``index``): the bottom centres of its boxes at its last
    ``length`` keyframes at or before ``index`` (each at most ``max_gap`` frames after the one before), then its
    box now."""
    if length <= 0:
        return {}
    past = keyframes[keyframes <= index][::-1]
    out: dict[int, list[tuple[float, float]]] = {}
    for row in rows:
        tid, points, last = row["track_id"], [], index
        for kf in past:
            if last - kf > max_gap or len(points) >= length:
                break
            match = next((r for r in by_frame[int(kf)] if r["track_id"] == tid), None)
            if match is None:
                break
            points.append(_foot(match))
            last = kf
        out[tid] = points[::-1] + [_foot(row)]
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


def render_video(path: str | os.PathLike, table: pa.Table, out: str | os.PathLike, fps: float,
                 style: Style | None = None, progress: bool = False, total: int | None = None,
                 frames: list[np.ndarray] | None = None) -> int:
    """Write the annotated video of ``path`` (every frame, at its own rate) to ``out``; returns the frames written.
    ``progress``: a bar over the ``total`` frames (writing is most of a run's wall time on long videos).
    ``frames``: every frame of ``path`` already decoded (``[(H, W, 3)]`` uint8 RGB, not modified), else
    ``path`` is decoded again."""
    from partwise.data import video
    from partwise.progress import bar

    style = style or Style()
    by_frame = _rows_by_frame(table)
    keyframes = np.array(sorted(by_frame), np.int64)
    spacing = np.diff(keyframes).min() if len(keyframes) > 1 else fps
    half = max(1.0, spacing / 2)

    decoded = enumerate(frames) if frames is not None else video.iter_frames(path)

    def annotated():
        for index, frame in decoded:
            rows = rows_at(index, by_frame, keyframes, half)
            h, w = frame.shape[:2]
            if h % 2 or w % 2:  # the encoder needs even sizes
                frame = np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)))
            if rows:
                trails = trails_at(index, rows, by_frame, keyframes, style.trail, 3 * spacing)
                frame = draw_persons(frame, rows, style, trails)
            yield frame

    frames_iter = bar(annotated(), desc=f"video {Path(path).name[:24]}", total=total, unit="frame",
                      disable=not progress, leave=False)
    try:
        return video.write_video(out, frames_iter, fps)
    finally:
        frames_iter.close()


def render_image(path: str | os.PathLike, table: pa.Table, out: str | os.PathLike, style: Style | None = None) -> None:
    from PIL import Image

    from partwise.io import atomic_write

    with Image.open(path) as im:
        frame = np.asarray(im.convert("RGB"))
    annotated = draw_persons(frame, [r for rows in _rows_by_frame(table).values() for r in rows], style)
    with atomic_write(out, "wb") as fh:
        Image.fromarray(annotated).save(fh, format="JPEG", quality=90)


def write_thumbnail(item, table: pa.Table, out: str | os.PathLike, width: int = 320,
                    style: Style | None = None, frames: list[np.ndarray] | None = None) -> None:
    """The annotated middle keyframe (the first frame when there are no rows), ``width`` pixels wide, as JPEG.
    ``frames``: the video's decoded frames when the caller has them (see :func:`render_video`)."""
    from PIL import Image

    from partwise.io import atomic_write

    by_frame = _rows_by_frame(table)
    keyframes = sorted(by_frame)
    index = keyframes[len(keyframes) // 2] if keyframes else 0
    if item.kind == "image":
        with Image.open(item.path) as im:
            frame = np.asarray(im.convert("RGB"))
    elif frames is not None and index < len(frames):
        frame = frames[index]
    else:
        from partwise.data import video

        frame = video.read_frames(item.path, [index])[0]
    image = Image.fromarray(draw_persons(frame, by_frame.get(index, []), style))
    image = image.resize((width, max(1, round(image.height * width / image.width))))
    with atomic_write(Path(out), "wb") as fh:
        image.save(fh, format="JPEG", quality=85)
