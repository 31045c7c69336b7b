"""Vocabulary objects, the shipped lists, and converters between them."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Iterable, Sequence

#: The 10 HAKE body parts, in the order of the HAKE code (part index = position).
BODY_PARTS: tuple[str, ...] = (
    "right_foot", "right_leg", "left_leg", "left_foot", "hip",
    "head", "right_hand", "right_arm", "left_arm", "left_hand",
)
#: The 6 PaSta parts (left and right merged), in the order of every PaSta list.
PASTA_PARTS: tuple[str, ...] = ("foot", "leg", "hip", "hand", "arm", "head")
#: Which body parts (indices into BODY_PARTS) make each PaSta part (Activity2Vec ``MODEL.PART_AGG_RULE``).
PART_AGG_RULE: tuple[tuple[int, ...], ...] = ((0, 3), (1, 2), (4,), (6, 9), (7, 8), (5,))


def body_part_to_pasta_part(body_part: int | str) -> str:
    """The PaSta part a body part belongs to: ``0``/``"right_foot"`` -> ``"foot"``."""
    index = BODY_PARTS.index(body_part) if isinstance(body_part, str) else int(body_part)
    for pasta_part, members in zip(PASTA_PARTS, PART_AGG_RULE):
        if index in members:
            return pasta_part
    raise KeyError(f"body part {body_part!r} is not one of 0..9")


@dataclass(frozen=True)
class Vocabulary:
    """An ordered list of class names with the dataset's own ids.

    ``ids[i]`` is the id of ``names[i]``; ``index_of(id)`` gives the position ``i`` (the column in a score matrix).
    """

    name: str
    names: tuple[str, ...]
    ids: tuple[int, ...]
    _index: dict = field(init=False, repr=False, compare=False)
    _by_name: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.names) != len(self.ids):
            raise ValueError(f"vocabulary {self.name}: {len(self.names)} names but {len(self.ids)} ids")
        object.__setattr__(self, "_index", {i: k for k, i in enumerate(self.ids)})
        object.__setattr__(self, "_by_name", {n: i for n, i in zip(self.names, self.ids)})
        if len(self._index) != len(self.ids):
            raise ValueError(f"vocabulary {self.name}: duplicate ids")

    def __len__(self) -> int:
        return len(self.names)

    def __contains__(self, class_id: object) -> bool:
        return class_id in self._index

    def __iter__(self):
        return iter(zip(self.ids, self.names))

    @property
    def first_id(self) -> int:
        return self.ids[0]

    def name_of(self, class_id: int) -> str:
        try:
            return self.names[self._index[int(class_id)]]
        except KeyError:
            raise KeyError(f"{self.name}: unknown id {class_id}") from None

    def id_of(self, name: str) -> int:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"{self.name}: unknown name {name!r}") from None

    def index_of(self, class_id: int) -> int:
        try:
            return self._index[int(class_id)]
        except KeyError:
            raise KeyError(f"{self.name}: unknown id {class_id}") from None

    def has_name(self, name: str) -> bool:
        return name in self._by_name

    @classmethod
    def from_names(cls, name: str, names: Iterable[str], first_id: int = 0) -> "Vocabulary":
        names = tuple(names)
        return cls(name, names, tuple(range(first_id, first_id + len(names))))


@dataclass(frozen=True)
class PastaVocabulary(Vocabulary):
    """A PaSta list: names ``"<part>: <state>"`` grouped by the 6 PaSta parts, in part order.

    ``local`` indices count from 0 within a part; ``to_local``/``to_global`` convert between them and the list's ids.
    ``has_no_interaction`` is True when each part ends with a ``no_interaction`` class (93, 76, 55 lists).
    """

    part_sizes: tuple[int, ...] = ()
    has_no_interaction: bool = True

    @property
    def part_offsets(self) -> tuple[int, ...]:
        offsets, total = [], 0
        for size in self.part_sizes:
            offsets.append(total)
            total += size
        return tuple(offsets)

    def part_slice(self, part: str | int) -> slice:
        """Column range of a part in a score matrix ordered like this vocabulary."""
        p = PASTA_PARTS.index(part) if isinstance(part, str) else int(part)
        start = self.part_offsets[p]
        return slice(start, start + self.part_sizes[p])

    def to_global(self, part: str | int, local: int) -> int:
        p = PASTA_PARTS.index(part) if isinstance(part, str) else int(part)
        if not 0 <= local < self.part_sizes[p]:
            raise KeyError(f"{self.name}: local index {local} out of range for part {PASTA_PARTS[p]} (0..{self.part_sizes[p] - 1})")
        return self.ids[self.part_offsets[p] + local]

    def to_local(self, class_id: int) -> tuple[str, int]:
        position = self.index_of(class_id)
        for p, (start, size) in enumerate(zip(self.part_offsets, self.part_sizes)):
            if start <= position < start + size:
                return PASTA_PARTS[p], position - start
        raise AssertionError("unreachable")

    def no_interaction_ids(self) -> tuple[int, ...]:
        if not self.has_no_interaction:
            return ()
        return tuple(self.ids[start + size - 1] for start, size in zip(self.part_offsets, self.part_sizes))

    def part_of(self, class_id: int) -> str:
        return self.to_local(class_id)[0]


def _data_text(filename: str) -> str:
    return resources.files("partwise.vocab").joinpath("data", filename).read_text(encoding="utf-8")


def _lines(filename: str) -> list[str]:
    return [line.rstrip("\r\n") for line in _data_text(filename).splitlines() if line.strip()]


def _pasta(name: str, filename: str, first_id: int, has_no_interaction: bool) -> PastaVocabulary:
    names = tuple(line.strip() for line in _lines(filename))
    sizes = []
    for part in PASTA_PARTS:
        count = sum(1 for n in names if n.split(":", 1)[0] == part)
        sizes.append(count)
    if sum(sizes) != len(names):
        raise ValueError(f"{filename}: lines whose part is not one of {PASTA_PARTS}")
    return PastaVocabulary(name, names, tuple(range(first_id, first_id + len(names))), tuple(sizes), has_no_interaction)


def _numbered(filename: str) -> tuple[list[int], list[list[str]]]:
    ids, rest = [], []
    for line in _lines(filename):
        fields = line.split()
        ids.append(int(fields[0]))
        rest.append(fields[1:])
    return ids, rest


def _ava80() -> Vocabulary:
    ids, names = [], []
    for line in _lines("ava_actions_80.txt"):
        number, text = line.split(" ", 1)
        ids.append(int(number))
        names.append(text.strip())
    return Vocabulary("ava80", tuple(names), tuple(ids))


def _ava60() -> Vocabulary:
    from partwise.vocab.labelmap import read_label_map

    path = resources.files("partwise.vocab").joinpath("data", "ava_action_list_v2.1_for_activitynet_2018.pbtxt")
    mapping = read_label_map(str(path))
    return Vocabulary("ava60", tuple(mapping.values()), tuple(mapping.keys()))


def _hico_hoi() -> Vocabulary:
    ids, rest = _numbered("hico_hoi_list.txt")
    return Vocabulary("hico_hoi600", tuple(f"{verb} {obj}" for obj, verb in rest), tuple(ids))


def _hico_simple(name: str, filename: str) -> Vocabulary:
    ids, rest = _numbered(filename)
    return Vocabulary(name, tuple(" ".join(r) for r in rest), tuple(ids))


_BUILDERS = {
    "body_parts10": lambda: Vocabulary.from_names("body_parts10", BODY_PARTS),
    "pasta_parts6": lambda: Vocabulary.from_names("pasta_parts6", PASTA_PARTS),
    "pasta93": lambda: _pasta("pasta93", "Part_State_93.txt", 0, True),
    "pasta76": lambda: _pasta("pasta76", "Part_State_76.txt", 0, True),
    "pasta55": lambda: _pasta("pasta55", "Part_State_55.txt", 0, True),
    "pasta_ava87": lambda: _pasta("pasta_ava87", "pasta_ava_87.txt", 1, False),
    "verbs157": lambda: Vocabulary.from_names("verbs157", (line.strip() for line in _lines("verb_list_157.txt"))),
    "ava80": _ava80,
    "ava60": _ava60,
    "hico_hoi600": _hico_hoi,
    "hico_verbs117": lambda: _hico_simple("hico_verbs117", "hico_verb_list.txt"),
    "hico_objects80": lambda: _hico_simple("hico_objects80", "hico_obj_list.txt"),
    "coco80": lambda: Vocabulary.from_names("coco80", (line.strip() for line in _lines("coco80.txt"))),
}


def available() -> tuple[str, ...]:
    """Names accepted by :func:`load`."""
    return tuple(_BUILDERS)


@lru_cache(maxsize=None)
def load(name: str) -> Vocabulary:
    """Load a shipped vocabulary by name (see :func:`available`)."""
    try:
        builder = _BUILDERS[name]
    except KeyError:
        raise KeyError(f"unknown vocabulary {name!r}; known: {', '.join(_BUILDERS)}") from None
    return builder()


@lru_cache(maxsize=None)
def hico_hoi_table() -> tuple[tuple[int, int, int], ...]:
    """``(hoi_id, verb_id, object_id)`` for the 600 HICO-DET HOIs, all 1-based."""
    verbs, objects = load("hico_verbs117"), load("hico_objects80")
    ids, rest = _numbered("hico_hoi_list.txt")
    return tuple((h, verbs.id_of(verb), objects.id_of(obj)) for h, (obj, verb) in zip(ids, rest))


@lru_cache(maxsize=None)
def _mapping_76_to_55() -> dict[int, int]:
    return {int(k): int(v) for k, v in json.loads(_data_text("76to55.json")).items()}


def _normalize_state_name(name: str) -> str:
    # 55-list spells "no interaction"; the others "no_interaction".
    return re.sub(r"\bno interaction\b", "no_interaction", name)


def convert(ids: Sequence[int] | Iterable[int], src: str, dst: str, missing: str = "error") -> list[int]:
    """Map class ids of vocabulary ``src`` to ``dst``.

    Explicit mappings: ``pasta76 -> pasta55`` (HAKE's 76to55.json), ``ava80 -> ava60`` (subset), ``hico_hoi600 ->
    hico_verbs117`` / ``hico_objects80``. Every other pair maps by identical name (e.g. ``pasta93 <-> pasta76``,
    ``pasta93 <-> pasta_ava87``). ``missing``: ``"error"`` raises ``KeyError`` for an id without a counterpart,
    ``"drop"`` leaves it out.
    """
    if missing not in ("error", "drop"):
        raise ValueError("missing must be 'error' or 'drop'")
    source, target = load(src), load(dst)
    out: list[int] = []
    for class_id in ids:
        class_id = int(class_id)
        source.index_of(class_id)  # validates
        mapped: int | None
        if (src, dst) == ("pasta76", "pasta55"):
            mapped = _mapping_76_to_55()[class_id]
        elif src == "hico_hoi600" and dst in ("hico_verbs117", "hico_objects80"):
            row = hico_hoi_table()[source.index_of(class_id)]
            mapped = row[1] if dst == "hico_verbs117" else row[2]
        else:
            name = _normalize_state_name(source.name_of(class_id))
            mapped = None
            for candidate in (name, name.replace("no_interaction", "no interaction")):
                if target.has_name(candidate):
                    mapped = target.id_of(candidate)
                    break
        if mapped is None:
            if missing == "error":
                raise KeyError(f"{src} id {class_id} ({source.name_of(class_id)!r}) has no counterpart in {dst}")
            continue
        out.append(mapped)
    return out
