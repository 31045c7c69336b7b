"""HAKE image-level JSON (HAKE-HICO ``hico-training-set-image-level.json``).

Format: one JSON object keyed by image file name::

    {"HICO_train2015_00000001.jpg": {"hoi_id": [153, 154], "parts_list": [10 x 0/1],
      "foot_list": [12 x 0/1], "leg_list": [10], "hip_list": [5], "hand_list": [31], "arm_list": [5],
      "head_list": [13]}, ...}

* ``hoi_id``: 1-based HICO HOI ids (``hico_hoi600``).
* ``parts_list``: 10 binary flags in HAKE body-part order (``vocab.BODY_PARTS``: right_foot, right_leg, left_leg,
  left_foot, hip, head, right_hand, right_arm, left_arm, left_hand).
* ``<part>_list``: multi-hot over that part's states in the **76 setting** (``pasta76``, no_interaction last).

Row API (exact content): :func:`read_hake_image` returns the parsed object (a ``dict`` in file order, every value
as read); :func:`write_hake_image` writes it with ``json.dumps`` defaults -- separators ``", "`` and ``": "``, no
indent, ASCII escapes, no trailing newline, keys in the dict's order. Reading and writing gives the same content
(same keys, order and values); the bytes are identical for files written in that style.

Records: one per image (``video_id`` = image name, dataset ``"hake-image"``, ``actions`` = ``hoi_id`` with
``action_vocab`` ``"hico_hoi600"``, ``pasta`` = the ``pasta76`` names of the set bits, no boxes).
``parts_list`` is not a record column: :func:`write_records` derives it (a body part is 1 when its PaSta part has a
state other than no_interaction), which is an approximation of the annotators' flag.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa

from partwise import vocab
from partwise.data.hake_ava import split_from_name
from partwise.data.records import RecordBuilder, conform
from partwise.errors import InputError, Problem
from partwise.io import atomic_write

DATASET = "hake-image"
PASTA_VOCAB = "pasta76"
ACTION_VOCAB = "hico_hoi600"
PART_KEYS = tuple(f"{part}_list" for part in vocab.PASTA_PARTS)
KEYS = ("hoi_id", "parts_list") + PART_KEYS


class _Duplicate(ValueError):
    pass


def _no_duplicates(pairs: list) -> dict:
    out = {}
    for key, value in pairs:
        if key in out:
            raise _Duplicate(key)
        out[key] = value
    return out


def load_json(path: str | os.PathLike) -> object:
    """Parse a JSON file; :class:`InputError` with the line for bad JSON, duplicate keys or an empty file."""
    from partwise.data import safe_json

    path = os.fspath(path)
    try:
        return safe_json.load(path, object_pairs_hook=_no_duplicates)
    except _Duplicate as exc:
        raise InputError(path, str(exc), "duplicate key") from None


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_image(path: str, name: str, entry: object) -> list[Problem]:
    """Problems of one image entry (``where`` = ``"<image>/<key>"``)."""
    if not isinstance(entry, dict):
        return [Problem(path, name, "image entry is not an object")]
    problems = []
    missing = [k for k in KEYS if k not in entry]
    if missing:
        problems.append(Problem(path, name, f"missing keys {', '.join(missing)}"))
    if "hoi_id" in entry:
        hoi = entry["hoi_id"]
        if not isinstance(hoi, list) or not all(is_int(h) for h in hoi):
            problems.append(Problem(path, f"{name}/hoi_id", "not a list of integers"))
        else:
            known = vocab.load(ACTION_VOCAB)
            for h in hoi:
                if h not in known:
                    problems.append(Problem(path, f"{name}/hoi_id", f"unknown HICO HOI id {h} (expected 1..600)"))
    sizes = (len(vocab.BODY_PARTS),) + vocab.load(PASTA_VOCAB).part_sizes
    for key, size in zip(KEYS[1:], sizes):
        if key not in entry:
            continue  # reported as missing above
        value = entry[key]
        if not isinstance(value, list) or len(value) != size or not all(is_int(v) and v in (0, 1) for v in value):
            problems.append(Problem(path, f"{name}/{key}", f"expected a list of {size} values 0/1"))
    return problems


def read_keyed_json(path: str | os.PathLike, check_entry) -> dict:
    """A JSON object keyed by image name, each entry checked by ``check_entry(path, name, entry) -> problems``
    (:class:`InputError` on the first problem). Shared by the image- and instance-level formats."""
    path = os.fspath(path)
    data = load_json(path)
    if not isinstance(data, dict):
        raise InputError(path, None, "top level is not an object keyed by image name")
    for name, entry in data.items():
        problems = check_entry(path, name, entry)
        if problems:
            raise InputError.from_problem(problems[0])
    return data


def write_compact_json(data: dict, path: str | os.PathLike) -> None:
    """``json.dumps`` defaults (separators ``", "`` / ``": "``, no indent, no trailing newline), atomically."""
    text = json.dumps(data)
    with atomic_write(path) as fh:
        fh.write(text)


def find_json(path: str | os.PathLike, kind: str) -> Path:
    """``path`` itself, or the one ``*<kind>*.json`` (else the one ``*.json``) in the folder ``path``."""
    path = Path(path)
    if path.is_dir():
        found = sorted(path.glob(f"*{kind}*.json")) or sorted(path.glob("*.json"))
        if len(found) != 1:
            raise InputError(path, None, f"expected one {kind} JSON file in this folder, found {len(found)}")
        return found[0]
    if not path.exists():
        raise InputError(path, None, "no such file or folder")
    return path


def read_hake_image(path: str | os.PathLike) -> dict:
    """The image-level JSON object, in file order (:class:`InputError` on the first problem)."""
    return read_keyed_json(path, check_image)


def format_hake_image(data: dict) -> str:
    """JSON text as :func:`write_hake_image` writes it."""
    return json.dumps(data)


def write_hake_image(data: dict, path: str | os.PathLike) -> None:
    """Write the image-level object (``json.dumps`` defaults, see the module docstring), atomically."""
    write_compact_json(data, path)


def _file(path: str | os.PathLike) -> Path:
    return find_json(path, "image-level")


def entry_pasta(entry: dict) -> list[str]:
    """``pasta76`` names of the set bits of an image entry's six per-part lists, in vocabulary order."""
    names = vocab.load(PASTA_VOCAB).names
    bits = [b for key in PART_KEYS for b in entry[key]]
    return [n for n, b in zip(names, bits) if b]


def read_records(path: str | os.PathLike, *, split: str | None = None, progress: bool = False) -> pa.Table:
    """One record per image of an image-level JSON (or of the one such file in a folder)."""
    file = _file(path)
    data = read_hake_image(file)
    split = split or split_from_name(file)
    items = data.items()
    if progress:
        from partwise.progress import bar as tqdm

        items = tqdm(items, desc="hake-image", unit="image")
    builder = RecordBuilder()
    for name, entry in items:
        builder.append(dataset=DATASET, split=split, video_id=name, actions=list(entry["hoi_id"]), action_vocab=ACTION_VOCAB,
                       pasta=entry_pasta(entry), pasta_vocab=PASTA_VOCAB, source=f"{file}:{name}")
    return builder.to_table()


def validate(path: str | os.PathLike) -> list[Problem]:
    """Every problem in the image-level JSON (bad JSON stops at the first syntax error)."""
    try:
        file = _file(path)
        data = load_json(file)
    except InputError as exc:
        return [exc.problem]
    if not isinstance(data, dict):
        return [Problem(os.fspath(file), None, "top level is not an object keyed by image name")]
    problems = []
    for name, entry in data.items():
        problems.extend(check_image(os.fspath(file), name, entry))
    return problems


def records_to_object(table: pa.Table) -> dict:
    """The image-level object from records (one entry per ``video_id``; several records of one image are merged
    by union). PaSta converts to ``pasta76`` by name (names without a counterpart are dropped); a part without any
    state gets its no_interaction bit; ``actions`` must be ``hico_hoi600`` ids."""
    target = vocab.load(PASTA_VOCAB)
    table = conform(table)
    merged: dict[str, tuple[set, set]] = {}
    for rec in table.select(["video_id", "actions", "action_vocab", "pasta", "source"]).to_pylist():
        if rec["actions"] and rec["action_vocab"] != ACTION_VOCAB:
            raise InputError(None, rec["source"] or rec["video_id"], f"actions are {rec['action_vocab']} ids, not hico_hoi600")
        hois, states = merged.setdefault(rec["video_id"], (set(), set()))
        hois.update(rec["actions"] or [])
        for name in rec["pasta"] or []:
            name = name.replace("no interaction", "no_interaction")
            if target.has_name(name):
                states.add(target.id_of(name))
    out = {}
    for name, (hois, states) in merged.items():
        entry: dict = {"hoi_id": sorted(hois)}
        part_lists = []
        for p, part in enumerate(vocab.PASTA_PARTS):
            span = target.part_slice(p)
            bits = [1 if target.ids[i] in states else 0 for i in range(span.start, span.stop)]
            if not any(bits):
                bits[-1] = 1
            part_lists.append(bits)
        active = [any(bits[:-1]) for bits in part_lists]
        entry["parts_list"] = [int(active[vocab.PASTA_PARTS.index(vocab.body_part_to_pasta_part(b))])
                               for b in range(len(vocab.BODY_PARTS))]
        for key, bits in zip(PART_KEYS, part_lists):
            entry[key] = bits
        out[name] = entry
    return out


def write_records(table: pa.Table, path: str | os.PathLike) -> None:
    """Write records as an image-level JSON file (``path`` ending in ``.json``, else
    ``<path>/hake-image-level.json``)."""
    path = Path(path)
    if path.suffix != ".json":
        path = path / "hake-image-level.json"
    write_hake_image(records_to_object(table), path)
