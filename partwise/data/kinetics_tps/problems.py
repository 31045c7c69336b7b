"""Every problem of a Kinetics-TPS source (``partwise data validate kinetics-tps``): the tree, a per-frame file,
an evaluator file or a ``list/`` folder, each file parsed on its own by the precise path."""
from __future__ import annotations

import os

from partwise.data.kinetics_tps.checks import frame_problems, parse_frame_bytes
from partwise.data.kinetics_tps.layout import LIST_FILES, frame_index, iter_videos
from partwise.data.kinetics_tps.lists import read_name_list
from partwise.data.kinetics_tps.submission import _load_json, part_result_problems, read_vid_result
from partwise.errors import InputError, Problem
from partwise.io import present_file


def validate(path: str | os.PathLike) -> list[Problem]:
    """Every problem in a tree, a per-frame file, a ``*_part_result.json`` / ``*_vid_result.json`` or a list folder.

    Each file is parsed on its own; the first file's keys are the reference schema (core keys ``humans``,
    ``box``, ``parts``, ``verb`` are always required); unknown keys are not problems.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        return [Problem(path, None, "does not exist")]
    if os.path.isfile(path):
        return _file_problems(path)
    problems: list[Problem] = []
    try:
        videos = list(iter_videos(path, problems=problems))
    except InputError as exc:
        return [exc.problem]
    for video in videos:
        for file in video.files:
            with open(file, "rb") as fh:
                try:
                    frame = parse_frame_bytes(fh.read(), file)
                except InputError as exc:
                    problems.append(exc.problem)
                    continue
            problems.extend(frame_problems(frame, file))
    list_dir = os.path.join(path, "list")
    if os.path.isdir(list_dir):
        for key, name in LIST_FILES.items():
            file = os.path.join(list_dir, name)
            try:
                # present_file, not os.path.exists: a dangling link or a link loop is reported, not skipped
                if present_file(file):
                    read_name_list(file)
            except InputError as exc:
                problems.append(exc.problem)
    # the evaluator's files beside the annotation folders (gt_part_result.json, gt_vid_result.json, ...)
    for name in sorted(os.listdir(path)):
        if name.endswith(RESULT_SUFFIXES):
            file = os.path.join(path, name)
            try:
                if present_file(file):
                    problems.extend(_file_problems(file))
            except InputError as exc:
                problems.append(exc.problem)
    return problems


#: the evaluator's file names (``{gt,pred}_part_result.json``, ``{gt,pred}_vid_result.json``)
RESULT_SUFFIXES = ("_part_result.json", "_vid_result.json")


def _file_problems(path: str) -> list[Problem]:
    """Problems of one file: a per-frame JSON, a ``*_vid_result.json`` or a ``*_part_result.json``."""
    name = os.path.basename(path)
    if frame_index(name) is not None:
        with open(path, "rb") as fh:
            try:
                frame = parse_frame_bytes(fh.read(), path)
            except InputError as exc:
                return [exc.problem]
        return frame_problems(frame, path)
    if name.endswith("vid_result.json"):
        try:
            read_vid_result(path)
        except InputError as exc:
            return [exc.problem]
        return []
    try:
        data = _load_json(path)
    except InputError as exc:
        return [exc.problem]
    return part_result_problems(data, path, pred=name.startswith("pred"))
