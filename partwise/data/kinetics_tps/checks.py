"""Per-frame validation of Kinetics-TPS JSON (the slow, precise path that names the file and key of a problem).

Per-frame JSON (core keys; all boxes are ``[x1, y1, x2, y2]`` in pixels of the extracted frames)::

    {"humans": [{"box": [x1, y1, x2, y2],
                 "parts": {"left_arm": {"box": [x1, y1, x2, y2], "verb": "bend"}, ...}}, ...]}

Optional keys are kept when present: ``number`` on humans (-> ``person_id``) and on parts, ``name`` on parts, and
``objects`` (a list of ``{"box", "name", "number"}``) either on the frame (then every human of the frame carries
them) or on a human. Unknown keys are tolerated and ignored. Missing core keys, wrong types and inverted boxes
(``x2 < x1`` or ``y2 < y1``) are errors naming the file and the key path, e.g.
``.../img_00006.json:humans[1].parts.left_arm.verb: missing key``.
"""
from __future__ import annotations

import os
from typing import Any, Iterator

from partwise.data.safe_json import text_problem as _text_problem
from partwise.errors import InputError, Problem

#: the keys an object's name may come under, the first one present wins
_OBJECT_NAME_KEYS = ("name", "class", "category", "label", "tag")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_id(value: Any) -> bool:
    """An id the records can hold: an integer within int64 (a larger one was blamed on a chunk's first file)."""
    return isinstance(value, int) and not isinstance(value, bool) and -2 ** 63 <= value < 2 ** 63


def _box_problem(box: Any) -> str | None:
    if not isinstance(box, list):
        return f"box must be a list [x1, y1, x2, y2], got {type(box).__name__}"
    if len(box) != 4:
        return f"box must have 4 numbers, got {len(box)}"
    if not all(_is_number(v) for v in box):
        return f"box values must be numbers, got {box!r}"
    if box[2] < box[0] or box[3] < box[1]:
        return f"box {box!r} has x2 < x1 or y2 < y1"
    return None


def _required_box_problems(entry: dict, path: str, key: str) -> list[Problem]:
    """The ``box`` of a human or object entry: present and a valid ``[x1, y1, x2, y2]``."""
    if "box" not in entry:
        return [Problem(path, f"{key}.box", "missing key")]
    reason = _box_problem(entry["box"])
    return [] if reason is None else [Problem(path, f"{key}.box", reason)]


def _entries(items: list, path: str, where: str, out: list[Problem]) -> Iterator[tuple[str, dict]]:
    """``(key path, entry)`` of each JSON object in the list ``items``; an item that is not one becomes a problem in
    ``out``, in order."""
    for k, item in enumerate(items):
        key = f"{where}[{k}]"
        if isinstance(item, dict):
            yield key, item
        else:
            out.append(Problem(path, key, f"must be an object, got {type(item).__name__}"))


def _objects_problems(objects: Any, path: str, where: str) -> list[Problem]:
    """Problems of an ``objects`` value (frame- or human-level); null means no objects, as in Arrow's reading.
    The one check of ``objects`` for validate and for both ingest paths."""
    if objects is None:
        return []
    if not isinstance(objects, list):
        return [Problem(path, where, f"must be a list, got {type(objects).__name__}")]
    out: list[Problem] = []
    for key, obj in _entries(objects, path, where, out):
        out += _required_box_problems(obj, path, key)
        name_key = next((k for k in _OBJECT_NAME_KEYS if k in obj), None)
        name = obj[name_key] if name_key is not None else None
        if name is not None and not isinstance(name, str):
            out.append(Problem(path, f"{key}.{name_key}", f"must be a string, got {type(name).__name__}"))
        elif name is not None and _text_problem(name) is not None:
            out.append(Problem(path, f"{key}.{name_key}", _text_problem(name)))
        if "number" in obj and not _is_id(obj["number"]):
            out.append(Problem(path, f"{key}.number", f"must be an integer within 64 bits, got {obj['number']!r}"))
    return out


def frame_problems(frame: Any, path: str) -> list[Problem]:
    """Every schema problem of one parsed per-frame JSON value (core keys strict, optional keys type-checked)."""
    if not isinstance(frame, dict):
        return [Problem(path, None, f"top level must be a JSON object, got {type(frame).__name__}")]
    if "humans" not in frame:
        return [Problem(path, "humans", "missing key")]
    humans = frame["humans"]
    if not isinstance(humans, list):
        return [Problem(path, "humans", f"must be a list, got {type(humans).__name__}")]
    out: list[Problem] = []
    if "objects" in frame:
        out += _objects_problems(frame["objects"], path, "objects")
    for key, human in _entries(humans, path, "humans", out):
        out += _required_box_problems(human, path, key)
        number = human.get("number")
        if number is not None and not _is_id(number):
            out.append(Problem(path, f"{key}.number", f"must be an integer within 64 bits, got {number!r}"))
        if "objects" in human:
            out += _objects_problems(human["objects"], path, f"{key}.objects")
        if "parts" not in human:
            out.append(Problem(path, f"{key}.parts", "missing key"))
            continue
        parts = human["parts"]
        if not isinstance(parts, dict):
            out.append(Problem(path, f"{key}.parts", f"must be an object keyed by part name, got {type(parts).__name__}"))
            continue
        for name, part in parts.items():
            pkey = f"{key}.parts.{name}"
            reason = _text_problem(name)
            if reason is not None:
                out.append(Problem(path, f"{key}.parts.{name!a}", f"part name {reason}"))
                continue
            if not isinstance(part, dict):
                out.append(Problem(path, pkey, f"must be an object, got {type(part).__name__}"))
                continue
            out += _required_box_problems(part, path, pkey)
            if "verb" not in part:
                out.append(Problem(path, f"{pkey}.verb", "missing key"))
            elif not isinstance(part["verb"], str):
                out.append(Problem(path, f"{pkey}.verb", f"must be a string, got {type(part['verb']).__name__}"))
            elif _text_problem(part["verb"]) is not None:
                out.append(Problem(path, f"{pkey}.verb", _text_problem(part["verb"])))
    return out


def parse_frame_bytes(data: bytes, path: str) -> Any:
    """Parse one per-frame file's bytes; :class:`InputError` (with the JSON line) when empty or not valid JSON."""
    from partwise.data import safe_json

    return safe_json.loads(data, path, label="invalid JSON", check_text=False)  # frame_problems names the part


def load_frame(path: str | os.PathLike) -> dict:
    """One per-frame JSON, parsed and checked; :class:`InputError` naming the file and key on the first problem."""
    from partwise.data import safe_json

    path = os.fspath(path)
    frame = parse_frame_bytes(safe_json.read_bytes(path), path)
    problems = frame_problems(frame, path)
    if problems:
        raise InputError.from_problem(problems[0])
    return frame
