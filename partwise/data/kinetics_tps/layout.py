"""Kinetics-TPS tree layout: where the per-frame JSON files sit and how they are named.

Layout as the dataset distributes it::

    Kinetics-TPS/
      train_annotations/<class>/<video>/<video>/img_00001.json     one JSON per frame, 1-based img_%05d
      list/body_part.txt, part_stat.txt, object.txt                one name per line
      list/video_train_flist.csv, video_test_flist.csv             frames per video (layout not public)

The tree can be given as the dataset root (every ``<split>_annotations`` folder in it is read, the split taken
from the folder name) or as an annotation folder (split ``train`` unless given). Classes and videos are discovered
from the listing, never hard-coded.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Iterator

from partwise.errors import InputError, Problem

DATASET = "kinetics-tps"
PASTA_VOCAB = "kinetics-tps"
FRAME_RE = re.compile(r"^img_(\d+)\.json$")
ANNOTATION_SUFFIX = "_annotations"
LIST_FILES = {"parts": "body_part.txt", "states": "part_stat.txt", "objects": "object.txt"}
#: The evaluator scores every 5th frame starting at img_00001 (img_00001, img_00006, ...).
GT_STRIDE = 5


def frame_name(index: int) -> str:
    """Per-frame JSON name of the 1-based frame ``index``: ``img_00006.json``."""
    return f"img_{index:05d}.json"


def frame_index(name: str) -> int | None:
    """1-based frame number of ``img_00006.json`` (6), or None when the name does not follow ``img_%05d.json``."""
    match = FRAME_RE.match(name)
    return int(match.group(1)) if match else None


# --------------------------------------------------------------------------------------------------------------
# Tree discovery


@dataclass(frozen=True)
class VideoDir:
    """One video's folder of per-frame JSON: ``files`` (paths) sorted by frame number, ``indices`` their numbers."""

    split: str
    label: str
    video_id: str
    folder: str
    files: tuple[str, ...]
    indices: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not self.indices:
            object.__setattr__(self, "indices", tuple(frame_index(os.path.basename(f)) for f in self.files))


def _subdirs(path: str) -> list[os.DirEntry]:
    return sorted((e for e in os.scandir(path) if e.is_dir() and not e.name.startswith(".")), key=lambda e: e.name)


def annotation_roots(path: str | os.PathLike, split: str | None = None) -> list[tuple[str, str]]:
    """``[(split, annotation folder)]`` for a dataset root (its ``*_annotations`` folders) or one annotation folder."""
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise InputError(path, None, "not a folder")
    found = [(e.name[: -len(ANNOTATION_SUFFIX)], e.path) for e in _subdirs(path) if e.name.endswith(ANNOTATION_SUFFIX)]
    if found:
        if split is not None:
            found = [(s, p) for s, p in found if s == split] or [(split, p) for _, p in found]
        return found
    name = os.path.basename(os.path.normpath(path))
    default = name[: -len(ANNOTATION_SUFFIX)] if name.endswith(ANNOTATION_SUFFIX) else "train"
    return [(split or default, path)]


#: A folder's ``.json`` names joined by ``/`` (which no file name holds) when every one is ``img_<ASCII digits>.json``.
_ALL_FRAME_NAMES = re.compile(r"(?:img_[0-9]+\.json/)*")


def _frame_files(folder: str) -> tuple[list[str], list[int], list[str]]:
    """Per-frame JSON paths in ``folder`` sorted by frame number, those numbers, and other ``.json`` names."""
    names = [name for name in os.listdir(folder) if name.endswith(".json")]  # names only: no DirEntry objects
    prefix = folder + os.sep
    # The usual folder, checked at C speed: only img_<digits>.json names, all as long (zero-padded), so that their
    # order as strings is their frame order.
    if _ALL_FRAME_NAMES.fullmatch("/".join(names) + "/") and len(set(map(len, names))) <= 1:
        names.sort()
        return [prefix + n for n in names], [int(n[4:-5]) for n in names], []
    frames, others = [], []
    for name in names:  # no regex per name (FRAME_RE, spelled out)
        digits = name[4:-5]
        if name.startswith("img_") and digits.isdecimal():
            frames.append((int(digits), name))
        else:
            others.append(name)
    frames.sort()
    return [prefix + n for _, n in frames], [i for i, _ in frames], sorted(others)


def iter_videos(path: str | os.PathLike, split: str | None = None,
                problems: list[Problem] | None = None) -> Iterator[VideoDir]:
    """Every video folder of the tree, classes discovered from the listing (no hard-coded class names).

    The frames sit in ``<class>/<video>/<video>/`` (the doubled folder as distributed) or directly in
    ``<class>/<video>/``. Stray ``.json`` files whose names are not ``img_<n>.json`` are problems: appended to
    ``problems`` when given, else raised as :class:`InputError`.
    """
    found = False
    for split_name, root in annotation_roots(path, split):
        for cls in _subdirs(root):
            for video in _subdirs(cls.path):
                inner = os.path.join(video.path, video.name)
                folder = inner if os.path.isdir(inner) else video.path
                files, indices, others = _frame_files(folder)
                for name in others:
                    problem = Problem(os.path.join(folder, name), None, "unexpected file name (expected img_<n>.json)")
                    if problems is None:
                        raise InputError.from_problem(problem)
                    problems.append(problem)
                if files:
                    found = True
                    yield VideoDir(split_name, cls.name, video.name, folder, tuple(files), tuple(indices))
    if not found:  # an empty folder or another dataset's: nothing read is an error, not 0 persons / "valid"
        problem = Problem(os.fspath(path), None, "no Kinetics-TPS frame files "
                          "(<split>_annotations/<class>/<video>/img_<n>.json) in this folder")
        if problems is None:
            raise InputError.from_problem(problem)
        problems.append(problem)
