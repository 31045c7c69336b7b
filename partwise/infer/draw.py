"""Drawing one annotated frame for ``partwise run`` and ``results.plot()``.

Per person, in a per-track colour: the person box, the COCO-17 skeleton and keypoints when there are keypoints, a
short trail (the bottom centre of the box over the last :attr:`Style.trail` keyframes) and one label: ``#track``,
then the top part states with their scores (``none`` / ``no_interaction`` entries only when there is nothing else;
states under :attr:`Style.state_thr` left out; at most :attr:`Style.top_k`), then the top actions (AVA actions,
Activity2Vec verbs) with their scores when a model gives them (at least :attr:`Style.action_thr`, at most
:attr:`Style.top_k`). Per body part (HAKE's ten): a box in the part's colour (:data:`PART_COLOURS`) with its state
written on it, as HAKE's Activity2Vec demo draws. Objects a body part touches: a box, a line to the touching part,
and ``class: #track part``.

Sizes scale with the frame (:func:`scale_for`: font, lines, keypoints; DejaVu Sans from matplotlib, else Pillow's
scalable default font). Labels stay inside the frame and do not cover each other (:class:`Layout`): each is placed
greedily at the first free candidate position around its anchor (above the box, below, inside, beside), else
stacked beside the box, else at the nearest free place in the frame; part-state labels that find no free place are
left out (the person's label lists the states anyway). :func:`annotate` returns the label rectangles too.

:mod:`partwise.infer.render` assembles the annotated video, image and thumbnail from these frames.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

#: distinct colours, cycled by track id.
PALETTE = ((230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
           (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (170, 110, 40))
#: one colour per body part (HAKE's ten parts; left and right of a limb in neighbouring shades).
PART_COLOURS = {
    "head": (255, 80, 80), "hip": (190, 90, 255),
    "right_arm": (255, 160, 40), "left_arm": (255, 205, 90),
    "right_hand": (250, 240, 40), "left_hand": (190, 250, 90),
    "right_leg": (40, 150, 255), "left_leg": (110, 200, 255),
    "right_foot": (30, 215, 180), "left_foot": (120, 245, 215),
}
#: COCO-17 limbs drawn for the skeleton.
LIMBS = ((5, 7), (7, 9), (6, 8), (8, 10), (5, 6), (5, 11), (6, 12), (11, 12), (11, 13), (13, 15), (12, 14),
         (14, 16), (0, 5), (0, 6))
MIN_KEYPOINT_SCORE = 0.2
#: opacity (0-255) of the dark ground under person labels.
LABEL_OPACITY = 185
#: part-state labels are written on persons at least this many small-font lines high.
PART_LABEL_MIN_LINES = 9
#: part states that say nothing happens: shown only when a person has no other state.
EMPTY_STATES = ("none", "no_interaction", "unknown")


def track_colour(track_id: int) -> tuple[int, int, int]:
    return PALETTE[int(track_id) % len(PALETTE)]


def part_colour(part: str) -> tuple[int, int, int]:
    return PART_COLOURS.get(part, (200, 200, 200))


@dataclass(frozen=True)
class Style:
    """What the labels show: part states scoring at least ``state_thr`` (states without a score, the kinematic
    ones, always), actions at least ``action_thr``, at most ``top_k`` of each per person; trails of ``trail``
    keyframes (0: none)."""

    state_thr: float = 0.3
    action_thr: float = 0.5
    top_k: int = 3
    trail: int = 4

    @classmethod
    def of(cls, state_thr: float | None = None, action_thr: float | None = None,
           top_k: int | None = None) -> "Style":
        """The default style with the given values replaced (None keeps the default)."""
        given = {k: v for k, v in (("state_thr", state_thr), ("action_thr", action_thr), ("top_k", top_k))
                 if v is not None}
        return cls(**given)


@dataclass(frozen=True)
class Scale:
    """Pixel sizes for one frame size: font heights (person labels, part and object labels), line width,
    keypoint radius, label padding."""

    font: int
    small: int
    line: int
    point: int
    pad: int


def scale_for(height: int, width: int) -> Scale:
    """Sizes proportional to the frame's shorter side (1080 px: 26 px text, 3 px lines), with floors that keep
    small frames legible."""
    base = min(int(height), int(width))
    font = max(9, round(base * 0.024))
    return Scale(font=font, small=max(8, round(font * 0.8)), line=max(1, round(base / 360)),
                 point=max(2, round(base / 240)), pad=max(1, round(font / 6)))


def _font_file() -> str | None:
    try:
        import matplotlib

        path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
        return str(path) if path.is_file() else None
    except ImportError:
        return None


@lru_cache(maxsize=32)
def font(size: int):
    """A TrueType font ``size`` pixels high (DejaVu Sans; Pillow's scalable default font without matplotlib)."""
    from PIL import ImageFont

    path = _font_file()
    if path is not None:
        return ImageFont.truetype(path, size)
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: a fixed bitmap font
        return ImageFont.load_default()


def _is_empty(state: str | None) -> bool:
    if state is None:
        return True
    return state.rsplit(":", 1)[-1].strip() in EMPTY_STATES


def _pretty(name: str) -> str:
    return name.replace("_", " ")


def state_entries(row: dict, style: Style) -> list[tuple[str, float | None]]:
    """The person's part states to show, best first: ``[(name, score or None)]``."""
    names = list(row.get("pasta") or [])
    scores = list(row.get("pasta_scores") or [])
    scores = scores + [None] * (len(names) - len(scores))
    entries = [(n, s) for n, s in zip(names, scores) if s is None or s >= style.state_thr]
    if any(s is not None for _, s in entries):
        entries.sort(key=lambda e: -(e[1] if e[1] is not None else 1.0))
    full = [e for e in entries if not _is_empty(e[0])]
    if not full:  # nothing else: the best empty entry, if any
        full = entries[:1] or [(n, s) for n, s in zip(names, scores)][:1]
    return full[:style.top_k]


@lru_cache(maxsize=4)
def _names(vocab_name: str) -> tuple[str, ...]:
    from partwise import vocab

    return tuple(vocab.load(vocab_name).names)


def action_entries(row: dict, style: Style) -> list[tuple[str, float | None]]:
    """The person's top actions (AVA actions, then Activity2Vec verbs) with scores, best first."""
    out: list[tuple[str, float | None]] = []
    for column, vocab_name, fallback in (("action_scores", "ava80", "actions"), ("verb_scores", "verbs157", "verbs")):
        scores = row.get(column)
        if scores:
            names = _names(vocab_name)
            s = np.asarray(scores, np.float64)
            order = np.argsort(-s, kind="stable")
            out += [(names[j], float(s[j])) for j in order[:style.top_k] if s[j] >= style.action_thr]
        elif row.get(fallback):
            values = row[fallback]
            names = _names(vocab_name) if column == "action_scores" else None
            out += [((names[v - 1] if names else str(v)) if isinstance(v, int) else str(v), None)
                    for v in values[:style.top_k]]
    out.sort(key=lambda e: -(e[1] if e[1] is not None else 0.0))
    return out[:style.top_k]


def _fmt(name: str, score: float | None) -> str:
    return _pretty(name) if score is None else f"{_pretty(name)} {score:.2f}"


def person_lines(row: dict, style: Style) -> list[tuple[str, str]]:
    """The lines of a person's label: ``[(kind, text)]``, kind ``head`` / ``state`` / ``action``."""
    lines = [("head", f"#{row['track_id']}")]
    lines += [("state", _fmt(n, s)) for n, s in state_entries(row, style)]
    lines += [("action", _fmt(n, s)) for n, s in action_entries(row, style)]
    return lines


@dataclass
class Label:
    """A placed label: ``rect`` ``(x1, y1, x2, y2)`` in pixels (x2, y2 exclusive), ``kind`` ``person`` / ``part``
    / ``object``, the ``lines`` written in it and the font height ``size``."""

    rect: tuple[int, int, int, int]
    kind: str
    lines: list[str]
    size: int
    track_id: int | None = None


class Layout:
    """Greedy placement of label rectangles inside a ``width`` x ``height`` frame, none overlapping another."""

    def __init__(self, width: int, height: int, gap: int = 1):
        self.width, self.height, self.gap = int(width), int(height), gap
        self.rects = np.zeros((0, 4), np.int64)

    def _clamp(self, x: float, y: float, w: int, h: int) -> tuple[int, int]:
        return (int(round(min(max(0.0, x), max(0, self.width - w)))),
                int(round(min(max(0.0, y), max(0, self.height - h)))))

    def _free(self, xy: np.ndarray, w: int, h: int) -> np.ndarray:
        """Which top-left corners ``xy`` (G, 2) give a rectangle that meets no placed one."""
        if not len(self.rects):
            return np.ones(len(xy), bool)
        g = self.gap
        r = self.rects
        x1, y1 = xy[:, :1], xy[:, 1:2]
        hit = ((x1 < r[None, :, 2] + g) & (r[None, :, 0] < x1 + w + g)
               & (y1 < r[None, :, 3] + g) & (r[None, :, 1] < y1 + h + g))
        return ~hit.any(1)

    def place(self, w: int, h: int, candidates: list[tuple[float, float]], beside: list[tuple[float, float]] = (),
              anchor: tuple[float, float] | None = None, force: bool = True) -> tuple[int, int, int, int] | None:
        """The first free one of ``candidates`` (top-left corners, moved inside the frame), else of ``beside``,
        else (with ``anchor``) the free position nearest ``anchor`` on a grid over the frame; None when nothing
        is free and not ``force`` (with ``force`` the first candidate, overlapping)."""
        w, h = min(int(w), self.width), min(int(h), self.height)
        for group in (candidates, beside):
            if not group:
                continue
            xy = np.array([self._clamp(x, y, w, h) for x, y in group], np.int64)
            free = np.flatnonzero(self._free(xy, w, h))
            if len(free):
                return self._add(*xy[free[0]], w, h)
        if anchor is not None:
            step = max(2, min(w, h) // 3)
            xs = np.unique(np.r_[np.arange(0, max(1, self.width - w + 1), step), max(0, self.width - w)])
            ys = np.unique(np.r_[np.arange(0, max(1, self.height - h + 1), step), max(0, self.height - h)])
            gx, gy = np.meshgrid(xs, ys)
            xy = np.stack([gx.ravel(), gy.ravel()], 1).astype(np.int64)
            dist = (xy[:, 0] + w / 2 - anchor[0]) ** 2 + (xy[:, 1] + h / 2 - anchor[1]) ** 2
            xy = xy[np.argsort(dist, kind="stable")]
            free = np.flatnonzero(self._free(xy, w, h))
            if len(free):
                return self._add(*xy[free[0]], w, h)
        if not force or not candidates:
            return None
        return self._add(*self._clamp(*candidates[0], w, h), w, h)

    def _add(self, x: int, y: int, w: int, h: int) -> tuple[int, int, int, int]:
        rect = (int(x), int(y), int(x) + w, int(y) + h)
        self.rects = np.vstack([self.rects, np.array([rect], np.int64)])
        return rect


@lru_cache(maxsize=1)
def _measure():
    """A drawing context for text metrics (they do not depend on the image drawn on)."""
    from PIL import Image, ImageDraw

    return ImageDraw.Draw(Image.new("RGB", (1, 1)))


# Labels repeat from frame to frame of a video: their metrics are measured once.
@lru_cache(maxsize=4096)
def _text_extent(text: str, size: int) -> tuple[int, int]:
    left, top, right, bottom = _measure().textbbox((0, 0), text, font=font(size))
    return int(np.ceil(right)), int(np.ceil(bottom))


@lru_cache(maxsize=4096)
def _text_length(text: str, size: int) -> float:
    return _measure().textlength(text, font=font(size))


def _text_size(draw, text: str, size: int) -> tuple[int, int]:
    return _text_extent(text, size)


@lru_cache(maxsize=4096)
def _fit_cached(text: str, size: int, max_width: int) -> str:
    if _text_length(text, size) <= max_width:
        return text
    while len(text) > 1 and _text_length(text + "…", size) > max_width:
        text = text[:-1]
    return text + "…"


@lru_cache(maxsize=4096)
def _glyph_mask(text: str, size: int):
    """``(mask, (dx, dy))`` of ``text`` as :meth:`PIL.ImageDraw.ImageDraw.text` renders it at a whole-pixel
    position (anchor ``la``, antialiased): labels repeat on every frame between keyframes, and rasterizing them was
    a quarter of the annotation's time."""
    return font(size).getmask2(text, "L", None, None, None, 0, "la", 0, (0.0, 0.0), stroke_filled=True)


def _draw_text(draw, xy: tuple[int, int], text: str, size: int, fill) -> None:
    """``draw.text(xy, text, font=font(size), fill=fill)`` for one line at whole-pixel ``xy``, with the glyph mask
    rasterized once per (text, size); the same pixels (Pillow's own ``draw_bitmap`` blend)."""
    core = getattr(draw, "draw", None)
    if (not isinstance(xy[0], int) or not isinstance(xy[1], int) or "\n" in text or core is None
            or not hasattr(core, "draw_bitmap") or getattr(draw, "fontmode", "L") != "L"
            or not hasattr(font(size), "getmask2")):
        draw.text(xy, text, font=font(size), fill=fill)
        return
    mask, (dx, dy) = _glyph_mask(text, size)
    ink, fill_ink = draw._getink(fill)
    core.draw_bitmap((xy[0] + dx, xy[1] + dy), mask, fill_ink if ink is None else ink)


def _fit(draw, text: str, size: int, max_width: int) -> str:
    """``text`` cut (with an ellipsis) to fit ``max_width`` pixels."""
    return _fit_cached(text, size, max_width)


def _line_height(size: int) -> int:
    return int(round(size * 1.2))


def _readable_on(colour) -> tuple[int, int, int]:
    r, g, b = colour
    return (0, 0, 0) if 0.299 * r + 0.587 * g + 0.114 * b > 140 else (255, 255, 255)


def _box(d: dict) -> tuple[float, float, float, float]:
    return float(d["px1"]), float(d["py1"]), float(d["px2"]), float(d["py2"])


def _person_candidates(box, w: int, h: int, g: int) -> tuple[list, list]:
    """Top-left corners for a ``w`` x ``h`` label of a person ``box``: around it first, then stacked beside it."""
    x1, y1, x2, y2 = box
    around = [(x1, y1 - h - g), (x2 - w, y1 - h - g), (x1, y2 + g), (x2 - w, y2 + g), (x1 + g, y1 + g),
              (x2 + g, y1), (x1 - w - g, y1)]
    step = max(1, h // 2)
    beside = []
    for k in range(1, 16):
        beside += [(x2 + g, y1 + k * step), (x1 - w - g, y1 + k * step), (x1, y1 - h - g - k * step),
                   (x2 + g, y1 - k * step), (x1 - w - g, y1 - k * step)]
    return around, beside


def _touches(rect, box, margin: float) -> bool:
    x1, y1, x2, y2 = box
    return not (rect[2] < x1 - margin or x2 + margin < rect[0] or rect[3] < y1 - margin or y2 + margin < rect[1])


def annotate(frame: np.ndarray, rows: list[dict], style: Style | None = None,
             trails: dict[int, list[tuple[float, float]]] | None = None) -> tuple[np.ndarray, list[Label]]:
    """``frame`` (H, W, 3) uint8 RGB (not modified) with ``rows`` (table rows: ``px1..py2``, ``track_id``,
    ``pasta`` (+ ``pasta_scores``), ``part_boxes``, ``keypoints``, ``action_scores`` / ``actions``, ``verbs`` /
    ``verb_scores``, ``objects`` and ``part_objects`` when present) drawn on it, and the placed labels.
    ``trails`` ``{track_id: [(x, y), ...]}`` (oldest first) are drawn as lines."""
    from PIL import Image, ImageDraw

    style = style or Style()
    image = Image.fromarray(np.array(frame, np.uint8, copy=True))
    height, width = image.height, image.width
    sc = scale_for(height, width)
    draw = ImageDraw.Draw(image)
    layout = Layout(width, height)
    labels: list[Label] = []
    rows = sorted(rows, key=lambda r: int(r["track_id"]))

    for tid, points in (trails or {}).items():  # under everything else
        if len(points) > 1:
            colour = track_colour(tid)
            pts = [tuple(map(float, p)) for p in points]
            draw.line(pts, fill=colour, width=max(1, sc.line), joint="curve")
            for x, y in pts[:-1]:
                r = max(1, sc.line)
                draw.ellipse([x - r, y - r, x + r, y + r], fill=colour)

    for row in rows:
        colour = track_colour(row["track_id"])
        for part in row.get("part_boxes") or []:
            draw.rectangle(_box(part), outline=part_colour(part["part"]), width=max(1, sc.line - 1))
        if row.get("keypoints"):
            k = np.asarray(row["keypoints"], np.float64).reshape(17, 3)
            for a, b in LIMBS:
                if k[a, 2] >= MIN_KEYPOINT_SCORE and k[b, 2] >= MIN_KEYPOINT_SCORE:
                    draw.line([tuple(k[a, :2]), tuple(k[b, :2])], fill=colour, width=sc.line)
            r = sc.point
            for x, y, s in k:
                if s >= MIN_KEYPOINT_SCORE:
                    draw.ellipse([x - r, y - r, x + r, y + r], fill=colour, outline=(0, 0, 0))
        draw.rectangle(_box(row), outline=colour, width=sc.line)

    # objects a body part touches, each once per frame: box, a line to each touching part, "class: #track part"
    objects: dict[int, dict] = {}
    for row in rows:
        parts = {p["part"]: _box(p) for p in row.get("part_boxes") or []}
        by_id = {o["object_id"]: o for o in row.get("objects") or []}
        for rel in row.get("part_objects") or []:
            obj = by_id.get(rel["object_id"])
            if obj is None:
                continue
            entry = objects.setdefault(rel["object_id"], {"obj": obj, "links": []})
            entry["links"].append((row["track_id"], rel["part"], parts.get(rel["part"])))
        for oid, obj in by_id.items():
            objects.setdefault(oid, {"obj": obj, "links": [(row["track_id"], None, None)]})
    for entry in objects.values():
        obox = _box(entry["obj"])
        colour = track_colour(entry["links"][0][0])
        draw.rectangle(obox, outline=colour, width=sc.line)
        centre = ((obox[0] + obox[2]) / 2, (obox[1] + obox[3]) / 2)
        for _, part, pbox in entry["links"]:
            if pbox is not None:
                draw.line([((pbox[0] + pbox[2]) / 2, (pbox[1] + pbox[3]) / 2), centre], fill=part_colour(part),
                          width=sc.line)

    def text_block(lines: list[str], size: int) -> tuple[list[str], int, int]:
        lines = [_fit(draw, t, size, width - 2 * sc.pad) for t in lines]
        lw = max(_text_size(draw, t, size)[0] for t in lines) + 2 * sc.pad
        return lines, min(lw, width), len(lines) * _line_height(size) + 2 * sc.pad

    person_labels = []
    for row in rows:
        box = _box(row)
        entries = person_lines(row, style)
        for keep in (len(entries), 1):  # all lines, else the track id alone
            kinds = [k for k, _ in entries[:keep]]
            texts, lw, lh = text_block([t for _, t in entries[:keep]], sc.font)
            around, beside = _person_candidates(box, lw, lh, sc.line)
            rect = layout.place(lw, lh, around, beside, anchor=((box[0] + box[2]) / 2, box[1]), force=keep == 1)
            if rect is not None:
                break
        label = Label(rect, "person", texts, sc.font, int(row["track_id"]))
        labels.append(label)
        person_labels.append((label, kinds, box))

    object_labels = []
    for entry in objects.values():
        obj, obox = entry["obj"], _box(entry["obj"])
        linked = [f"#{t} {_pretty(p)}" for t, p, _ in entry["links"] if p is not None]
        text = f"{obj.get('class_name') or 'object'}" + (f": {', '.join(linked)}" if linked else "")
        texts, lw, lh = text_block([text], sc.small)
        rect = layout.place(lw, lh, [(obox[0], obox[1] - lh - 1), (obox[0], obox[3] + 1), (obox[0] + 1, obox[1] + 1)],
                            anchor=((obox[0] + obox[2]) / 2, obox[1]))
        label = Label(rect, "object", texts, sc.small, entry["links"][0][0])
        labels.append(label)
        object_labels.append((label, track_colour(entry["links"][0][0])))

    part_labels = []
    for row in rows:
        if _box(row)[3] - _box(row)[1] < PART_LABEL_MIN_LINES * _line_height(sc.small):
            continue  # too small a person: part-state labels would only cover it
        for part in row.get("part_boxes") or []:
            if _is_empty(part.get("state")):
                continue
            pbox = _box(part)
            texts, lw, lh = text_block([_pretty(part["state"])], sc.small)
            rect = layout.place(lw, lh, [(pbox[0], pbox[1]), (pbox[0], pbox[1] - lh), (pbox[0], pbox[3]),
                                         (pbox[2], pbox[1]), (pbox[0] - lw, pbox[1])], force=False)
            if rect is not None:
                label = Label(rect, "part", texts, sc.small, int(row["track_id"]))
                labels.append(label)
                part_labels.append((label, part_colour(part["part"])))

    # labels on top of every box; person labels on a translucent dark ground
    if person_labels:
        from PIL import Image as _Image

        # only over the labels' bounding rectangle: the same pixels as a whole-frame mask, a fraction of the work
        rects = np.array([label.rect for label, _, _ in person_labels], np.int64)
        left, top = max(0, int(rects[:, 0].min())), max(0, int(rects[:, 1].min()))
        right, bottom = min(width, int(rects[:, 2].max())), min(height, int(rects[:, 3].max()))
        if right > left and bottom > top:
            shade = _Image.new("L", (right - left, bottom - top), 0)
            shade_draw = ImageDraw.Draw(shade)
            for x1, y1, x2, y2 in rects.tolist():
                shade_draw.rectangle([x1 - left, y1 - top, x2 - 1 - left, y2 - 1 - top], fill=LABEL_OPACITY)
            image.paste(_Image.new("RGB", (right - left, bottom - top), (15, 15, 15)), (left, top), shade)
        draw = ImageDraw.Draw(image)
    for label, colour in part_labels:
        x1, y1, x2, y2 = label.rect
        draw.rectangle([x1, y1, x2 - 1, y2 - 1], fill=colour)
        _draw_text(draw, (x1 + sc.pad, y1 + sc.pad), label.lines[0], label.size, _readable_on(colour))
    for label, colour in object_labels:
        x1, y1, x2, y2 = label.rect
        draw.rectangle([x1, y1, x2 - 1, y2 - 1], fill=colour)
        _draw_text(draw, (x1 + sc.pad, y1 + sc.pad), label.lines[0], label.size, _readable_on(colour))
    text_colours = {"head": None, "state": (240, 240, 240), "action": (255, 225, 110)}
    for label, kinds, box in person_labels:
        colour = track_colour(label.track_id)
        x1, y1, x2, y2 = label.rect
        if not _touches(label.rect, box, 2 * sc.line + 1):  # moved away from its person: a leader line
            draw.line([(min(max(box[0], x1), x2 - 1), y2 - 1 if y2 <= box[1] else y1), (box[0], box[1])],
                      fill=colour, width=max(1, sc.line - 1))
        draw.rectangle([x1, y1, x2 - 1, y2 - 1], outline=colour, width=1)
        for i, (kind, text) in enumerate(zip(kinds, label.lines)):
            _draw_text(draw, (x1 + sc.pad, y1 + sc.pad + i * _line_height(label.size)), text, label.size,
                       text_colours[kind] or colour)
    return np.asarray(image), labels


def draw_persons(frame: np.ndarray, rows: list[dict], style: Style | None = None,
                 trails: dict[int, list[tuple[float, float]]] | None = None) -> np.ndarray:
    """A copy of ``frame`` (H, W, 3) uint8 RGB with ``rows`` drawn on it (:func:`annotate` without the labels)."""
    return annotate(frame, rows, style, trails)[0]


# the fixed-size placement of earlier versions, kept for callers of label_position
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
