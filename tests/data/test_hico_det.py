"""HICO-DET annotation formats: anno_bbox.mat, anno.mat, PPDM/QPIC JSON, canonical records."""
import json

import numpy as np
import pytest
import scipy.io

from partwise.data import hico_det
from partwise.data.formats import get_format
from partwise.errors import InputError


def sample_images():
    return [
        hico_det.HicoImage("HICO_test2015_00000001.jpg", 640, 480, 3, [
            hico_det.HicoHoi(155, np.array([[11.0, 21, 110, 220]]), np.array([[51.0, 61, 150, 160], [1, 2, 3, 4]]),
                             np.array([[1, 1], [1, 2]])),
            hico_det.HicoHoi(160, np.zeros((0, 4)), np.zeros((0, 4)), np.zeros((0, 2), dtype=np.int64), invis=1),
            hico_det.HicoHoi(170, np.array([[11.0, 21, 110, 220]]), np.array([[201.0, 21, 300, 220]]),
                             np.array([[1, 1]])),
        ]),
        hico_det.HicoImage("HICO_test2015_00000002.jpg", 300, 200, 3, []),
    ]


def assert_images_equal(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert (x.filename, x.width, x.height, x.depth) == (y.filename, y.width, y.height, y.depth)
        assert len(x.hois) == len(y.hois)
        for h, k in zip(x.hois, y.hois):
            assert (h.id, h.invis) == (k.id, k.invis)
            np.testing.assert_array_equal(h.humans.reshape(-1, 4), k.humans)
            np.testing.assert_array_equal(h.objects.reshape(-1, 4), k.objects)
            np.testing.assert_array_equal(h.connection.reshape(-1, 2), k.connection)


def test_anno_bbox_round_trip(tmp_path):
    actions = [{"nname": "motorcycle", "vname": "sit_on", "vname_ing": "sitting_on", "syn": "", "def": "d",
                "synset": "s", "add_def": ""}]
    path = tmp_path / "anno_bbox.mat"
    hico_det.write_anno_bbox(hico_det.AnnoBbox(sample_images()[:1], sample_images(), actions), path)
    back = hico_det.read_anno_bbox(path)
    assert_images_equal(back.test, sample_images())
    assert_images_equal(back.train, sample_images()[:1])
    assert back.list_action == actions
    # scipy sees MATLAB structs with the release's field order (x1, x2, y1, y2)
    raw = scipy.io.loadmat(path)
    box = raw["bbox_test"][0, 0]["hoi"][0, 0]["bboxhuman"]
    assert box.dtype.names == ("x1", "x2", "y1", "y2")
    assert float(box[0, 0]["x2"][0, 0]) == 110.0 and float(box[0, 0]["y1"][0, 0]) == 21.0


def test_box_fields_addressed_by_name_not_position(tmp_path):
    # a file written directly with scipy in the release's layout: fields x1, x2, y1, y2
    box_dtype = [("x1", "O"), ("x2", "O"), ("y1", "O"), ("y2", "O")]
    human = np.empty((1, 1), dtype=box_dtype)
    human[0, 0] = (np.array([[5]]), np.array([[50]]), np.array([[7]]), np.array([[70]]))
    obj = np.empty((1, 1), dtype=box_dtype)
    obj[0, 0] = (np.array([[1]]), np.array([[2]]), np.array([[3]]), np.array([[4]]))
    hoi = np.empty((1, 1), dtype=[("id", "O"), ("bboxhuman", "O"), ("bboxobject", "O"), ("connection", "O"),
                                  ("invis", "O")])
    hoi[0, 0] = (np.array([[1]], dtype=np.uint16), human, obj, np.array([[1, 1]], dtype=np.uint8),
                 np.array([[0]], dtype=np.uint8))
    size = np.empty((1, 1), dtype=[("width", "O"), ("height", "O"), ("depth", "O")])
    size[0, 0] = (np.array([[100]]), np.array([[80]]), np.array([[3]]))
    images = np.empty((1, 1), dtype=[("filename", "O"), ("size", "O"), ("hoi", "O")])
    images[0, 0] = (np.array(["x.jpg"]), size, hoi)
    path = tmp_path / "anno_bbox.mat"
    scipy.io.savemat(path, {"bbox_test": images})
    image = hico_det.read_anno_bbox(path).test[0]
    assert image.hois[0].humans.tolist() == [[5, 7, 50, 70]]  # [x1, y1, x2, y2]
    assert image.hois[0].objects.tolist() == [[1, 3, 2, 4]]
    pairs = hico_det.read_gt_pairs(path)
    assert pairs.boxes.tolist() == [[5, 7, 50, 70, 1, 3, 2, 4]]


def test_gt_pairs_skip_invisible_and_keep_duplicates(tmp_path):
    images = sample_images()
    images[0].hois.append(hico_det.HicoHoi(155, np.array([[11.0, 21, 110, 220]]), np.array([[51.0, 61, 150, 160]]),
                                           np.array([[1, 1]])))
    pairs = hico_det.pairs_from_images(images)
    assert pairs.hoi.tolist() == [155, 155, 170, 155]
    assert pairs.image.tolist() == [0, 0, 0, 0]
    assert pairs.boxes[1].tolist() == [11, 21, 110, 220, 1, 2, 3, 4]
    assert pairs.images == ["HICO_test2015_00000001.jpg", "HICO_test2015_00000002.jpg"]


def test_anno_labels_round_trip(tmp_path):
    labels = hico_det.AnnoLabels(["a.jpg", "b.jpg"], ["c.jpg"], np.full((600, 2), np.nan), np.zeros((600, 1)))
    labels.anno_train[3, 1] = 1
    labels.anno_train[4, 0] = -1
    path = tmp_path / "anno.mat"
    hico_det.write_anno_labels(labels, path)
    back = hico_det.read_anno_labels(path)
    assert back.list_train == ["a.jpg", "b.jpg"] and back.list_test == ["c.jpg"]
    np.testing.assert_array_equal(back.anno_train, labels.anno_train)
    bad = hico_det.AnnoLabels(["a.jpg"], [], np.full((600, 1), 2.0), np.zeros((600, 0)))
    hico_det.write_anno_labels(bad, path)
    with pytest.raises(InputError, match="anno_train: labels must be 1, 0, -1 or NaN"):
        hico_det.read_anno_labels(path)


def test_coco_mapping_is_derived_from_names():
    mapping = hico_det.COCO91_TO_HICO_OBJECT
    assert len(mapping) == 80 and sorted(mapping.values()) == list(range(1, 81))
    assert mapping[1] == 50 and mapping[5] == 1 and mapping[72] == 76 and mapping[89] == 36  # hair drier
    assert hico_det.hoi_id_of(88, 45) == 155 and hico_det.hoi_id_of(1, 45) is None


def test_json_round_trip_same_content(fixtures_dir, tmp_path):
    src = fixtures_dir / "hico" / "test_hico.json"
    images = hico_det.read_hoi_json(src)
    out = tmp_path / "test_hico.json"
    hico_det.write_hoi_json(images, out)
    assert json.loads(out.read_text()) == json.loads(src.read_text())


def test_records_from_json(fixtures_dir):
    table = hico_det.read_records(fixtures_dir / "hico" / "test_hico.json")
    rows = table.to_pylist()
    # image 1: humans (11,21,110,220) and (201,21,300,220); image 2: one human; image 3: no pair -> no record
    assert [(r["video_id"][-6:], r["person_id"]) for r in rows] == [("01.jpg", 0), ("01.jpg", 1), ("02.jpg", 0)]
    first = rows[0]
    assert first["dataset"] == "hico-det" and first["split"] == "test" and first["action_vocab"] == "hico_hoi600"
    assert first["actions"] == [155, 170]
    assert (first["px1"], first["py1"], first["px2"], first["py2"]) == (10.0, 20.0, 110.0, 220.0)
    assert first["x1"] == 10 / 640 and first["y2"] == 220 / 480
    objs = [(o["class_name"], o["class_id"], o["action"], o["object_id"]) for o in first["objects"]]
    assert objs == [("motorcycle", 45, 155, 0), ("motorcycle", 45, 155, 0), ("person", 50, 170, 1)]
    assert rows[1]["actions"] == [154] and rows[1]["source"] == "test_hico.json:[0]"


def test_records_from_mat_and_back(tmp_path):
    path = tmp_path / "anno_bbox.mat"
    hico_det.write_anno_bbox(hico_det.AnnoBbox(None, sample_images()), path)
    table = get_format("hico-det").read_records(path)
    assert table.num_rows == 1
    row = table.to_pylist()[0]
    assert row["actions"] == [155, 170] and row["split"] == "test" and row["source"] == "anno_bbox.mat:bbox_test[1]"
    assert [o["object_id"] for o in row["objects"]] == [0, 1, 2]
    out = tmp_path / "out.mat"
    hico_det.write_records(table, out)
    back = hico_det.read_anno_bbox(out).test
    visible = [h for h in sample_images()[0].hois if not h.invis]
    assert_images_equal(back, [hico_det.HicoImage("HICO_test2015_00000001.jpg", 640, 480, 3, visible)])
    # records -> JSON folder -> records: same rows but for provenance
    folder = tmp_path / "json"
    hico_det.write_records(table, folder)
    again = hico_det.read_records(folder).to_pylist()
    for a, b in zip(again, table.to_pylist()):
        a.pop("source"), b.pop("source")
        assert a == b


def test_read_records_split_and_folder(fixtures_dir):
    folder = fixtures_dir / "hico"
    assert set(hico_det.read_records(folder).column("split").to_pylist()) == {"train", "test"}
    assert set(hico_det.read_records(folder, split="train").column("split").to_pylist()) == {"train"}


def test_validate_collects_all_problems(tmp_path):
    data = [
        {"file_name": "a.jpg", "annotations": [{"bbox": [10, 10, 5, 20], "category_id": 1},
                                               {"bbox": [1, 1, 2, 2], "category_id": 12}],
         "hoi_annotation": [{"subject_id": 0, "object_id": 5, "category_id": 88},
                            {"subject_id": 0, "object_id": 0, "category_id": 200}]},
        {"annotations": [], "hoi_annotation": []},
    ]
    path = tmp_path / "test_hico.json"
    path.write_text(json.dumps(data))
    problems = hico_det.validate(path)
    where = [p.where for p in problems]
    assert where == ["[0].annotations[0].bbox", "[0].annotations[1].category_id", "[0].hoi_annotation[0].object_id",
                     "[0].hoi_annotation[1].category_id", "[1].file_name"]
    with pytest.raises(InputError, match=r"test_hico\.json:\[0\]\.annotations\[0\]\.bbox: x2 < x1"):
        hico_det.read_records(path)


def test_validate_mat_problems(tmp_path):
    images = sample_images()
    images[0].hois[0].connection = np.array([[1, 3]])  # only 2 objects
    images[0].hois[2].id = 601
    path = tmp_path / "anno_bbox.mat"
    hico_det.write_anno_bbox(hico_det.AnnoBbox(None, images), path)
    problems = hico_det.validate(path)
    assert [(p.where, p.reason) for p in problems] == [
        ("bbox_test[1].hoi[1]", "connection: object index outside 1..2"),
        ("bbox_test[1].hoi[3]", "HOI id 601 outside 1..600")]
    with pytest.raises(InputError, match=r"anno_bbox\.mat:bbox_test\[1\]\.hoi\[1\]: connection"):
        hico_det.read_anno_bbox(path)
    garbage = tmp_path / "bad.mat"
    garbage.write_bytes(b"not a mat file at all")
    assert "not a readable MATLAB file" in hico_det.validate(garbage)[0].reason


def test_training_counts_skip_invisible(tmp_path, fixtures_dir):
    path = tmp_path / "anno_bbox.mat"
    hico_det.write_anno_bbox(hico_det.AnnoBbox(sample_images(), None), path)
    counts = hico_det.training_counts(path)
    assert counts.shape == (601,) and counts[155] == 2 and counts[170] == 1 and counts[160] == 0 and counts.sum() == 3
    json_counts = hico_det.training_counts(fixtures_dir / "hico" / "trainval_hico.json")
    assert json_counts[155] == 1 and json_counts[154] == 1 and json_counts.sum() == 2


def test_mat_files_are_checked_before_scipy_parses_them(tmp_path):
    """A MAT v5 element cut short would make scipy read past its buffer (a crash): refused with a one-line error."""
    from partwise.data.hico_det.files import _loadmat

    path = tmp_path / "anno_bbox.mat"
    scipy.io.savemat(path, {"a": np.arange(1000.0).reshape(10, 100), "b": "text"}, do_compression=True)
    got = _loadmat(path)
    assert np.array_equal(got["a"], np.arange(1000.0).reshape(10, 100)) and list(_loadmat(path, ["b"])["b"]) == ["text"]
    raw = path.read_bytes()
    path.write_bytes(raw[:-20])  # the last compressed variable loses its end
    with pytest.raises(InputError, match=r"anno_bbox\.mat: not a readable MATLAB file \(element 1 declares"):
        _loadmat(path)
    size = int.from_bytes(raw[132:136], "little")
    # the first one's zlib stream ends early, its tag made to agree
    path.write_bytes(raw[:132] + (size - 12).to_bytes(4, "little") + raw[136:136 + size - 12] + raw[136 + size:])
    with pytest.raises(InputError, match=r"compressed variable 0 (is cut short|: Error)"):
        _loadmat(path)
