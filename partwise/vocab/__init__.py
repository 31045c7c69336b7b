"""Vocabularies as data: body parts, PaSta lists, verbs, AVA actions, HICO-DET classes.

Every list ships as a text file in ``partwise/vocab/data`` (see its README) and is loaded by name::

    >>> from partwise import vocab
    >>> v = vocab.load("pasta_ava87")
    >>> v.name_of(30)
    'hip: sit on'
    >>> v.to_local(30)
    ('hip', 0)

Ids are the dataset's own: ``Vocabulary.ids[i]`` is the id of ``Vocabulary.names[i]``. 0-based lists (PaSta 93/76/55,
the 157 verbs, body parts) have ids ``0..n-1``; 1-based ones (AVA, HICO, HAKE-AVA PaSta) start at 1; the 60 evaluated
AVA actions keep their sparse AVA ids.
"""
from __future__ import annotations

from partwise.vocab.core import (
    BODY_PARTS,
    PART_AGG_RULE,
    PASTA_PARTS,
    PastaVocabulary,
    Vocabulary,
    available,
    body_part_to_pasta_part,
    convert,
    hico_hoi_table,
    load,
)
from partwise.vocab.labelmap import read_label_map, write_label_map

__all__ = [
    "BODY_PARTS",
    "PART_AGG_RULE",
    "PASTA_PARTS",
    "PastaVocabulary",
    "Vocabulary",
    "available",
    "body_part_to_pasta_part",
    "convert",
    "hico_hoi_table",
    "load",
    "read_label_map",
    "write_label_map",
]
