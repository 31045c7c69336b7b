"""TensorFlow op semantics that torch's defaults do not give, as small pure functions on NHWC tensors.

Used by the TF.js graph runner (:mod:`partwise.models.tfjs`) and by the original models' preprocessing. Images and
feature maps are ``(N, H, W, C)`` (TF's NHWC) unless a function says otherwise.

Where TF and torch differ:

* ``SAME`` padding puts the odd pixel *after* (bottom/right): at stride 2 on an even size it is asymmetric, which
  ``F.conv2d(padding=...)`` cannot express (:func:`same_padding`).
* Bilinear resizing has three sampling rules (:func:`resize_bilinear`): half-pixel centres (= torch's
  ``align_corners=False``), corner alignment, and TF's *legacy* rule ``src = dst * in / out`` that no torch mode has.
  TF.js computes the weights and the blend in float64 and stores float32; so does this function, which makes it
  bit-exact with the original runtime.
* ``TopKV2`` breaks ties toward the lower index (:func:`top_k`); ``torch.topk`` promises no order.
* ``Select`` (TF1) with a vector condition picks whole rows (:func:`select`).
* ``StridedSlice`` carries five bit masks (:func:`strided_slice`).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TF ``SAME`` padding of one spatial axis: ``(before, after)``, the extra pixel after.

    Output size is ``ceil(size / stride)``; e.g. ``same_padding(8, 3, 2) == (0, 1)``, ``same_padding(7, 3, 2) ==
    (1, 1)``.
    """
    effective = (kernel - 1) * dilation + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


def _spatial_padding(x: Tensor, kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int],
                     padding: str | Sequence[int]) -> tuple[int, int, int, int]:
    """``(top, bottom, left, right)`` for ``padding`` ``"SAME"``, ``"VALID"`` or TF's ``EXPLICIT`` list of 8
    (NHWC pairs)."""
    if isinstance(padding, str):
        if padding == "VALID":
            return 0, 0, 0, 0
        top, bottom = same_padding(x.shape[1], kernel[0], stride[0], dilation[0])
        left, right = same_padding(x.shape[2], kernel[1], stride[1], dilation[1])
        return top, bottom, left, right
    pads = list(padding)
    return pads[2], pads[3], pads[4], pads[5]


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: tuple[int, int] = (1, 1),
           padding: str | Sequence[int] = "SAME", dilation: tuple[int, int] = (1, 1), groups: int = 1) -> Tensor:
    """2-D convolution of an NHWC tensor with TF padding rules; returns NHWC.

    ``weight`` is torch's ``(out, in / groups, kh, kw)`` (convert TF's ``[kh, kw, in, out]`` with
    :func:`tf_filter_to_torch`). The convolution runs on a channels-last view: no layout copies on the way in or
    out.
    """
    kernel = (weight.shape[2], weight.shape[3])
    top, bottom, left, right = _spatial_padding(x, kernel, stride, dilation, padding)
    if top == bottom and left == right:
        pad = (top, left)
    else:
        x = F.pad(x, (0, 0, left, right, top, bottom))
        pad = (0, 0)
    y = F.conv2d(x.permute(0, 3, 1, 2), weight, bias, stride, pad, dilation, groups)
    return y.permute(0, 2, 3, 1)


def tf_filter_to_torch(filt: Tensor, depthwise: bool = False) -> Tensor:
    """TF conv filter ``[kh, kw, in, out]`` -> torch ``(out, in, kh, kw)``; a depthwise filter ``[kh, kw, C, M]``
    -> ``(C * M, 1, kh, kw)`` (TF's output channel ``c * M + m`` is torch's group ``c``, member ``m``). Returned
    channels-last, the layout :func:`conv2d` runs in."""
    if depthwise:
        kh, kw, c, m = filt.shape
        out = filt.reshape(kh, kw, c * m).permute(2, 0, 1).unsqueeze(1)
    else:
        out = filt.permute(3, 2, 0, 1)
    return out.contiguous(memory_format=torch.channels_last)


def max_pool(x: Tensor, kernel: tuple[int, int], stride: tuple[int, int], padding: str = "SAME") -> Tensor:
    """Max pooling of an NHWC tensor; ``SAME`` pads with -inf (padding never wins), extra pixel after."""
    top, bottom, left, right = _spatial_padding(x, kernel, stride, (1, 1), padding)
    if top or bottom or left or right:
        x = F.pad(x, (0, 0, left, right, top, bottom), value=-math.inf)
    return F.max_pool2d(x.permute(0, 3, 1, 2), kernel, stride).permute(0, 2, 3, 1)


def _resize_axis(in_size: int, out_size: int, align_corners: bool, half_pixel_centers: bool):
    """Source rows of one axis as TF.js's CPU kernel computes them (float64): lower index, upper index, fraction."""
    in_eff = in_size - 1 if align_corners and out_size > 1 else in_size
    out_eff = out_size - 1 if align_corners and out_size > 1 else out_size
    ratio = in_eff / out_eff
    dst = torch.arange(out_size, dtype=torch.float64)
    src = ratio * (dst + 0.5) - 0.5 if half_pixel_centers else ratio * dst
    lower = torch.clamp(torch.floor(src), min=0)
    frac = src - lower
    upper = torch.clamp(torch.ceil(src), max=in_size - 1)
    return lower.long(), upper.long(), frac


def resize_bilinear(x: Tensor, size: tuple[int, int], align_corners: bool = False,
                    half_pixel_centers: bool = False) -> Tensor:
    """TF ``ResizeBilinear`` of an NHWC tensor to ``size = (height, width)``; returns float32.

    Sampling rules: ``half_pixel_centers`` (``src = (dst + 0.5) * in / out - 0.5``), ``align_corners``
    (``src = dst * (in - 1) / (out - 1)``), or neither: TF's legacy ``src = dst * in / out``. The blend is
    ``top = tl + (tr - tl) * fx; bottom = bl + (br - bl) * fx; top + (bottom - top) * fy`` in float64, rounded once
    to float32 -- the TF.js CPU kernel's arithmetic, so integer images give the original's values exactly.
    """
    out_h, out_w = int(size[0]), int(size[1])
    y0, y1, fy = _resize_axis(x.shape[1], out_h, align_corners, half_pixel_centers)
    x0, x1, fx = _resize_axis(x.shape[2], out_w, align_corners, half_pixel_centers)
    src = x.to(torch.float64)
    top_rows, bottom_rows = src[:, y0], src[:, y1]
    fx = fx.view(1, 1, -1, 1)
    top = top_rows[:, :, x0] + (top_rows[:, :, x1] - top_rows[:, :, x0]) * fx
    bottom = bottom_rows[:, :, x0] + (bottom_rows[:, :, x1] - bottom_rows[:, :, x0]) * fx
    return (top + (bottom - top) * fy.view(1, -1, 1, 1)).to(torch.float32)


def top_k(x: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """TF ``TopKV2(sorted=True)`` along the last axis: values and int32 indices, equal values in index order.

    Exact without sorting the whole axis (CenterNet's 128 x 128 x 80 heat map: 1.3M scores for 100 boxes): the
    ``k``-th largest value from ``torch.topk``, then a stable sort of just the elements at least that large."""
    n = x.shape[-1]
    if k >= n or n <= 4096 or torch.isnan(x).any():
        order = torch.sort(x, dim=-1, descending=True, stable=True)
        return order.values[..., :k], order.indices[..., :k].to(torch.int32)
    rows = x.reshape(-1, n)
    values = torch.empty(rows.shape[0], k, dtype=x.dtype)
    indices = torch.empty(rows.shape[0], k, dtype=torch.int64)
    for r, row in enumerate(rows):
        kth = torch.topk(row, k, sorted=False).values.min()
        candidates = torch.nonzero(row >= kth).squeeze(1)  # ascending index: ties stay in index order below
        order = torch.sort(row[candidates], descending=True, stable=True)
        values[r], indices[r] = order.values[:k], candidates[order.indices[:k]]
    return values.reshape(*x.shape[:-1], k), indices.reshape(*x.shape[:-1], k).to(torch.int32)


def select(condition: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """TF1 ``Select``: elementwise, except that a vector ``condition`` with a higher-rank ``a`` picks rows."""
    if condition.dim() == 1 and a.dim() > 1:
        condition = condition.reshape(-1, *([1] * (a.dim() - 1)))
    return torch.where(condition, a, b)


def gather_nd(params: Tensor, indices: Tensor) -> Tensor:
    """TF ``GatherNd``: ``indices[..., K]`` address the first ``K`` axes of ``params``; result shape
    ``indices.shape[:-1] + params.shape[K:]``."""
    idx = indices.long()
    return params[tuple(idx[..., i] for i in range(idx.shape[-1]))]


def gather(params: Tensor, indices: Tensor, axis: int, batch_dims: int = 0) -> Tensor:
    """TF ``GatherV2``: ``params`` rows along ``axis`` picked by ``indices`` (any shape); ``batch_dims`` leading
    axes shared by both."""
    axis = axis % params.dim()
    if batch_dims == 0:
        flat = torch.index_select(params, axis, indices.reshape(-1).long())
        return flat.reshape(*params.shape[:axis], *indices.shape, *params.shape[axis + 1:])
    return torch.stack([gather(p, i, axis - 1, batch_dims - 1) for p, i in zip(params, indices)])


def strided_slice(x: Tensor, begin: Sequence[int], end: Sequence[int], strides: Sequence[int], begin_mask: int = 0,
                  end_mask: int = 0, ellipsis_mask: int = 0, new_axis_mask: int = 0,
                  shrink_axis_mask: int = 0) -> Tensor:
    """TF ``StridedSlice`` with its five masks (bit ``i`` refers to spec entry ``i``).

    ``begin_mask``/``end_mask``: ignore that begin/end (full range); ``ellipsis_mask``: the entry stands for as many
    full axes as needed; ``new_axis_mask``: insert a length-1 axis; ``shrink_axis_mask``: take the single index
    ``begin`` and drop the axis. Negative strides walk backwards.
    """
    n_spec = len(begin)
    consumed = sum(1 for i in range(n_spec) if not (new_axis_mask >> i) & 1 and not (ellipsis_mask >> i) & 1)
    selectors: list[tuple] = []  # per input axis: (kind, begin, end, stride)
    out_shape_plan: list[tuple[str, int]] = []  # ("new", -) / ("axis", input axis)
    axis = 0
    seen_ellipsis = False
    for i in range(n_spec):
        if (ellipsis_mask >> i) & 1 and not seen_ellipsis:
            seen_ellipsis = True
            for _ in range(x.dim() - consumed):
                selectors.append(("full",))
                out_shape_plan.append(("axis", axis))
                axis += 1
        elif (new_axis_mask >> i) & 1:
            out_shape_plan.append(("new", -1))
        elif (shrink_axis_mask >> i) & 1:
            size = x.shape[axis]
            index = int(begin[i]) + size if int(begin[i]) < 0 else int(begin[i])
            if not 0 <= index < size:
                raise IndexError(f"strided_slice: index {begin[i]} out of range for axis {axis} of size {size}")
            selectors.append(("range", index, index + 1, 1))
            axis += 1
        else:
            b = None if (begin_mask >> i) & 1 else int(begin[i])
            e = None if (end_mask >> i) & 1 else int(end[i])
            selectors.append(("range", b, e, int(strides[i])))
            out_shape_plan.append(("axis", axis))
            axis += 1
    while axis < x.dim():
        selectors.append(("full",))
        out_shape_plan.append(("axis", axis))
        axis += 1
    out = x
    for dim, sel in enumerate(selectors):
        if sel[0] == "full":
            continue
        _, b, e, s = sel
        start, stop, step = slice(b, e, s).indices(out.shape[dim])
        if step > 0:
            out = out.narrow(dim, start, max(0, -(-(stop - start) // step))) if step == 1 else \
                out[(slice(None),) * dim + (slice(start, stop, step),)]
        else:
            index = torch.arange(start, stop, step, dtype=torch.long)
            out = torch.index_select(out, dim, index)
    shape = [1 if kind == "new" else out.shape[a] for kind, a in out_shape_plan]
    return out.reshape(shape)
