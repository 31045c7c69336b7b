"""TensorFlow.js graph models in plain PyTorch: no TensorFlow, no node at run time.

A TF.js graph model is ``NAME.json`` (``modelTopology``: the frozen TF ``GraphDef`` as JSON; ``weightsManifest``:
where each constant lies in the ``.bin`` files; ``signature``: the named inputs and outputs) plus its ``.bin``
weight shards. :func:`load_graph_model` reads both and returns a :class:`GraphModel`, an ``nn.Module`` that maps the
graph's input tensors (as the graph declares them: NHWC, its dtype) to a dict of outputs keyed by the signature's
tensor names without ``:0`` (``"Identity"``, ``"tower_0/detections"``, ...)::

    model = load_graph_model("movenet-multipose.json")
    out = model(torch.zeros(1, 256, 256, 3, dtype=torch.int32))["Identity"]   # (1, 6, 56)

How it runs: at load, nodes are sorted topologically, every node whose inputs are all constants is evaluated once
(constant folding), filters are converted to torch's layout once, and each remaining node becomes a small closure
over its attributes (:data:`OPS`). A forward is then one pass over that list, dropping each intermediate after its
last use. Data-dependent shapes (``Shape``, ``Size``, ``Fill``, ``Range``, ``Tile``) are computed at run time, so
inputs of any size the graph accepts work (MoveNet MultiPose takes any multiple of 32).

TF semantics that differ from torch's defaults live in :mod:`partwise.ops.tf` (SAME padding, legacy bilinear
resizing, TopK tie order, row-wise ``Select``, ``StridedSlice`` masks). An op type this runner does not know is a
one-line :class:`~partwise.errors.InputError` naming the file, the node and the op, raised at load.

Weights: float32 stored raw or quantized (``float16``, or ``uint8``/``uint16`` with ``scale`` and ``min``),
int32 and bool raw.
"""
from __future__ import annotations

import base64
import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor, nn

from partwise.errors import InputError
from partwise.ops import tf as tfops

_DTYPES = {"DT_FLOAT": torch.float32, "DT_INT32": torch.int32, "DT_BOOL": torch.bool, "DT_INT64": torch.int64,
           "DT_HALF": torch.float16, "DT_UINT8": torch.uint8}
_MANIFEST_DTYPES = {"float32": ("<f4", 4), "int32": ("<i4", 4), "bool": ("u1", 1)}
_QUANTIZED = {"float16": ("<f2", 2), "uint8": ("u1", 1), "uint16": ("<u2", 2)}


# ---------------------------------------------------------------------------------------------------- reading

def _attr(node: dict, key: str, default: Any = None) -> Any:
    """A node attribute as a Python value: ints, floats, bools, strings (base64 in the JSON), lists, types."""
    value = node.get("attr", {}).get(key)
    if value is None:
        return default
    if "i" in value:
        return int(value["i"])
    if "f" in value:
        return float(value["f"])
    if "b" in value:
        return bool(value["b"])
    if "s" in value:
        return base64.b64decode(value["s"]).decode()
    if "type" in value:
        return value["type"]
    if "list" in value:
        items = value["list"]
        if "i" in items:
            return [int(v) for v in items["i"]]
        if "s" in items:
            return [base64.b64decode(v).decode() for v in items["s"]]
        if "f" in items:
            return [float(v) for v in items["f"]]
        return []
    if "shape" in value:
        return [int(d.get("size", -1)) for d in value["shape"].get("dim", [])]
    return default


def read_weights(model_json: Path, manifest: list[dict]) -> dict[str, Tensor]:
    """Every constant of the manifest, dequantized to its original dtype, keyed by node name."""
    out: dict[str, Tensor] = {}
    for group in manifest:
        chunks = []
        for rel in group["paths"]:
            shard = model_json.parent / rel
            try:
                chunks.append(shard.read_bytes())
            except OSError as exc:
                raise InputError(shard, None, f"weights shard named by {model_json.name} cannot be read "
                                              f"({exc.strerror or exc})") from None
        data = b"".join(chunks)
        offset = 0
        for spec in group["weights"]:
            name, shape = spec["name"], [int(d) for d in spec["shape"]]
            count = int(np.prod(shape)) if shape else 1
            quant = spec.get("quantization")
            if quant:
                if quant.get("dtype") not in _QUANTIZED:
                    raise InputError(model_json, name, f"unsupported quantization {quant.get('dtype')!r}")
                np_dtype, width = _QUANTIZED[quant["dtype"]]
            elif spec["dtype"] in _MANIFEST_DTYPES:
                np_dtype, width = _MANIFEST_DTYPES[spec["dtype"]]
            else:
                raise InputError(model_json, name, f"unsupported weight dtype {spec['dtype']!r}")
            size = count * width
            if offset + size > len(data):
                raise InputError(model_json, name, f"weights end at byte {len(data)} of {', '.join(group['paths'])}"
                                                   f" but this weight needs bytes {offset}..{offset + size}")
            array = np.frombuffer(data, dtype=np_dtype, count=count, offset=offset).reshape(shape)
            offset += size
            if quant and quant["dtype"] != "float16":
                array = array.astype(np.float32) * float(quant["scale"]) + float(quant["min"])
            if spec["dtype"] == "float32":
                array = array.astype(np.float32)
            elif spec["dtype"] == "bool":
                array = array.astype(bool)
            elif spec["dtype"] == "int32" and quant:
                array = np.round(array).astype(np.int32)
            out[name] = torch.from_numpy(np.array(array))
        if offset != len(data):
            raise InputError(model_json, None, f"{len(data) - offset} bytes of {', '.join(group['paths'])} are "
                                               "not described by the weights manifest")
    return out


def _split_ref(ref: str) -> tuple[str, int]:
    """``"node:1"`` -> ``("node", 1)``; ``"node"`` -> ``("node", 0)``."""
    name, _, index = ref.rpartition(":")
    if name and index.isdigit():
        return name, int(index)
    return ref, 0


# ------------------------------------------------------------------------------------------------ op builders
# Each builder takes the node (and the graph's constants for inputs that must be known at load, such as filters)
# and returns fn(*inputs) -> Tensor or tuple of Tensors.

def _activation(name: str, node: dict) -> Callable[[Tensor], Tensor]:
    if name == "Relu":
        return torch.relu
    if name == "Relu6":
        return lambda t: torch.clamp(t, 0.0, 6.0)
    if name == "Elu":
        return torch.nn.functional.elu
    if name == "Sigmoid":
        return torch.sigmoid
    if name == "Tanh":
        return torch.tanh
    if name == "LeakyRelu":
        alpha = _attr(node, "leakyrelu_alpha", 0.2)
        return lambda t: torch.nn.functional.leaky_relu(t, alpha)
    raise KeyError(name)


_INPLACE_ACTIVATIONS = {"Relu": torch.relu_, "Relu6": lambda t: t.clamp_(0.0, 6.0)}


def _fused_conv(node: dict, consts: dict[str, Tensor], depthwise: bool):
    fused = _attr(node, "fused_ops", []) or []
    filt_name = _split_ref(node["input"][1])[0]
    weight = tfops.tf_filter_to_torch(consts[filt_name], depthwise=depthwise)
    groups = consts[filt_name].shape[2] if depthwise else 1
    strides = _attr(node, "strides", [1, 1, 1, 1])
    dilations = _attr(node, "dilations", [1, 1, 1, 1])
    padding = _attr(node, "padding", "VALID")
    if padding == "EXPLICIT":
        padding = _attr(node, "explicit_paddings", [])
    if _attr(node, "data_format", "NHWC") != "NHWC":
        raise ValueError("only NHWC data_format is supported")
    extra = [_split_ref(ref)[0] for ref in node["input"][2:] if not ref.startswith("^")]
    bias = None
    post: list[Callable] = []
    ops = list(fused)
    if ops and ops[0] == "BiasAdd":
        bias = consts[extra[0]].to(torch.float32)
        ops = ops[1:]
    elif ops and ops[0] == "FusedBatchNorm":
        scale, offset, mean, var = (consts[n] for n in extra[:4])
        eps = _attr(node, "epsilon", 0.0)
        factor = scale / torch.sqrt(var + eps)
        weight = (weight * factor.view(-1, 1, 1, 1)).contiguous(memory_format=torch.channels_last)
        bias = offset - mean * factor
        ops = ops[1:]
    for op in ops:
        if op == "Prelu":
            alpha = consts[extra[-1]].reshape(-1)
            post.append(lambda t, a=alpha: torch.where(t >= 0, t, t * a))
        elif op in _INPLACE_ACTIVATIONS:  # the convolution's output is fresh: no second large buffer to fault in
            post.append(_INPLACE_ACTIVATIONS[op])
        else:
            post.append(_activation(op, node))
    stride, dilation = (strides[1], strides[2]), (dilations[1], dilations[2])

    def run(x, *_):
        y = tfops.conv2d(x, weight, bias, stride, padding, dilation, groups)
        for f in post:
            y = f(y)
        return y
    return run


def _plain_conv(node: dict, consts: dict[str, Tensor], depthwise: bool):
    return _fused_conv({**node, "attr": {k: v for k, v in node.get("attr", {}).items() if k != "fused_ops"}},
                       consts, depthwise)


def _reduce(fn_name: str, node: dict):
    keep = _attr(node, "keep_dims", False)

    def run(x, axes):
        dims = [int(a) for a in axes.reshape(-1).tolist()]
        if not dims:
            return x
        if fn_name in ("amax", "amin"):
            return getattr(torch, fn_name)(x, dim=dims, keepdim=keep)
        if fn_name == "mean":
            return x.mean(dim=dims, keepdim=keep) if x.is_floating_point() else \
                torch.div(x.sum(dim=dims, keepdim=keep), int(np.prod([x.shape[d] for d in dims])),
                          rounding_mode="trunc").to(x.dtype)
        if fn_name == "prod":
            out = x
            for d in sorted((d % x.dim() for d in dims), reverse=True):
                out = out.prod(dim=d, keepdim=keep)
            return out
        return x.sum(dim=dims, keepdim=keep).to(x.dtype)
    return run


def _arg(fn, node: dict):
    dtype = _DTYPES.get(_attr(node, "output_type", "DT_INT64"), torch.int64)

    def run(x, axis):
        axis = int(axis) % max(x.dim(), 1)
        if x.dim() > 1 and axis != x.dim() - 1:
            # a reduction over the contiguous last axis is 2x faster; ties still go to the first index
            return fn(x.movedim(axis, -1).contiguous(), dim=-1).to(dtype)
        return fn(x, dim=axis).to(dtype)
    return run


def _squeeze(node: dict):
    dims = _attr(node, "squeeze_dims", []) or []

    def run(x):
        if not dims:
            return x.squeeze()
        keep = [s for i, s in enumerate(x.shape) if i not in {d % x.dim() for d in dims}]
        return x.reshape(keep)
    return run


def _strided_slice(node: dict):
    masks = {k: _attr(node, k, 0) for k in ("begin_mask", "end_mask", "ellipsis_mask", "new_axis_mask",
                                             "shrink_axis_mask")}
    return lambda x, b, e, s: tfops.strided_slice(x, b.tolist(), e.tolist(), s.tolist(), **masks)


def _split(node: dict):
    n = _attr(node, "num_split", 1)
    return lambda axis, x: tuple(torch.tensor_split(x, n, dim=int(axis)))


def _split_v(node: dict):
    def run(x, sizes, axis):
        dim = int(axis)
        sizes = [int(s) for s in sizes.tolist()]
        if -1 in sizes:
            sizes[sizes.index(-1)] = x.shape[dim] - (sum(sizes) + 1)
        return tuple(torch.split(x, sizes, dim=dim))
    return run


def _cast(node: dict):
    dtype = _DTYPES[_attr(node, "DstT")]
    return lambda x: x.to(dtype)


def _max_pool(node: dict):
    k, s = _attr(node, "ksize"), _attr(node, "strides")
    padding = _attr(node, "padding", "VALID")
    return lambda x: tfops.max_pool(x, (k[1], k[2]), (s[1], s[2]), padding)


def _resize(node: dict):
    align, half = _attr(node, "align_corners", False), _attr(node, "half_pixel_centers", False)
    return lambda x, size: tfops.resize_bilinear(x, tuple(size.tolist()), align, half)


def _reshape(x: Tensor, shape: Tensor) -> Tensor:
    dims = [int(s) for s in shape.reshape(-1).tolist()]
    if x.numel() == 0 and -1 in dims:  # TF infers 0 for -1 in an empty tensor; torch refuses
        dims = [0 if d == -1 else d for d in dims]
    return x.reshape(dims)


def _pad(x, paddings, value=None):
    pads = []
    for before, after in reversed(paddings.tolist()):
        pads += [int(before), int(after)]
    return torch.nn.functional.pad(x, pads, value=0 if value is None else value.item())


def _sparse_to_dense(indices, shape, values, default):
    out = torch.full(shape.tolist(), default.item(), dtype=values.dtype)
    idx = indices.long()
    if idx.dim() < 2:  # scalar or [N] indices address a 1-D output
        idx = idx.reshape(idx.numel(), 1)
    if idx.shape[0]:
        out[tuple(idx.t())] = values if values.dim() else values.expand(idx.shape[0])
    return out


def _matmul(node: dict):
    ta, tb = _attr(node, "transpose_a", False), _attr(node, "transpose_b", False)
    return lambda a, b: torch.matmul(a.transpose(-1, -2) if ta else a, b.transpose(-1, -2) if tb else b)


def _simple(fn):
    return lambda node: fn


#: log of the smallest normal float32: below it exp() is a denormal or 0
_LOG_FLT_MIN = -87.33654


def _exp(x: Tensor) -> Tensor:
    """exp with denormal results flushed to zero, as TF's CPU kernels run (flush-to-zero mode). Why: torch's
    vectorized exp leaves its fast path for inputs below about -88 and runs ~10-25x slower there, and MultiPose's
    keypoint-distance maps are mostly such values."""
    if not x.is_floating_point() or x.dtype != torch.float32:
        return torch.exp(x)
    return torch.exp(x.clamp(min=_LOG_FLT_MIN)).masked_fill_(x < _LOG_FLT_MIN, 0.0)


def _float_div(a, b):
    return a / b if a.is_floating_point() else torch.div(a, b, rounding_mode="trunc")


#: op type -> builder(node) -> fn(*inputs). Conv builders also take the constants (see _compile).
OPS: dict[str, Callable[[dict], Callable]] = {
    "Identity": _simple(lambda x: x),
    "Snapshot": _simple(lambda x: x),
    "StopGradient": _simple(lambda x: x),
    "Cast": _cast,
    "Add": _simple(torch.add), "AddV2": _simple(torch.add), "Sub": _simple(torch.sub), "Mul": _simple(torch.mul),
    "RealDiv": _simple(torch.true_divide), "Div": _simple(_float_div),
    "FloorDiv": _simple(lambda a, b: torch.div(a, b, rounding_mode="floor")),
    "FloorMod": _simple(torch.remainder),
    "Maximum": _simple(torch.maximum), "Minimum": _simple(torch.minimum),
    "SquaredDifference": _simple(lambda a, b: (a - b) * (a - b)),
    "AddN": _simple(lambda *xs: torch.stack(torch.broadcast_tensors(*xs)).sum(0)),
    "BiasAdd": _simple(torch.add),
    "Neg": _simple(torch.neg), "Abs": _simple(torch.abs), "Exp": _simple(_exp), "Log": _simple(torch.log),
    "Sqrt": _simple(torch.sqrt), "Rsqrt": _simple(torch.rsqrt), "Square": _simple(lambda x: x * x),
    "Reciprocal": _simple(torch.reciprocal), "Sigmoid": _simple(torch.sigmoid), "Tanh": _simple(torch.tanh),
    "Relu": _simple(torch.relu), "Relu6": _simple(lambda x: torch.clamp(x, 0.0, 6.0)),
    "Elu": _simple(torch.nn.functional.elu),
    "LeakyRelu": lambda node: _activation("LeakyRelu", node),
    "Less": _simple(torch.lt), "LessEqual": _simple(torch.le), "Greater": _simple(torch.gt),
    "GreaterEqual": _simple(torch.ge), "Equal": _simple(torch.eq), "NotEqual": _simple(torch.ne),
    "LogicalAnd": _simple(torch.logical_and), "LogicalOr": _simple(torch.logical_or),
    "LogicalNot": _simple(torch.logical_not),
    "Select": _simple(tfops.select), "SelectV2": _simple(torch.where),
    "Max": lambda node: _reduce("amax", node), "Min": lambda node: _reduce("amin", node),
    "Sum": lambda node: _reduce("sum", node), "Mean": lambda node: _reduce("mean", node),
    "Prod": lambda node: _reduce("prod", node),
    "ArgMax": lambda node: _arg(torch.argmax, node), "ArgMin": lambda node: _arg(torch.argmin, node),
    "Shape": _simple(lambda x: torch.tensor(list(x.shape), dtype=torch.int32)),
    "Size": _simple(lambda x: torch.tensor(x.numel(), dtype=torch.int32)),
    "Reshape": _simple(lambda x, shape: _reshape(x, shape)),
    "ExpandDims": _simple(lambda x, dim: x.unsqueeze(int(dim))),
    "Squeeze": _squeeze,
    "Pack": lambda node: (lambda *xs, axis=_attr(node, "axis", 0): torch.stack(xs, dim=axis)),
    "Unpack": lambda node: (lambda x, axis=_attr(node, "axis", 0): tuple(torch.unbind(x, dim=axis))),
    "ConcatV2": _simple(lambda *xs: torch.cat(xs[:-1], dim=int(xs[-1]))),
    "Split": _split, "SplitV": _split_v,
    "StridedSlice": _strided_slice,
    "Tile": _simple(lambda x, multiples: x.repeat([int(m) for m in multiples.tolist()])),
    "Fill": _simple(lambda dims, value: torch.full([int(d) for d in dims.tolist()], value.item(),
                                                   dtype=value.dtype)),
    "Range": lambda node: (lambda start, limit, delta, dtype=_DTYPES[_attr(node, "Tidx", "DT_INT32")]:
                           torch.arange(start.item(), limit.item(), delta.item(), dtype=dtype)),
    "Transpose": _simple(lambda x, perm: x.permute([int(p) for p in perm.tolist()])),
    "Pad": _simple(_pad), "PadV2": _simple(_pad),
    "GatherNd": _simple(tfops.gather_nd),
    "GatherV2": lambda node: (lambda p, i, axis, b=_attr(node, "batch_dims", 0): tfops.gather(p, i, int(axis), b)),
    "TopKV2": _simple(lambda x, k: tfops.top_k(x, int(k))),
    "SparseToDense": _simple(_sparse_to_dense),
    "MatMul": _matmul,
    "MaxPool": _max_pool,
    "ResizeBilinear": _resize,
}
#: ops whose builder needs the graph's constants (filters are converted to torch's layout once, at load)
_CONV_OPS = {"_FusedConv2D": False, "FusedDepthwiseConv2dNative": True, "Conv2D": False,
             "DepthwiseConv2dNative": True}
_SKIP = {"NoOp"}


# ------------------------------------------------------------------------------------------------------- model

class GraphModel(nn.Module):
    """A TF.js graph model; ``forward`` takes the inputs (one positional for single-input graphs, else by name)
    and returns ``{output_name: tensor}``. Constants live in ``self.constants`` (a plain dict: nothing to train).
    """

    def __init__(self, graph: dict, weights: dict[str, Tensor], path: str | os.PathLike = "<graph>"):
        super().__init__()
        self.path = Path(path)
        topology = graph["modelTopology"]
        nodes = {n["name"]: n for n in topology["node"]}
        signature = graph.get("signature") or topology.get("signature") or {}
        self.input_specs = self._input_specs(nodes, signature)
        self.output_names = self._output_names(nodes, signature)
        #: the signature's declared output shapes (-1: data-dependent), by output name
        self.output_shapes = {_split_ref(spec["name"])[0]: [int(d.get("size", -1)) for d in
                                                             spec.get("tensorShape", {}).get("dim", [])]
                              for spec in (signature.get("outputs") or {}).values()}
        self.constants: dict[str, Tensor] = {}
        self._steps: list[tuple[str, Callable, list[tuple[str, int]], bool]] = []
        self._compile(nodes, weights)

    # -- signature ---------------------------------------------------------------------------------------
    def _input_specs(self, nodes: dict, signature: dict) -> dict[str, tuple[torch.dtype, list[int]]]:
        specs = {}
        for node in nodes.values():
            if node["op"] == "Placeholder":
                specs[node["name"]] = (_DTYPES.get(_attr(node, "dtype", "DT_FLOAT"), torch.float32),
                                       _attr(node, "shape", []) or [])
        for spec in (signature.get("inputs") or {}).values():
            name = _split_ref(spec["name"])[0]
            if name in specs and spec.get("dtype") in _DTYPES:
                specs[name] = (_DTYPES[spec["dtype"]], specs[name][1])
        return specs

    def _output_names(self, nodes: dict, signature: dict) -> list[str]:
        outputs = [spec["name"] for spec in (signature.get("outputs") or {}).values()]
        if not outputs:  # no signature: the nodes nothing consumes
            used = {_split_ref(r.lstrip("^"))[0] for n in nodes.values() for r in n.get("input", [])}
            outputs = [n for n, node in nodes.items() if n not in used and node["op"] not in ("Const", "NoOp")]
        return [name[:-2] if name.endswith(":0") else name for name in outputs]

    # -- compilation -------------------------------------------------------------------------------------
    def _compile(self, nodes: dict, weights: dict[str, Tensor]) -> None:
        order = self._topological_order(nodes)
        consts: dict[str, Tensor] = {}
        values_known: dict[tuple[str, int], Tensor] = {}
        steps = []
        for name in order:
            node = nodes[name]
            op = node["op"]
            if op == "Const":
                if name not in weights:
                    raise InputError(self.path, name, "constant not found in the weights manifest")
                consts[name] = weights[name]
                values_known[(name, 0)] = weights[name]
                continue
            if op == "Placeholder" or op in _SKIP:
                continue
            refs = [_split_ref(r) for r in node.get("input", []) if not r.startswith("^")]
            try:
                if op in _CONV_OPS:
                    fn = _fused_conv(node, consts, _CONV_OPS[op]) if op.startswith(("_Fused", "Fused")) \
                        else _plain_conv(node, consts, _CONV_OPS[op])
                    refs = refs[:1]
                elif op in OPS:
                    fn = OPS[op](node)
                else:
                    raise InputError(self.path, name, f"op {op} is not supported by partwise's TF.js runner")
            except (KeyError, ValueError, IndexError) as exc:
                raise InputError(self.path, name, f"op {op}: cannot prepare it ({exc})") from None
            if all(ref in values_known for ref in refs) and op != "Placeholder":
                result = fn(*(values_known[r] for r in refs))  # constant folding
                for i, t in enumerate(result if isinstance(result, tuple) else (result,)):
                    values_known[(name, i)] = t
                    consts[name if i == 0 else f"{name}:{i}"] = t
                continue
            steps.append((name, fn, refs))
        # Constants a step reads become stored values; every value is dropped after its last reader.
        needed_consts = {r for _, _, refs in steps for r in refs if r in values_known}
        needed_consts |= {(n, 0) for n in self.output_names if (n, 0) in values_known}
        self.constants = {f"{n}:{i}": values_known[(n, i)] for n, i in needed_consts}
        last_use: dict[tuple[str, int], int] = {}
        for index, (_, _, refs) in enumerate(steps):
            for r in refs:
                last_use[r] = index
        outputs = {_split_ref(n) for n in self.output_names}
        self._free_after: dict[int, list[tuple[str, int]]] = defaultdict(list)
        for ref, index in last_use.items():
            if ref not in outputs and ref not in needed_consts:
                self._free_after[index].append(ref)
        self._steps = steps

    def _topological_order(self, nodes: dict) -> list[str]:
        state: dict[str, int] = {}
        order: list[str] = []
        for root in nodes:
            if state.get(root) == 2:
                continue
            stack = [(root, iter(nodes[root].get("input", [])))]
            state[root] = 1
            while stack:
                name, inputs = stack[-1]
                advanced = False
                for ref in inputs:
                    dep = _split_ref(ref.lstrip("^"))[0]
                    if dep not in nodes:
                        raise InputError(self.path, name, f"input {ref!r} names no node of the graph")
                    if state.get(dep) == 1:
                        raise InputError(self.path, name, "the graph has a cycle")
                    if dep not in state:
                        state[dep] = 1
                        stack.append((dep, iter(nodes[dep].get("input", []))))
                        advanced = True
                        break
                if not advanced:
                    state[name] = 2
                    order.append(name)
                    stack.pop()
        return order

    # -- running -----------------------------------------------------------------------------------------
    def _check_input(self, name: str, value) -> Tensor:
        dtype, shape = self.input_specs[name]
        t = torch.as_tensor(value)
        if t.is_floating_point() != dtype.is_floating_point and dtype != torch.bool:
            raise InputError(None, name, f"graph input {name} is {str(dtype).replace('torch.', '')}, got "
                                         f"{str(t.dtype).replace('torch.', '')}")
        if shape and (len(shape) != t.dim() or any(s not in (-1, d) for s, d in zip(shape, t.shape))):
            raise InputError(None, name, f"graph input {name} has shape {shape} (-1: any), got {list(t.shape)}")
        return t.to(dtype)

    @torch.inference_mode()
    def forward(self, *args, **kwargs) -> dict[str, Tensor]:
        names = list(self.input_specs)
        if args:
            if len(args) != len(names):
                raise InputError(None, None, f"the graph takes {len(names)} input(s) ({', '.join(names)}), "
                                             f"got {len(args)}")
            kwargs = dict(zip(names, args))
        missing = [n for n in names if n not in kwargs]
        if missing:
            raise InputError(None, None, f"missing graph input(s): {', '.join(missing)}")
        values: dict[tuple[str, int], Tensor] = {(n, 0): self._check_input(n, kwargs[n]) for n in names}
        for key, t in self.constants.items():
            values[_split_ref(key)] = t
        free_after = self._free_after
        for index, (name, fn, refs) in enumerate(self._steps):
            result = fn(*(values[r] for r in refs))
            if isinstance(result, tuple):
                for i, t in enumerate(result):
                    values[(name, i)] = t
            else:
                values[(name, 0)] = result
            for ref in free_after.get(index, ()):
                values.pop(ref, None)
        return {n: values[_split_ref(n)] for n in self.output_names}


def load_graph_model(path: str | os.PathLike) -> GraphModel:
    """Read a TF.js graph model (``model.json`` + its ``.bin`` shards) into a :class:`GraphModel` (eval mode).

    Raises :class:`~partwise.errors.InputError` (one line: file, node or weight, problem) for a file that is not a
    TF.js graph model, a missing or short weights shard, or an op type the runner does not know.
    """
    path = Path(path)
    try:
        graph = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, None, f"cannot read the model file ({getattr(exc, 'strerror', None) or exc})") \
            from None
    except json.JSONDecodeError as exc:
        raise InputError(path, exc.lineno, f"not JSON ({exc.msg})") from None
    if not isinstance(graph, dict) or "modelTopology" not in graph or "weightsManifest" not in graph:
        raise InputError(path, None, "not a TF.js graph model (needs modelTopology and weightsManifest)")
    if graph.get("format") not in (None, "graph-model"):
        raise InputError(path, "format", f"{graph.get('format')!r}: only TF.js graph models are supported")
    try:
        nodes = graph["modelTopology"]["node"]
        if not isinstance(nodes, list) or not all(isinstance(n, dict) and "name" in n and "op" in n for n in nodes):
            raise TypeError
    except (KeyError, TypeError):
        raise InputError(path, "modelTopology.node", "expected a list of nodes with name and op") from None
    weights = read_weights(path, graph["weightsManifest"])
    return GraphModel(graph, weights, path).eval()
