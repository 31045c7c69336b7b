"""Every op type of movenet-multipose, movenet-thunder/lightning and centernet, alone, on small inputs against values
worked out by hand from TF's definitions (the conv, resize, TopK, Select, GatherNd and StridedSlice semantics are
tested in depth in tests/ops/test_tf.py and tests/models/test_tfjs.py)."""
from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import torch

from partwise.models.tfjs import OPS

ROOT = Path(__file__).resolve().parents[2]
T = torch.tensor
I32 = torch.int32


def _node(op: str, **attr) -> dict:
    def enc(v):
        if isinstance(v, bool):
            return {"b": v}
        if isinstance(v, int):
            return {"i": str(v)}
        if isinstance(v, float):
            return {"f": v}
        if isinstance(v, str) and v.startswith("DT_"):
            return {"type": v}
        if isinstance(v, str):
            return {"s": base64.b64encode(v.encode()).decode()}
        return {"list": {"i": [str(x) for x in v]}}
    return {"name": op.lower(), "op": op, "attr": {k: enc(v) for k, v in attr.items()}}


def run(op: str, *inputs, **attr):
    return OPS[op](_node(op, **attr))(*inputs)


CASES = [
    ("Identity", (T([1.0, 2.0]),), {}, [1.0, 2.0]),
    ("Cast", (T([1.7, -1.7]),), {"DstT": "DT_INT32"}, [1, -1]),                  # truncates toward zero
    ("Cast", (T([True, False]),), {"DstT": "DT_FLOAT"}, [1.0, 0.0]),
    ("Add", (T([1.0, 2.0]), T(3.0)), {}, [4.0, 5.0]),
    ("AddV2", (T([[1.0], [2.0]]), T([10.0, 20.0])), {}, [[11.0, 21.0], [12.0, 22.0]]),
    ("Sub", (T([5, 3], dtype=I32), T(2, dtype=I32)), {}, [3, 1]),
    ("Mul", (T([2.0, -3.0]), T([4.0, 5.0])), {}, [8.0, -15.0]),
    ("RealDiv", (T([1.0, 3.0]), T([4.0, 2.0])), {}, [0.25, 1.5]),
    ("FloorDiv", (T([7, -7], dtype=I32), T(2, dtype=I32)), {}, [3, -4]),      # floor, not truncation
    ("FloorMod", (T([7, -7], dtype=I32), T(3, dtype=I32)), {}, [1, 2]),       # sign of the divisor
    ("Maximum", (T([1.0, 5.0]), T(2.0)), {}, [2.0, 5.0]),
    ("Minimum", (T([1.0, 5.0]), T(2.0)), {}, [1.0, 2.0]),
    ("SquaredDifference", (T([1.0, 5.0]), T([3.0, 1.0])), {}, [4.0, 16.0]),
    ("AddN", (T([1.0, 2.0]), T([3.0, 4.0]), T([5.0, 6.0])), {}, [9.0, 12.0]),
    ("Abs", (T([-1.5, 2.0]),), {}, [1.5, 2.0]),
    ("Exp", (T([0.0]),), {}, [1.0]),
    ("Sqrt", (T([9.0]),), {}, [3.0]),
    ("Reciprocal", (T([4.0]),), {}, [0.25]),
    ("Sigmoid", (T([0.0]),), {}, [0.5]),
    ("Relu", (T([-1.0, 2.0]),), {}, [0.0, 2.0]),
    ("Relu6", (T([-1.0, 2.0, 9.0]),), {}, [0.0, 2.0, 6.0]),
    ("Less", (T([1.0, 2.0]), T(2.0)), {}, [True, False]),
    ("Greater", (T([1.0, 3.0]), T(2.0)), {}, [False, True]),
    ("GreaterEqual", (T([1.0, 2.0]), T(2.0)), {}, [False, True]),
    ("Equal", (T([1, 2], dtype=I32), T(2, dtype=I32)), {"incompatible_shape_error": False}, [False, True]),
    ("LogicalAnd", (T([True, True]), T([True, False])), {}, [True, False]),
    ("Max", (T([[1.0, 7.0], [3.0, 2.0]]), T([1], dtype=I32)), {"keep_dims": False}, [7.0, 3.0]),
    ("Sum", (T([[1.0, 7.0], [3.0, 2.0]]), T([0], dtype=I32)), {"keep_dims": True}, [[4.0, 9.0]]),
    ("Mean", (T([[[[1.0], [3.0]], [[5.0], [7.0]]]]), T([1, 2], dtype=I32)), {"keep_dims": True}, [[[[4.0]]]]),
    ("ArgMax", (T([[1.0, 9.0, 9.0]]), T(1, dtype=I32)), {"output_type": "DT_INT32"}, [1]),   # first maximum
    ("Shape", (torch.zeros(2, 3, 5),), {}, [2, 3, 5]),
    ("Size", (torch.zeros(2, 3),), {}, 6),
    ("Reshape", (torch.arange(6), T([3, -1], dtype=I32)), {}, [[0, 1], [2, 3], [4, 5]]),
    ("ExpandDims", (T([1.0, 2.0]), T(-1, dtype=I32)), {}, [[1.0], [2.0]]),
    ("Squeeze", (torch.ones(1, 2, 1),), {"squeeze_dims": [0]}, [[1.0], [1.0]]),
    ("Pack", (T([1, 2]), T([3, 4])), {"axis": 1, "N": 2}, [[1, 3], [2, 4]]),
    ("ConcatV2", (T([[1, 2]]), T([[3]]), T(1, dtype=I32)), {}, [[1, 2, 3]]),
    ("Tile", (T([[1, 2]]), T([2, 2], dtype=I32)), {}, [[1, 2, 1, 2], [1, 2, 1, 2]]),
    ("Fill", (T([2, 2], dtype=I32), T(7.0)), {}, [[7.0, 7.0], [7.0, 7.0]]),
    ("Range", (T(0.0), T(3.0), T(1.0)), {"Tidx": "DT_FLOAT"}, [0.0, 1.0, 2.0]),
    ("GatherV2", (T([[1, 2], [3, 4], [5, 6]]), T([2, 0], dtype=I32), T(0, dtype=I32)), {"batch_dims": 0},
     [[5, 6], [1, 2]]),
    ("GatherNd", (T([[1, 2], [3, 4]]), T([[1, 0], [0, 1]], dtype=I32)), {}, [3, 2]),
    ("Select", (T([True, False]), T([[1, 1], [1, 1]]), T([[0, 0], [0, 0]])), {}, [[1, 1], [0, 0]]),
    ("StridedSlice", (torch.arange(10), T([1], dtype=I32), T([8], dtype=I32), T([3], dtype=I32)),
     {"begin_mask": 0, "end_mask": 0, "ellipsis_mask": 0, "new_axis_mask": 0, "shrink_axis_mask": 0}, [1, 4, 7]),
    ("MaxPool", (T([[[[1.0], [5.0]], [[3.0], [2.0]]]]),),
     {"ksize": [1, 2, 2, 1], "strides": [1, 1, 1, 1], "padding": "VALID"}, [[[[5.0]]]]),
    ("ResizeBilinear", (T([[[[0.0], [4.0]]]]), T([1, 4], dtype=I32)),
     {"align_corners": False, "half_pixel_centers": False}, [[[[0.0], [2.0], [4.0], [4.0]]]]),     # src = dst/2
    ("ResizeBilinear", (T([[[[0.0], [4.0]]]]), T([1, 4], dtype=I32)),
     {"align_corners": False, "half_pixel_centers": True}, [[[[0.0], [1.0], [3.0], [4.0]]]]),     # (d+.5)/2-.5
]


@pytest.mark.parametrize("op,inputs,attr,expected", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_op_alone(op, inputs, attr, expected):
    out = run(op, *inputs, **attr)
    if out.dtype.is_floating_point:
        assert torch.allclose(out.double(), torch.tensor(expected, dtype=torch.float64), atol=1e-6)
    else:
        assert out.tolist() == expected


def test_multi_output_ops():
    values, indices = run("TopKV2", T([[3.0, 1.0, 3.0, 2.0]]), T(2, dtype=I32), sorted=True)
    assert values.tolist() == [[3.0, 3.0]] and indices.tolist() == [[0, 2]]
    parts = run("Unpack", T([[1, 2], [3, 4]]), axis=1, num=2)
    assert [p.tolist() for p in parts] == [[1, 3], [2, 4]]
    parts = run("Split", T(1, dtype=I32), T([[1, 2, 3, 4]]), num_split=2)     # split_dim comes first
    assert [p.tolist() for p in parts] == [[[1, 2]], [[3, 4]]]


def test_every_op_of_the_four_graphs_is_known():
    """The op types the embedded and installable graphs use (read from the shipped MoveNet MultiPose graph and the
    list in the TF.js models' manifests) are all runnable: conv ops are built separately (filters at load)."""
    graph = json.loads((ROOT / "partwise" / "models" / "data" / "movenet-multipose" /
                        "movenet-multipose.json").read_text())
    multipose_ops = {n["op"] for n in graph["modelTopology"]["node"]}
    singlepose_ops = {"AddV2", "ArgMax", "Cast", "ConcatV2", "Const", "DepthwiseConv2dNative", "ExpandDims",
                      "FloorDiv", "FusedDepthwiseConv2dNative", "GatherNd", "Identity", "Mul", "Pack", "Placeholder",
                      "RealDiv", "Reshape", "ResizeBilinear", "Sigmoid", "Sqrt", "SquaredDifference", "Squeeze", "Sub",
                      "Unpack", "_FusedConv2D"}
    centernet_ops = {"Add", "Cast", "ConcatV2", "Const", "Conv2D", "DepthwiseConv2dNative", "Equal", "ExpandDims",
                     "FloorDiv", "FloorMod", "FusedDepthwiseConv2dNative", "GatherV2", "Identity", "MaxPool", "Mean",
                     "Mul", "Placeholder", "Relu", "Relu6", "Reshape", "ResizeBilinear", "Sigmoid", "StridedSlice",
                     "Sub", "TopKV2", "_FusedConv2D"}
    built_elsewhere = {"Const", "Placeholder", "_FusedConv2D", "FusedDepthwiseConv2dNative", "Conv2D",
                       "DepthwiseConv2dNative"}
    missing = (multipose_ops | singlepose_ops | centernet_ops) - built_elsewhere - set(OPS)
    assert not missing
    tested = {c[0] for c in CASES} | {"TopKV2", "Unpack", "Split"}
    assert (multipose_ops | singlepose_ops | centernet_ops) - built_elsewhere <= tested
