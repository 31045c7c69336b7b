"""Kinetics-TPS ``list/`` files: the part, state and object vocabularies, and the per-video frame counts."""
from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from partwise.data.kinetics_tps.layout import LIST_FILES
from partwise.errors import InputError
from partwise.io import atomic_write
from partwise.vocab import Vocabulary


@dataclass(frozen=True)
class TpsVocab:
    """The three vocabularies of ``list/``: body parts (10), part states (74), object classes (75)."""

    parts: Vocabulary
    states: Vocabulary
    objects: Vocabulary


def read_name_list(path: str | os.PathLike, vocab_name: str | None = None) -> Vocabulary:
    """One name per line, optionally preceded by an integer id (``3 left_arm`` or ``3,left_arm``).

    Ids are taken from the file when every line has one, else names are numbered 0, 1, ... in file order.
    Blank lines are skipped; duplicate names or ids are errors.
    """
    path = os.fspath(path)
    names, ids = [], []
    try:
        with open(path, encoding="utf-8-sig") as fh:
            lines = fh.read().splitlines()
    except UnicodeDecodeError as exc:
        raise InputError(path, None, f"not UTF-8 text: {exc.reason}") from None
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text:
            continue
        match = re.match(r"^(\d+)[\s,:]+(\S.*)$", text)
        name = match.group(2).strip() if match else text
        if name in names:
            raise InputError(path, number, f"duplicate name {name!r}")
        names.append(name)
        ids.append(int(match.group(1)) if match else None)
    if any(i is None for i in ids):
        ids = list(range(len(names)))
    elif len(set(ids)) != len(ids):
        raise InputError(path, None, "duplicate ids")
    return Vocabulary(vocab_name or f"kinetics-tps-{Path(path).stem}", tuple(names), tuple(ids))


def write_name_list(names: Iterable[str], path: str | os.PathLike) -> None:
    """One name per line (the distributed layout), atomic."""
    with atomic_write(path) as fh:
        for name in names:
            fh.write(f"{name}\n")


def read_lists(path: str | os.PathLike) -> TpsVocab:
    """The three vocabularies from a ``list/`` folder (or a dataset root that contains ``list/``)."""
    folder = Path(path)
    if (folder / "list").is_dir():
        folder = folder / "list"
    vocabs = {}
    for key, name in LIST_FILES.items():
        file = folder / name
        if not file.exists():
            raise InputError(file, None, "missing list file")
        vocabs[key] = read_name_list(file, f"kinetics-tps-{key}")
    return TpsVocab(**vocabs)


def write_lists(vocab: TpsVocab, path: str | os.PathLike) -> None:
    """Write the three list files into the folder ``path`` (names only, in id order)."""
    for key, name in LIST_FILES.items():
        voc: Vocabulary = getattr(vocab, key)
        order = sorted(range(len(voc.ids)), key=lambda i: int(voc.ids[i]))  # stable, as ties keep file order
        write_name_list([voc.names[i] for i in order], Path(path) / name)


def read_frame_counts(path: str | os.PathLike) -> dict[str, int]:
    """``video_{train,test}_flist.csv`` -> ``{video: frame count}``.

    The official layout is not public, so this reader is tolerant: each line holds a video reference and an
    integer frame count, separated by a comma, tab or spaces; a first line whose count is not an integer is taken
    as a header; the video reference may be a path (``class/video.mp4`` or a frame folder) and is reduced to its
    base name without extension. When a line has several integers the last one is the count.
    """
    path = os.fspath(path)
    counts: dict[str, int] = {}
    with open(path, encoding="utf-8-sig") as fh:
        text = fh.read()
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = [f.strip() for f in re.split(r"[,\t ]+", line.strip()) if f.strip()]
        if len(fields) < 2 or not fields[-1].isdigit():
            if number == 1 and not counts:
                continue  # header
            raise InputError(path, number, f"expected '<video>,<frame count>', got {line.strip()!r}")
        video = os.path.splitext(os.path.basename(fields[0].rstrip("/")))[0]
        if video in counts:
            raise InputError(path, number, f"duplicate video {video!r}")
        counts[video] = int(fields[-1])
    return counts


def write_frame_counts(counts: dict[str, int], path: str | os.PathLike) -> None:
    """Write ``{video: frames}`` as CSV with the header ``video,num_frames`` (the layout :func:`read_frame_counts`
    reads back)."""
    with atomic_write(path, newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["video", "num_frames"])
        for video, count in counts.items():
            writer.writerow([video, int(count)])
