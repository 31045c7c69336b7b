"""HICO-DET annotations: ``anno_bbox.mat``, ``anno.mat`` and the PPDM/QPIC ``trainval_hico.json``/``test_hico.json``.

Three files are read and written at the format level (their full content, not just what canonical records hold):

``anno_bbox.mat`` (the HICO-DET release; :func:`read_anno_bbox`, :func:`write_anno_bbox`)
    ``bbox_train`` (1x38118) and ``bbox_test`` (1x9658) struct arrays with ``filename``, ``size`` (struct
    ``width``, ``height``, ``depth``) and ``hoi`` (struct array: ``id`` 1..600, ``bboxhuman`` and ``bboxobject``
    struct arrays with fields ``x1, x2, y1, y2`` -- that order, so they are addressed by name, never by position --
    ``connection`` Kx2 1-based (human index, object index) and ``invis``, 1 when the HOI is present but its boxes
    are not visible). ``list_action`` (600x1 struct: ``nname``, ``vname``, ``vname_ing``, ``syn``, ``def``,
    ``synset``, ``add_def``) is kept as-is. Coordinates are 1-based inclusive pixel indices.
``anno.mat`` (HICO image-level labels; :func:`read_anno_labels`)
    ``list_train``/``list_test`` file names and ``anno_train``/``anno_test`` (600 x images) with 1 positive,
    0 ambiguous, -1 negative and NaN unknown. Needed only by the Known-Object evaluation setting.
``trainval_hico.json`` / ``test_hico.json`` (PPDM/QPIC; :func:`read_hoi_json`, :func:`write_hoi_json`)
    a list of images ``{"file_name", "annotations": [{"bbox": [x1, y1, x2, y2], "category_id": COCO-91 id}],
    "hoi_annotation": [{"subject_id", "object_id", "category_id": verb 1..117}]}`` with optional ``img_id``,
    ``height``, ``width`` (and any further keys, kept). The boxes' convention is not documented by its authors;
    PPDM's evaluator adds 1 to predictions before comparing them with this file, so partwise treats these boxes
    like ``anno_bbox.mat``'s: 1-based inclusive pixel indices.

Object classes. The JSON uses COCO-91 category ids. They map to the 80 HICO objects (``hico_objects80``, alphabetical)
through the COCO category *names*: COCO-91 id -> COCO name (:data:`COCO91_NAMES`, the 80 COCO categories with their
91-id numbering) -> name with spaces as underscores -> ``hico_objects80`` id. :data:`COCO91_TO_HICO_OBJECT` is that
mapping computed from the two name lists; e.g. COCO 1 ``person`` -> HICO 50, COCO 5 ``airplane`` -> HICO 1, COCO 72
``tv`` -> HICO 76. The HOI id of (verb, object) comes from ``hico_hoi600`` (:func:`hoi_id_of`).

Canonical records (:func:`read_records`). One record per *distinct human box* (exact coordinates) per image: the
union of the HOIs it takes part in. ``actions`` = the sorted distinct HOI ids (``hico_hoi600``), ``objects`` = one
entry per (human, object, HOI) connection with the HICO object id and name, the HOI id as ``action`` and the index of
the distinct object box in the image as ``object_id``; ``person_id`` = the index of the distinct human box.
Pixel boxes are converted from 1-based inclusive indices to continuous 0-based coordinates: ``px1 = x1 - 1``,
``px2 = x2`` (likewise y), so a box covering pixels 1..10 becomes [0, 10]; normalized boxes divide by the image size
when known. ``dataset`` is ``"hico-det"``, ``split`` ``"train"`` or ``"test"`` (``bbox_train``/``bbox_test``; for
JSON from the file name: ``trainval_hico.json`` is the train split). HOIs flagged ``invis`` have no box and so no
record. :func:`write_records` inverts this (``x1 = px1 + 1``, ``x2 = px2``).

One concern per module, every name importable from here: :mod:`~partwise.data.hico_det.classes` (object and HOI
classes), :mod:`~partwise.data.hico_det.files` (reading .mat and JSON files), :mod:`~partwise.data.hico_det.mat`
(``anno_bbox.mat``, ``anno.mat``), :mod:`~partwise.data.hico_det.hoi_json` (PPDM/QPIC JSON),
:mod:`~partwise.data.hico_det.pairs` (GT pairs, training counts), :mod:`~partwise.data.hico_det.canonical`
(canonical records), :mod:`~partwise.data.hico_det.detections` (ho-rcnn ``.mat`` and iCAN/TIN pickles).
"""
from partwise.data.hico_det.canonical import read_records, validate, write_records
from partwise.data.hico_det.classes import (ACTION_VOCAB, COCO91_NAMES, COCO91_TO_HICO_OBJECT, DATASET,
                                            coco80_to_hico_object, hoi_id_of, hoi_verb_object, object_hoi_range)
from partwise.data.hico_det.classes import _hoi_tables  # noqa: F401  (used by partwise.eval.hico)
from partwise.data.hico_det.detections import (DetectionRows, read_detections_mat, read_detections_pickle,
                                               write_detections_mat)
from partwise.data.hico_det.files import _load_json  # noqa: F401  (used by partwise.eval.hico and the tests)
from partwise.data.hico_det.files import gc_paused
from partwise.data.hico_det.hoi_json import json_hoi_ids, read_hoi_json, write_hoi_json
from partwise.data.hico_det.mat import (AnnoBbox, AnnoLabels, HicoHoi, HicoImage, read_anno_bbox, read_anno_labels,
                                        write_anno_bbox, write_anno_labels)
from partwise.data.hico_det.pairs import GtPairs, pairs_from_images, pairs_from_json, read_gt_pairs, training_counts

__all__ = [
    "ACTION_VOCAB", "AnnoBbox", "AnnoLabels", "COCO91_NAMES", "COCO91_TO_HICO_OBJECT", "DATASET", "DetectionRows",
    "GtPairs", "HicoHoi", "HicoImage", "coco80_to_hico_object", "gc_paused", "hoi_id_of", "hoi_verb_object",
    "json_hoi_ids", "object_hoi_range", "pairs_from_images", "pairs_from_json", "read_anno_bbox",
    "read_anno_labels", "read_detections_mat", "read_detections_pickle", "read_gt_pairs", "read_hoi_json",
    "read_records", "training_counts", "validate", "write_anno_bbox", "write_anno_labels", "write_detections_mat",
    "write_hoi_json", "write_records",
]
