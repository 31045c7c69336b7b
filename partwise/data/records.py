"""The canonical record model: one row per person at a keyframe (or per person in an image).

Every reader turns its format into a ``pyarrow.Table`` with :data:`PERSON_SCHEMA`; the store writes that table to
Parquet and exposes it to DuckDB as the view ``persons``. :class:`PersonRecord` is the same row as a Python object,
for code that builds or inspects records one at a time; :class:`RecordBuilder` accumulates rows column-wise.

Columns (``null`` where the source does not carry the information):

=============== ================================ ===========================================================
column          type                             meaning
=============== ================================ ===========================================================
dataset         string                           ``ava``, ``ava-kinetics``, ``hake-ava``, ``gio``,
                                                 ``kinetics-tps``, ``hake-image``, ``hake-instance``, ``hico-det``,
                                                 ``synthetic``, or a detector's name for predictions
split           string                           ``train``, ``val``, ``test``, ... (from the file name or given)
video_id        string                           video id (AVA YouTube id, TPS video name) or image file name
time_s          float64                          keyframe time in seconds (AVA: 902..1798); null for images
frame_index     int64                            frame number of the keyframe in the dataset's own frame naming
                                                 (AVA: ``(t-900)*30``; TPS: the ``img_%05d`` number, 1-based)
width, height   int32                            frame/image size in pixels, when known
x1, y1, x2, y2  float64                          person box, normalized to [0, 1] (null if the size is unknown
                                                 and the source is in pixels)
px1..py2        float64                          person box in pixels (null if the size is unknown and the
                                                 source is normalized)
person_id       int64                            person / track id (AVA person_id, GIO human_id, TPS ``number``)
score           float64                          detection score for predicted boxes; null for ground truth
actions         list<int32>                      the dataset's own action ids (AVA 1..80, HICO HOI 1..600, ...)
action_vocab    string                           vocabulary name of ``actions`` (``ava80``, ``hico_hoi600``, ...)
pasta           list<string>                     part states as ``"<part>: <state>"`` names, e.g. ``"hand: hold"``
pasta_vocab     string                           vocabulary of ``pasta`` (``pasta_ava87``, ``pasta93``,
                                                 ``pasta76``, ``kinetics-tps``)
part_boxes      list<struct>                     ``{part, x1, y1, x2, y2, px1, py1, px2, py2, state}``: part name
                                                 (``right_hand``, ``left_arm``, ...), boxes as above, and the
                                                 part's state name when the source gives one per box (TPS)
objects         list<struct>                     ``{class_name, class_id, action, object_id, x1..y2, px1..py2}``:
                                                 interacting object, its class, the HOI/action id of the
                                                 interaction and the source's object id
video_label     string                           video-level class name (Kinetics-TPS action class folder);
                                                 null elsewhere
source          string                           provenance ``"<file>:<line>"`` or ``"<file>:<key>"``
keypoints       list<float32>                    the person's 17 COCO keypoints flattened as ``x0, y0, s0, x1, y1,
                                                 s1, ...`` (51 values): ``x, y`` in pixels of the frame, ``s`` a
                                                 confidence / visibility in [0, 1] (< 0.2 = not usable, the
                                                 Activity2Vec threshold); COCO order 0 nose, 1/2 left/right eye,
                                                 3/4 ears, 5/6 shoulders, 7/8 elbows, 9/10 wrists, 11/12 hips,
                                                 13/14 knees, 15/16 ankles (odd = left). Null when the source has
                                                 no pose; older stores and files without the column read as null
=============== ================================ ===========================================================
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

import pyarrow as pa

_BOX_FIELDS = [
    pa.field("x1", pa.float64()), pa.field("y1", pa.float64()), pa.field("x2", pa.float64()), pa.field("y2", pa.float64()),
    pa.field("px1", pa.float64()), pa.field("py1", pa.float64()), pa.field("px2", pa.float64()), pa.field("py2", pa.float64()),
]

PART_BOX_TYPE = pa.struct([pa.field("part", pa.string()), *_BOX_FIELDS, pa.field("state", pa.string())])
OBJECT_TYPE = pa.struct([
    pa.field("class_name", pa.string()),
    pa.field("class_id", pa.int32()),
    pa.field("action", pa.int32()),
    pa.field("object_id", pa.int64()),
    *_BOX_FIELDS,
])

PERSON_SCHEMA = pa.schema([
    pa.field("dataset", pa.string(), nullable=False),
    pa.field("split", pa.string()),
    pa.field("video_id", pa.string(), nullable=False),
    pa.field("time_s", pa.float64()),
    pa.field("frame_index", pa.int64()),
    pa.field("width", pa.int32()),
    pa.field("height", pa.int32()),
    *_BOX_FIELDS,
    pa.field("person_id", pa.int64()),
    pa.field("score", pa.float64()),
    pa.field("actions", pa.list_(pa.int32())),
    pa.field("action_vocab", pa.string()),
    pa.field("pasta", pa.list_(pa.string())),
    pa.field("pasta_vocab", pa.string()),
    pa.field("part_boxes", pa.list_(PART_BOX_TYPE)),
    pa.field("objects", pa.list_(OBJECT_TYPE)),
    pa.field("video_label", pa.string()),
    pa.field("source", pa.string()),
    pa.field("keypoints", pa.list_(pa.float32())),
])

#: number of values of a non-null ``keypoints`` cell (17 COCO keypoints x (x, y, score))
KEYPOINT_VALUES = 51

COLUMNS: tuple[str, ...] = tuple(PERSON_SCHEMA.names)
BOX_KEYS: tuple[str, ...] = ("x1", "y1", "x2", "y2", "px1", "py1", "px2", "py2")


@dataclass
class PartBox:
    part: str
    x1: float | None = None
    y1: float | None = None
    x2: float | None = None
    y2: float | None = None
    px1: float | None = None
    py1: float | None = None
    px2: float | None = None
    py2: float | None = None
    state: str | None = None


@dataclass
class ObjectBox:
    class_name: str | None = None
    class_id: int | None = None
    action: int | None = None
    object_id: int | None = None
    x1: float | None = None
    y1: float | None = None
    x2: float | None = None
    y2: float | None = None
    px1: float | None = None
    py1: float | None = None
    px2: float | None = None
    py2: float | None = None


@dataclass
class PersonRecord:
    """One person at one keyframe (or in one image). Field meanings: see the module docstring."""

    dataset: str
    video_id: str
    split: str | None = None
    time_s: float | None = None
    frame_index: int | None = None
    width: int | None = None
    height: int | None = None
    x1: float | None = None
    y1: float | None = None
    x2: float | None = None
    y2: float | None = None
    px1: float | None = None
    py1: float | None = None
    px2: float | None = None
    py2: float | None = None
    person_id: int | None = None
    score: float | None = None
    actions: list[int] = field(default_factory=list)
    action_vocab: str | None = None
    pasta: list[str] = field(default_factory=list)
    pasta_vocab: str | None = None
    part_boxes: list[PartBox] = field(default_factory=list)
    objects: list[ObjectBox] = field(default_factory=list)
    video_label: str | None = None
    source: str | None = None
    keypoints: list[float] | None = None

    def fill_boxes(self) -> "PersonRecord":
        """Derive the missing box representation (normalized <-> pixel) when the frame size is known."""
        fill_box(self)
        for part in self.part_boxes:
            fill_box(part, self.width, self.height)
        for obj in self.objects:
            fill_box(obj, self.width, self.height)
        return self


def fill_box(box: Any, width: int | None = None, height: int | None = None) -> None:
    """Fill ``x1..y2`` from ``px1..py2`` or the reverse, in place, given the frame size (no +1 convention)."""
    width = getattr(box, "width", None) if width is None else width
    height = getattr(box, "height", None) if height is None else height
    if not width or not height:
        return
    if box.x1 is None and box.px1 is not None:
        box.x1, box.x2 = box.px1 / width, box.px2 / width
        box.y1, box.y2 = box.py1 / height, box.py2 / height
    elif box.px1 is None and box.x1 is not None:
        box.px1, box.px2 = box.x1 * width, box.x2 * width
        box.py1, box.py2 = box.y1 * height, box.y2 * height


class RecordBuilder:
    """Accumulates rows column by column and produces a ``pyarrow.Table`` with :data:`PERSON_SCHEMA`.

    Fast path for readers: ``append(dataset=..., video_id=..., x1=..., ...)`` with plain values (lists of dicts for
    ``part_boxes`` and ``objects``); unspecified columns are null (or empty lists).
    """

    _LIST_COLUMNS = ("actions", "pasta", "part_boxes", "objects")

    def __init__(self) -> None:
        self._columns: dict[str, list] = {name: [] for name in COLUMNS}
        self._rows = 0

    def __len__(self) -> int:
        return self._rows

    def append(self, **values: Any) -> None:
        unknown = set(values) - set(self._columns)
        if unknown:
            raise KeyError(f"unknown record columns: {sorted(unknown)}")
        for name, column in self._columns.items():
            value = values.get(name)
            if value is None and name in self._LIST_COLUMNS:
                value = []
            column.append(value)
        self._rows += 1

    def add(self, record: PersonRecord) -> None:
        values = asdict(record)
        self.append(**values)

    def extend(self, records: Iterable[PersonRecord]) -> None:
        for record in records:
            self.add(record)

    def to_table(self) -> pa.Table:
        return pa.Table.from_pydict(self._columns, schema=PERSON_SCHEMA)


def empty_table() -> pa.Table:
    return PERSON_SCHEMA.empty_table()


def records_to_table(records: Iterable[PersonRecord]) -> pa.Table:
    builder = RecordBuilder()
    builder.extend(records)
    return builder.to_table()


def table_to_records(table: pa.Table) -> list[PersonRecord]:
    """Rows of a :data:`PERSON_SCHEMA` table as :class:`PersonRecord` objects."""
    out = []
    for row in table.select(list(COLUMNS)).to_pylist():
        row["part_boxes"] = [PartBox(**p) for p in row["part_boxes"] or []]
        row["objects"] = [ObjectBox(**o) for o in row["objects"] or []]
        row["actions"] = row["actions"] or []
        row["pasta"] = row["pasta"] or []
        out.append(PersonRecord(**row))
    return out


def conform(table: pa.Table) -> pa.Table:
    """Cast a table with the person columns (possibly fewer, in any order) to :data:`PERSON_SCHEMA`."""
    arrays = []
    for fld in PERSON_SCHEMA:
        if fld.name in table.column_names:
            arrays.append(table.column(fld.name).cast(fld.type))
        else:
            arrays.append(pa.nulls(table.num_rows, fld.type))
    return pa.Table.from_arrays(arrays, schema=PERSON_SCHEMA)


# ---------------------------------------------------------------------------------------------------------------------
# value checks: the one range/finite check per record field

#: largest ``time_s`` accepted: any frame rate up to 1000 fps still gives a frame index within int64
MAX_TIME_S = float(2 ** 63 // 1000)
#: how far ``x2`` may lie left of ``x1`` (``y2`` above ``y1``) before a box counts as inverted: rounding of
#: normalized <-> pixel conversions, nothing more (pixels: a thousandth of a pixel)
BOX_ORDER_TOLERANCE = 1e-6


def _numbers(column: pa.Array | pa.ChunkedArray) -> tuple[Any, Any]:
    """(float64 values with NaN for null, valid mask) of a numeric column."""
    import numpy as np

    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    valid = column.is_valid().to_numpy(zero_copy_only=False)
    column = column.cast(pa.float64(), safe=False)
    if column.null_count:
        column = column.fill_null(0.0)
    # a float64 column without nulls is read in place, not copied (the checks only read it)
    values = np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.float64)
    return values, valid


def _box_problems(fields: dict[str, Any], prefix: str) -> list[tuple[Any, str]]:
    """(bad-row mask, reason) for the eight box fields of one box level (person, part, object); a field with no
    value at all (e.g. the normalized box of a source in pixels) has nothing to check and is skipped."""
    import numpy as np

    parsed = {name: None if fields[name].null_count == len(fields[name]) else _numbers(fields[name])
              for name in BOX_KEYS}
    out = []
    for name in BOX_KEYS:
        if parsed[name] is not None:
            values, valid = parsed[name]
            out.append((valid & ~np.isfinite(values), f"{prefix}{name} is not a finite number"))
    for a, b, tol in (("x1", "x2", BOX_ORDER_TOLERANCE), ("y1", "y2", BOX_ORDER_TOLERANCE),
                      ("px1", "px2", 1e-3), ("py1", "py2", 1e-3)):
        if parsed[a] is None or parsed[b] is None:
            continue
        (lo, lo_ok), (hi, hi_ok) = parsed[a], parsed[b]
        out.append((lo_ok & hi_ok & (hi < lo - tol), f"{prefix}box has {b} < {a}"))
    return out


def value_problem(table: pa.Table) -> tuple[int, str] | None:
    """The first row of a person table (:data:`PERSON_SCHEMA` columns) with a value out of range, and why: boxes
    finite with ``x1 <= x2``, ``y1 <= y2`` (person, part and object boxes); ``time_s`` finite, non-negative and
    small enough for an int64 frame index; ``frame_index``, ``width``, ``height`` non-negative; ``score`` finite.
    Ids are int64 by the schema (a reader that cannot convert a value names it itself). None when all is well."""
    import numpy as np

    n = table.num_rows
    if n == 0:
        return None
    checks: list[tuple[Any, str]] = []
    names = set(table.column_names)
    if "time_s" in names:
        t, ok = _numbers(table.column("time_s"))
        checks.append((ok & ~np.isfinite(t), "time_s is not a finite number"))
        checks.append((ok & np.isfinite(t) & (t < 0), "time_s is negative"))
        checks.append((ok & np.isfinite(t) & (t > MAX_TIME_S), f"time_s is beyond {MAX_TIME_S:.3g} s"))
    for name in ("frame_index", "width", "height"):
        if name in names:
            v, ok = _numbers(table.column(name))
            checks.append((ok & (v < 0), f"{name} is negative"))
    if "score" in names:
        s, ok = _numbers(table.column("score"))
        checks.append((ok & ~np.isfinite(s), "score is not a finite number"))
    if all(k in names for k in BOX_KEYS):
        checks += _box_problems({k: table.column(k) for k in BOX_KEYS}, "")
    for column, prefix in (("part_boxes", "part "), ("objects", "object ")):
        if column not in names:
            continue
        lists = table.column(column).combine_chunks()
        if not len(lists) or pa.types.is_null(lists.type):
            continue
        values = lists.flatten()
        if not len(values) or not pa.types.is_struct(values.type):
            continue
        if not all(values.type.get_field_index(k) >= 0 for k in BOX_KEYS):
            continue
        row_of = np.repeat(np.arange(n), pc_list_lengths(lists))
        for mask, reason in _box_problems({k: values.field(k) for k in BOX_KEYS}, prefix):
            if not mask.any():  # nothing to place on the rows (almost always)
                continue
            rows = np.zeros(n, bool)
            rows[row_of[mask]] = True
            checks.append((rows, reason))
    best: tuple[int, str] | None = None
    for mask, reason in checks:
        if mask.any():
            row = int(np.argmax(mask))
            if best is None or row < best[0]:
                best = (row, reason)
    return best


def pc_list_lengths(lists: pa.Array) -> Any:
    import pyarrow.compute as pc

    return pc.list_value_length(lists).fill_null(0).to_numpy(zero_copy_only=False)


def check_values(table: pa.Table, path: str | None = None) -> pa.Table:
    """``table`` unchanged when :func:`value_problem` finds nothing; else :class:`partwise.errors.InputError`
    naming the file and the line/key of the bad row (from its ``source`` column, ``"<file>:<line>"`` or
    ``"<file>:<key>"``, resolved against ``path``, the file or folder the reader was given)."""
    import os

    from partwise.errors import InputError

    found = value_problem(table)
    if found is None:
        return table
    row, reason = found
    source = table.column("source")[row].as_py() if "source" in table.column_names else None
    file, where = None, None
    if source:
        file, _, where = source.rpartition(":")
        if not file:
            file, where = source, None
    if path is not None:
        path = os.fspath(path)
        if not file:
            file = path
        elif os.path.isdir(path):
            joined = os.path.join(path, file)
            file = joined if os.path.exists(joined) else file
        else:
            file = path
    if where is not None and where.isdigit():
        where = int(where)
    raise InputError(file, where, reason)
