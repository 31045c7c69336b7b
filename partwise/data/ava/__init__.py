"""AVA v2.1 / v2.2 annotation files: CSV tables, excluded timestamps, frame lists, dense proposals, records.

File kinds (all without header unless said otherwise):

* **GT CSV** ``ava_{train,val}_v2.x.csv``: ``video,ts,x1,y1,x2,y2,action,person_id`` -- one row per (person box,
  action); a person with k labels has k rows with identical box values. The 2020 official format adds 2-column
  rows ``video,ts`` for keyframes that have no box.
* **Detection CSV** (mmaction2 / official evaluator input): ``video,ts,x1,y1,x2,y2,action,score``.
* **SlowFast box lists**: ``video,ts,x1,y1,x2,y2,,score`` -- empty action column.
* **AVA-Kinetics** rows: 7 columns ``video,ts,x1,y1,x2,y2,action`` (no person id), fractional timestamps.
* **Excluded timestamps** ``video,second``.
* **Frame lists** (SlowFast): space-separated with one header line ``original_video_id video_id frame_id path labels``.
* **Dense proposals** ``.pkl``: ``{"video,ts04d": float ndarray (N, 5) [x1, y1, x2, y2, score]}``; read with the
  restricted unpickler of :mod:`partwise.data.safe_pickle`, never with ``pickle.load``.

Conventions: boxes are normalized ``x1, y1, x2, y2`` in [0, 1]; AVA timestamps are integer seconds 902..1798;
the keyframe's frame index is ``(t - 900) * 30`` (:func:`keyframe_index`); action ids are AVA's own 1..80
(vocabulary ``ava80``).

:func:`read_csv` is the fast columnar reader (pyarrow's multi-threaded CSV parser when every row has the same
number of fields, a vectorized split of whole lines otherwise; a typed streaming path for evaluation);
:func:`validate_csv` runs the same checks and lists every problem instead of raising on the first.

Modules, one concern each: :mod:`~partwise.data.ava.table` (:class:`AvaCsv`, constants; numpy only),
:mod:`~partwise.data.ava.fields` (lines -> string fields), :mod:`~partwise.data.ava.checks` (numbers and
problems), :mod:`~partwise.data.ava.parse` (the full parser, :func:`read_csv`, :func:`validate_csv`),
:mod:`~partwise.data.ava.typed` (the typed streaming fast path), :mod:`~partwise.data.ava.write` (number
formatting, :func:`write_csv`), :mod:`~partwise.data.ava.excluded`, :mod:`~partwise.data.ava.frame_lists`,
:mod:`~partwise.data.ava.proposals`, :mod:`~partwise.data.ava.records` (folders <-> canonical records).
Names are re-exported here and imported on first use, so ``from partwise.data.ava import AvaCsv`` loads
numpy only.
"""
from __future__ import annotations

import importlib

#: every name of the former single-module ``partwise.data.ava`` -> the submodule that defines it
_WHERE: dict[str, str] = {
    # table
    "AVA_FPS": "table",
    "AVA_TIMESTAMP_START": "table",
    "AVA_VALID_TIMESTAMPS": "table",
    "AVA_NUM_ACTIONS": "table",
    "AVA_ID_LENGTH": "table",
    "MAX_PROBLEMS": "table",
    "AvaCsv": "table",
    "keyframe_index": "table",
    "_empty_table": "table",
    # fields
    "_Fields": "fields",
    "_read_bytes": "fields",
    "_first_line_fields": "fields",
    "_fields_uniform": "fields",
    "_fields_ragged": "fields",
    "_is_utf8": "fields",
    "_split": "fields",
    # checks
    "_FLOAT_RE": "checks",
    "_INT_RE": "checks",
    "_FIELD_NAMES": "checks",
    "_Checks": "checks",
    "_parse_numbers": "checks",
    "_check_values": "checks",
    # parse
    "_number_format": "parse",
    "_uniform_format_all_rows": "parse",
    "_decide_kind": "parse",
    "_parse": "parse",
    "_any_rows": "parse",
    "read_csv": "parse",
    "validate_csv": "parse",
    # write
    "format_fixed": "write",
    "_python_fixed": "write",
    "format_shortest": "write",
    "format_per_row": "write",
    "_format_numbers": "write",
    "_default_ts_format": "write",
    "_null_where": "write",
    "write_csv": "write",
    "_write_columns": "write",
    "_write_lines": "write",
    "keyframe_keys": "write",
    # excluded
    "read_excluded": "excluded",
    "write_excluded": "excluded",
    # frame_lists
    "FRAME_LIST_HEADER": "frame_lists",
    "FrameList": "frame_lists",
    "read_frame_list": "frame_lists",
    "_frame_list_error": "frame_lists",
    "write_frame_list": "frame_lists",
    # proposals
    "read_proposals": "proposals",
    "write_proposals": "proposals",
    # records
    "_GT_NAME": "records",
    "_EXCLUDED_NAME": "records",
    "_SPLIT_TOKEN": "records",
    "split_from_name": "records",
    "annotation_files": "records",
    "group_persons": "records",
    "_actions_lists": "records",
    "table_to_records": "records",
    "_csv_kind": "records",
    "_excluded_keys": "records",
    "read_records": "records",
    "validate": "records",
    "_validate_with": "records",
    "records_to_csv_table": "records",
    "write_records": "records",
}

__all__ = [
    "AVA_FPS",
    "AVA_TIMESTAMP_START",
    "AVA_VALID_TIMESTAMPS",
    "AVA_NUM_ACTIONS",
    "AVA_ID_LENGTH",
    "MAX_PROBLEMS",
    "AvaCsv",
    "keyframe_index",
    "read_csv",
    "validate_csv",
    "format_fixed",
    "format_shortest",
    "format_per_row",
    "write_csv",
    "keyframe_keys",
    "read_excluded",
    "write_excluded",
    "FRAME_LIST_HEADER",
    "FrameList",
    "read_frame_list",
    "write_frame_list",
    "read_proposals",
    "write_proposals",
    "split_from_name",
    "annotation_files",
    "group_persons",
    "table_to_records",
    "read_records",
    "validate",
    "records_to_csv_table",
    "write_records",
]


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
