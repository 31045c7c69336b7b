"""The HICO-DET view of ``partwise synth`` (``hico_det/``): files in the real formats that partwise.data.hico_det reads
back to the synthetic truth, with valid HICO-600 HOIs, keyframe images, and per-seed stable bytes."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from partwise import vocab
from partwise.data import hico_det
from partwise.data import video as video_io
from partwise.synth import generator as gen

CFG = gen.SynthConfig(seed=3, videos=4, seconds=6, width=160, height=120)

# The documented mapping, written out by hand as HICO-600 names: (AVA action of the interaction, synthetic object).
BASE = {(11, "chair"): {"sit_on chair"}, (17, "ball"): {"hold sports_ball"}, (17, "box"): {"hold suitcase"},
        (17, "cup"): {"hold cup"}, (36, "ball"): {"hold sports_ball", "pick_up sports_ball"},
        (36, "box"): {"hold suitcase", "pick_up suitcase"}, (36, "cup"): {"hold cup"}}
INSPECT = {"ball": "inspect sports_ball", "cup": "inspect cup"}  # HICO has no "inspect suitcase"
CARRY = {"ball": "carry sports_ball", "cup": "carry cup", "box": "carry suitcase"}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth_hico") / "data"
    gen.generate(out, CFG)
    return out


def expected_pairs(root: Path) -> set[tuple]:
    """(split, image name, human box, object box, HOI name) from truth.parquet: 1-based inclusive whole pixels."""
    names = set()
    for r in pq.read_table(root / "truth.parquet").to_pylist():
        split = "test" if r["split"] == "val" else r["split"]
        image = f"{r['video_id']}_{int(r['time_s']):04d}.jpg"
        human = tuple(np.round([r["px1"], r["py1"], r["px2"], r["py2"]]))
        for o in r["objects"]:
            box = tuple(np.round([o["px1"], o["py1"], o["px2"], o["py2"]]))
            if box[2] - box[0] < 1 or box[3] - box[1] < 1:
                continue  # left the frame
            hois = set(BASE.get((o["action"], o["class_name"]), set()))
            if o["action"] == 17 and "head: inspect" in r["pasta"] and o["class_name"] in INSPECT:
                hois.add(INSPECT[o["class_name"]])
            if o["action"] == 17 and 14 in r["actions"]:
                hois.add(CARRY[o["class_name"]])
            names |= {(split, image, human, box, h) for h in hois}
    return names


def read_pairs(path: Path) -> set[tuple]:
    hoi_names = vocab.load("hico_hoi600").names
    out = set()
    for r in hico_det.read_records(path).to_pylist():
        assert r["action_vocab"] == "hico_hoi600" and r["dataset"] == "hico-det"
        human = (r["px1"], r["py1"], r["px2"], r["py2"])
        for o in r["objects"]:
            assert hoi_names[o["action"] - 1].endswith(" " + o["class_name"])  # the object matches the HOI's
            out.add((r["split"], r["video_id"], human, (o["px1"], o["py1"], o["px2"], o["py2"]),
                     hoi_names[o["action"] - 1]))
    return out


def test_json_and_mat_read_back_to_the_truth(dataset):
    folder = dataset / "hico_det"
    expected = expected_pairs(dataset)
    assert {e[0] for e in expected} == {"train", "test"} and len(expected) > 20
    assert {e[4].split()[0] for e in expected} >= {"sit_on", "hold", "carry"}  # several verbs present
    assert hico_det.validate(folder / "annotations") == [] and hico_det.validate(folder / "anno_bbox.mat") == []
    assert read_pairs(folder / "annotations") == expected
    assert read_pairs(folder / "anno_bbox.mat") == expected


def test_hoi_ids_are_valid_hico600_verb_object_pairs(dataset):
    verbs, objects = vocab.load("hico_verbs117"), vocab.load("hico_objects80")
    hoi_names = vocab.load("hico_hoi600").names
    coco = hico_det.COCO91_TO_HICO_OBJECT
    seen = set()
    for split_file in ("trainval_hico.json", "test_hico.json"):
        for image in hico_det.read_hoi_json(dataset / "hico_det" / "annotations" / split_file):
            assert (image["width"], image["height"]) == (CFG.width, CFG.height)
            boxes = image["annotations"]
            assert all(float(v).is_integer() for b in boxes for v in b["bbox"])  # whole pixels like HICO-DET
            for h, hoi in zip(image["hoi_annotation"], hico_det.json_hoi_ids(image)):
                assert boxes[h["subject_id"]]["category_id"] == 1  # person
                verb = verbs.names[h["category_id"] - 1]
                obj = objects.names[coco[boxes[h["object_id"]]["category_id"]] - 1]
                assert hoi is not None and hoi_names[hoi - 1] == f"{verb} {obj}"
                seen.add(hoi)
    assert seen <= {90, 296, 298, 299, 490, 494, 495, 497, 507, 509, 514}  # the ids of the mapped names
    for (action, kind), names in BASE.items():
        assert action in gen.AVA_ACTIONS and kind in gen.OBJECT_CLASSES
        assert all(n in hoi_names for n in names)


def test_images_are_the_keyframe_frames(dataset):
    folder = dataset / "hico_det"
    records = hico_det.read_records(folder / "annotations").to_pylist()
    names = {(r["split"], r["video_id"]) for r in records}
    on_disk = {(p.parent.name, p.name) for p in (folder / "images").rglob("*.jpg")}
    assert names == on_disk
    for split, name in sorted(names)[:6]:
        vid, second = name[:-4].rsplit("_", 1)
        frame = dataset / "frames" / vid / f"img_{(int(second) - 900) * 30 + 1:05d}.jpg"
        assert (folder / "images" / split / name).read_bytes() == frame.read_bytes()


def test_without_frames_images_are_decoded_from_the_video(tmp_path, dataset):
    out = tmp_path / "noframes"
    gen.generate(out, gen.SynthConfig(**{**CFG.__dict__, "frames": False}))
    a, b = dataset / "hico_det", out / "hico_det"
    for name in ("annotations/trainval_hico.json", "annotations/test_hico.json", "anno_bbox.mat"):
        assert (a / name).read_bytes() == (b / name).read_bytes()  # per-seed stable (no time stamp in the .mat)
    image = sorted((b / "images" / "test").iterdir())[0]
    vid, second = image.stem.rsplit("_", 1)
    truth = video_io.read_frames(out / "videos" / f"{vid}.mp4", [(int(second) - 900) * 30])[0].astype(float)
    with Image.open(image) as im:
        pixels = np.asarray(im.convert("RGB"), dtype=float)
    assert pixels.shape == (CFG.height, CFG.width, 3) and np.abs(pixels - truth).mean() < 3.0
