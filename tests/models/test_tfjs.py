"""The TF.js graph runner against the original runtime's outputs (tests/fixtures/tfjs_reference, computed by
@tensorflow/tfjs 4.22.0 on real images), and its graph reading on small hand-made graphs."""
from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from partwise.errors import InputError
from partwise.models import centernet, movenet
from partwise.models.tfjs import load_graph_model

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "tests" / "fixtures" / "tfjs_reference"
REAL = ROOT / "examples" / "real"
MULTIPOSE = ROOT / "partwise" / "models" / "data" / "movenet-multipose" / "movenet-multipose.json"


def reference(name: str):
    return np.load(REFERENCE / f"{name}.npz")


def installed(name: str) -> Path:
    from partwise.errors import ConfigError
    from partwise.models.weights import resolve

    try:
        return resolve(name)[0]
    except ConfigError as exc:
        pytest.skip(f"{name} is not installed (`partwise weights install {name}`): {exc}")


def vtest_frame_100() -> np.ndarray:
    """Frame 100 of the original vtest.avi: the unpadded middle of the native-resolution MultiPose input."""
    padded = reference("vtest100_native.movenet")["input"][0]
    return padded[96:672].astype(np.uint8)


@pytest.fixture(scope="module")
def multipose():
    return load_graph_model(MULTIPOSE)


# ------------------------------------------------------------------------------------------- preprocessing

def test_movenet_preprocessing_is_bit_exact():
    image = np.asarray(Image.open(REAL / "basketball1.png"))
    tensor, frame = movenet.preprocess(image, 256)
    assert tensor.dtype == torch.int32
    np.testing.assert_array_equal(tensor.numpy(), reference("basketball1.movenet")["input"])
    assert (frame.pad_y, frame.pad_x, frame.padded) == (80, 0, (640, 640))
    tensor, _ = movenet.preprocess(vtest_frame_100(), 256)
    np.testing.assert_array_equal(tensor.numpy(), reference("vtest100.movenet")["input"])
    tensor, frame = movenet.preprocess(vtest_frame_100(), None)
    np.testing.assert_array_equal(tensor.numpy(), reference("vtest100_native.movenet")["input"])
    assert frame.size == (768, 768)


def test_centernet_preprocessing_is_bit_exact():
    image = np.asarray(Image.open(REAL / "basketball1.png"))
    tensor = centernet.preprocess(image)
    assert tensor.dtype == torch.float32
    np.testing.assert_array_equal(tensor.numpy(), reference("basketball1.centernet")["input"])


# ------------------------------------------------------------------------------------------------- parity

@pytest.mark.parametrize("case", ["basketball1.movenet", "vtest100.movenet", "vtest100_native.movenet"])
def test_multipose_matches_the_original_runtime(multipose, case):
    ref = reference(case)
    out = multipose(torch.from_numpy(ref["input"]))
    assert list(out) == ["Identity"]
    got = out["Identity"].numpy()
    assert got.shape == (1, 6, 56)
    assert np.abs(got - ref["out:Identity"]).max() <= 1e-3


def test_centernet_matches_the_original_runtime():
    graph = load_graph_model(installed("centernet"))
    ref = reference("basketball1.centernet")
    out = graph(torch.from_numpy(ref["input"]))
    assert set(out) == {"tower_0/wh", "tower_0/keypoints", "tower_0/detections"}
    assert np.abs(out["tower_0/keypoints"].numpy() - ref["out:tower_0/keypoints"]).max() <= 1e-4
    assert np.abs(out["tower_0/wh"].numpy() - ref["out:tower_0/wh"]).max() <= 2e-2
    assert np.abs(out["tower_0/detections"].numpy() - ref["out:tower_0/detections"]).max() <= 2e-2


# ----------------------------------------------------------------------------------------------- decoding

def test_multipose_people_in_image_pixels(multipose):
    ref = reference("vtest100_native.movenet")
    frame = movenet.Frame(96, 0, (768, 768), (768, 768))
    people = movenet.decode_multipose(ref["out:Identity"], frame, min_score=0.2)
    raw = ref["out:Identity"][0]
    order = np.argsort(-raw[:, 55], kind="stable")
    order = order[raw[order, 55] > 0.2]
    assert len(people) == len(order) >= 5
    np.testing.assert_allclose(people.scores, raw[order, 55], rtol=1e-6)
    # box: ymin, xmin, ymax, xmax normalized to the padded 768 x 768 square, 96 rows above the frame
    np.testing.assert_allclose(people.boxes[0], [raw[order[0], 52] * 768, raw[order[0], 51] * 768 - 96,
                                                 raw[order[0], 54] * 768, raw[order[0], 53] * 768 - 96], rtol=1e-6)
    np.testing.assert_allclose(people.keypoints[0, 0], [raw[order[0], 1] * 768, raw[order[0], 0] * 768 - 96,
                                                        raw[order[0], 2]], rtol=1e-6)
    # every person found at native resolution stands inside the frame, not in the padding
    assert (people.boxes[:, 1] >= -2).all() and (people.boxes[:, 3] <= 578).all()


def test_multipose_detect_on_the_basketball_photo():
    model = movenet.MoveNet.load(str(MULTIPOSE))
    assert model.multipose and model.input_size == 256
    image = np.asarray(Image.open(REAL / "basketball1.png"))
    people = model.detect(image, min_score=0.25)
    assert len(people) == 2
    left, right = sorted(people.boxes.tolist())
    assert left[0] < 100 < left[2] < 250 and right[0] > 400      # the man with the ball, the man on the right
    for person in people.keypoints:
        good = person[person[:, 2] > 0.3]
        assert len(good) >= 8


def test_centernet_decode_matches_human_rules():
    det = np.zeros((1, 100, 6), dtype=np.float32)
    det[0, 0] = [10, 10, 110, 210, 0.9, 0]      # person
    det[0, 1] = [12, 12, 112, 212, 0.8, 0]      # duplicate, IoU > 0.4: suppressed
    det[0, 2] = [300, 300, 340, 340, 0.5, 32]   # sports ball
    det[0, 3] = [0, 0, 5, 5, 0.2, 41]           # score not > 0.2: dropped
    objects = centernet.decode(det, (1024, 256))
    assert objects.names == ["person", "sports_ball"]
    np.testing.assert_allclose(objects.boxes[0], [20, 5, 220, 105])     # x * 1024/512, y * 256/512
    np.testing.assert_allclose(objects.scores, [0.9, 0.5], rtol=1e-6)


# ------------------------------------------------------------------------------------- graph reading

def _graph(tmp_path: Path, nodes: list[dict], weights: list[tuple[str, np.ndarray, str | None]],
           outputs: list[str], inputs: dict | None = None) -> Path:
    blob, specs = b"", []
    for name, array, quant in weights:
        spec = {"name": name, "shape": list(array.shape), "dtype": "int32" if array.dtype == np.int32 else "float32"}
        if quant == "float16":
            blob += array.astype("<f2").tobytes()
            spec["quantization"] = {"dtype": "float16", "original_dtype": "float32"}
        elif quant == "uint8":
            lo, scale = float(array.min()), float(array.max() - array.min()) / 255
            blob += np.round((array - lo) / scale).astype(np.uint8).tobytes()
            spec["quantization"] = {"dtype": "uint8", "scale": scale, "min": lo}
        else:
            blob += array.astype("<i4" if array.dtype == np.int32 else "<f4").tobytes()
        specs.append(spec)
    (tmp_path / "m.bin").write_bytes(blob)
    sig_outputs = {o: {"name": f"{o}:0"} for o in outputs}
    model = {"format": "graph-model", "modelTopology": {"node": nodes},
             "signature": {"inputs": inputs or {}, "outputs": sig_outputs},
             "weightsManifest": [{"paths": ["m.bin"], "weights": specs}]}
    path = tmp_path / "m.json"
    path.write_text(json.dumps(model))
    return path


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _placeholder(name="x", dtype="DT_FLOAT"):
    return {"name": name, "op": "Placeholder", "attr": {"dtype": {"type": dtype}}}


def test_fused_conv_graph_with_quantized_weights(tmp_path):
    """Conv 3x3 stride 2 SAME on a 4x4 image (TF pads one row/column after), bias, Relu6; float16 weights."""
    filt = np.ones((3, 3, 1, 1), np.float32)
    bias = np.array([-4.0], np.float32)
    nodes = [_placeholder(),
             {"name": "w", "op": "Const"}, {"name": "b", "op": "Const"},
             {"name": "y", "op": "_FusedConv2D", "input": ["x", "w", "b"],
              "attr": {"strides": {"list": {"i": ["1", "2", "2", "1"]}}, "padding": {"s": _b64("SAME")},
                       "fused_ops": {"list": {"s": [_b64("BiasAdd"), _b64("Relu6")]}},
                       "data_format": {"s": _b64("NHWC")}}},
             {"name": "Identity", "op": "Identity", "input": ["y"]}]
    path = _graph(tmp_path, nodes, [("w", filt, "float16"), ("b", bias, "float16")], ["Identity"])
    model = load_graph_model(path)
    x = torch.arange(16, dtype=torch.float32).reshape(1, 4, 4, 1) / 10
    got = model(x)["Identity"][0, :, :, 0]
    # windows: rows/cols {0, 1, 2} and {2, 3, pad}; sums 4.5, 3.9 / 6.6, 5.0; minus 4, clipped to [0, 6].
    # (Symmetric padding would start at row/col -1 and give 0.0 top left.)
    np.testing.assert_allclose(got.numpy(), [[0.5, 0.0], [2.6, 1.0]], atol=1e-6)


def test_depthwise_multiplier_channel_order(tmp_path):
    """Depthwise filter [kh, kw, C, M]: output channel c * M + m = input c times filter (c, m)."""
    filt = np.zeros((1, 1, 2, 2), np.float32)
    filt[0, 0] = [[1, 10], [100, 1000]]
    nodes = [_placeholder(), {"name": "w", "op": "Const"},
             {"name": "y", "op": "DepthwiseConv2dNative", "input": ["x", "w"],
              "attr": {"strides": {"list": {"i": ["1", "1", "1", "1"]}}, "padding": {"s": _b64("VALID")}}}]
    model = load_graph_model(_graph(tmp_path, nodes, [("w", filt, None)], ["y"]))
    out = model(torch.tensor([[[[2.0, 3.0]]]]))["y"]
    assert out.reshape(-1).tolist() == [2.0, 20.0, 300.0, 3000.0]


def test_uint8_quantized_weights_and_decoder_ops(tmp_path):
    """Shape/StridedSlice/Fill/Range/TopKV2/FloorDiv/GatherNd/Select: a tiny argmax decoder over a 2x3 map."""
    scale = np.linspace(0.0, 2.0, 6, dtype=np.float32).reshape(2, 3)
    nodes = [_placeholder(), {"name": "scale", "op": "Const"}, {"name": "k", "op": "Const"},
             {"name": "flat_shape", "op": "Const"}, {"name": "w", "op": "Const"},
             {"name": "m", "op": "Mul", "input": ["x", "scale"]},
             {"name": "flat", "op": "Reshape", "input": ["m", "flat_shape"]},
             {"name": "top", "op": "TopKV2", "input": ["flat", "k"], "attr": {"sorted": {"b": True}}},
             {"name": "row", "op": "FloorDiv", "input": ["top:1", "w"]},
             {"name": "col", "op": "FloorMod", "input": ["top:1", "w"]},
             {"name": "idx", "op": "Pack", "input": ["row", "col"], "attr": {"axis": {"i": "1"}}},
             {"name": "picked", "op": "GatherNd", "input": ["m", "idx"]}]
    weights = [("scale", scale, "uint8"), ("k", np.array(3, np.int32), None),
               ("flat_shape", np.array([-1], np.int32), None), ("w", np.array(3, np.int32), None)]
    model = load_graph_model(_graph(tmp_path, nodes, weights, ["top", "picked", "idx"]))
    x = torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 0.5]])
    out = model(x)
    # m = [[0, .4, 0], [0, 0, 1.0]] (uint8-dequantized scale: 0, .4, .8, 1.2, 1.6, 2.0 within 1/255)
    assert out["idx"].tolist()[0] == [1, 2]
    assert out["idx"].tolist()[1] == [0, 1]
    assert out["idx"].tolist()[2] == [0, 0]           # ties (all zeros) go to the lowest index
    np.testing.assert_allclose(out["picked"].numpy(), [1.0, 0.4, 0.0], atol=0.01)


def test_unknown_op_is_one_line_naming_node_and_op(tmp_path):
    nodes = [_placeholder(), {"name": "odd/node", "op": "FancyOp", "input": ["x"]}]
    with pytest.raises(InputError) as err:
        load_graph_model(_graph(tmp_path, nodes, [], ["odd/node"]))
    message = str(err.value)
    assert "odd/node" in message and "FancyOp" in message and "m.json" in message and "\n" not in message


def test_short_weights_file_is_one_line(tmp_path):
    nodes = [_placeholder(), {"name": "w", "op": "Const"}, {"name": "y", "op": "Mul", "input": ["x", "w"]}]
    path = _graph(tmp_path, nodes, [("w", np.ones(8, np.float32), None)], ["y"])
    (tmp_path / "m.bin").write_bytes(b"\0" * 12)
    with pytest.raises(InputError, match=r"m\.json:w: weights end at byte 12"):
        load_graph_model(path)
    (tmp_path / "m.bin").unlink()
    with pytest.raises(InputError, match=r"m\.bin: weights shard named by m\.json cannot be read"):
        load_graph_model(path)


def test_input_checks(multipose):
    with pytest.raises(InputError, match="graph input input is int32, got float32"):
        multipose(torch.zeros(1, 64, 64, 3))
    with pytest.raises(InputError, match="has shape"):
        multipose(torch.zeros(64, 64, 3, dtype=torch.int32))
