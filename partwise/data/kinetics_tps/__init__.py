"""Kinetics-TPS (Kinetics Temporal Part State): the annotation tree, the list files and the evaluator's JSON files.

Layout as the dataset distributes it::

    Kinetics-TPS/
      train_annotations/<class>/<video>/<video>/img_00001.json     one JSON per frame, 1-based img_%05d
      list/body_part.txt, part_stat.txt, object.txt                one name per line
      list/video_train_flist.csv, video_test_flist.csv             frames per video (layout not public)

Per-frame JSON (core keys; all boxes are ``[x1, y1, x2, y2]`` in pixels of the extracted frames)::

    {"humans": [{"box": [x1, y1, x2, y2],
                 "parts": {"left_arm": {"box": [x1, y1, x2, y2], "verb": "bend"}, ...}}, ...]}

The tree can be given as the dataset root (every ``<split>_annotations`` folder in it is read, the split taken
from the folder name), as an annotation folder (split ``train`` unless given), as one per-frame JSON file, or as
one of the evaluator files ``gt_part_result.json`` / ``pred_part_result.json`` (see :func:`read_part_result`).
Records: one row per human per frame (:mod:`~partwise.data.kinetics_tps.columns` says which columns are filled).

One concern per module, each importing only the ones above it:

* :mod:`~partwise.data.kinetics_tps.layout` -- the tree: folders, file names, :func:`iter_videos`;
* :mod:`~partwise.data.kinetics_tps.checks` -- per-frame validation naming the file and key (the precise path);
* :mod:`~partwise.data.kinetics_tps.columns` -- a chunk's columns and their assembly into person records;
* :mod:`~partwise.data.kinetics_tps.arrow_json` -- the fast path: a chunk through Arrow's JSON reader;
* :mod:`~partwise.data.kinetics_tps.lists` -- ``list/``: vocabularies and frame counts;
* :mod:`~partwise.data.kinetics_tps.tree` -- the tree as dicts, records -> tree;
* :mod:`~partwise.data.kinetics_tps.submission` -- the evaluator's ``*_part_result.json`` / ``*_vid_result.json``;
* :mod:`~partwise.data.kinetics_tps.ingest` -- :func:`read_records` / :func:`iter_records` (streaming, chunked);
* :mod:`~partwise.data.kinetics_tps.problems` -- :func:`validate`.

This package re-exports the names code and tests use, so ``from partwise.data.kinetics_tps import X`` keeps
working; each is imported on first use (:pep:`562`), so ``partwise data ingest`` does not load the vocabularies,
the evaluator files or the tree writer. Module-level settings (``FILES_PER_CHUNK``...) are read where they are
defined: set them on the module (``kinetics_tps.ingest.FILES_PER_CHUNK``), not on this package.
"""
from __future__ import annotations

import importlib
from typing import Any

#: exported name -> the module of this package that defines it
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(["ANNOTATION_SUFFIX", "DATASET", "FRAME_RE", "GT_STRIDE", "LIST_FILES", "PASTA_VOCAB", "VideoDir",
                     "annotation_roots", "frame_index", "frame_name", "iter_videos"], "layout"),
    **dict.fromkeys(["frame_problems", "load_frame", "parse_frame_bytes"], "checks"),
    **dict.fromkeys(["_parse_lines"], "arrow_json"),
    **dict.fromkeys(["TpsVocab", "read_frame_counts", "read_lists", "read_name_list", "write_frame_counts",
                     "write_lists", "write_name_list"], "lists"),
    **dict.fromkeys(["_hoist_shared_objects", "frames_from_records", "read_tree", "write_records", "write_tree"],
                    "tree"),
    **dict.fromkeys(["gt_from_tree", "part_result_from_records", "part_result_problems", "proposals",
                     "read_part_result", "read_vid_result", "records_from_part_result", "vid_result_from_records",
                     "write_json", "write_part_result", "write_vid_result"], "submission"),
    **dict.fromkeys(["FILES_PER_CHUNK", "FIRST_CHUNK_FILES", "PARALLEL_MIN_FILES", "_python_chunk", "_read_bytes",
                     "iter_records", "parse_threads", "read_records"], "ingest"),
    **dict.fromkeys(["validate"], "problems"),
}
_MODULES = frozenset(["layout", "checks", "columns", "arrow_json", "lists", "tree", "submission", "ingest", "problems"])

__all__ = sorted(name for name in _EXPORTS if not name.startswith("_"))


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return importlib.import_module(f"{__name__}.{name}")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups do not come here
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS) | _MODULES)
