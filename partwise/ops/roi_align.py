"""RoIAlign (average mode) in plain torch, for 2D maps and per time step of 3D video maps.

Semantics are the standard ones (Detectron2 / torchvision ``roi_align`` / mmcv ``RoIAlign(pool_mode='avg')``):

* a RoI ``[batch_index, x1, y1, x2, y2]`` is in input-image pixels; it is scaled by ``spatial_scale`` and, with
  ``aligned=True``, shifted by ``-0.5`` so that pixel centres sit at integer feature coordinates. With
  ``aligned=False`` there is no shift and a RoI is at least 1 feature cell wide and high;
* the RoI is cut into ``output_size`` bins; each bin averages ``grid_h x grid_w`` regularly spaced bilinear samples,
  where ``grid = sampling_ratio`` if it is positive, else ``ceil(roi_size / output_size)`` per RoI (adaptive);
* a sample with ``y < -1`` or ``y > H`` (or ``x < -1`` or ``x > W``) contributes 0; otherwise negative coordinates
  are clamped to 0 and coordinates at or beyond the last row/column use that row/column.

Implementation: the sample positions of a RoI form a tensor product of a row set and a column set, and the bilinear
weights factor into a row weight times a column weight (the out-of-range rule too). So each RoI's output is
``Ay @ F @ Ax^T`` with ``Ay`` ``(out_h, H)`` and ``Ax`` ``(out_w, W)`` interpolation-and-averaging matrices. That is
two matrix products per image instead of ``out_h * out_w * grid^2`` gathers, exact up to float summation order,
and differentiable in the features by autograd. RoI coordinates receive no gradient (as in the standard op).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor


def _pair(value: int | tuple[int, int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def _axis_weights(start: Tensor, length: Tensor, pooled: int, size: int, sampling_ratio: int) -> Tensor:
    """Per-RoI interpolation matrix along one axis.

    ``start``/``length``: ``(K,)`` RoI start and extent in feature coordinates (after scale and shift).
    Returns ``(K, pooled, size)``: entry ``[k, p, i]`` is the weight of feature row/column ``i`` in bin ``p``,
    i.e. the sum over that bin's samples of their linear-interpolation weight, divided by the grid count.
    """
    k = start.shape[0]
    dtype, device = start.dtype, start.device
    bin_size = length / pooled
    if sampling_ratio > 0:
        grid = torch.full((k,), sampling_ratio, dtype=torch.int64, device=device)
    else:
        grid = torch.ceil(length / pooled).to(torch.int64).clamp(min=0)
    max_grid = int(grid.max()) if k else 0
    weights = torch.zeros((k, pooled, size), dtype=dtype, device=device)
    if max_grid == 0:
        return weights
    p = torch.arange(pooled, device=device, dtype=dtype).view(1, pooled, 1)
    i = torch.arange(max_grid, device=device, dtype=dtype).view(1, 1, max_grid)
    grid_f = grid.to(dtype).clamp(min=1).view(k, 1, 1)
    # Same operation order as the reference kernels: start + p * bin + (i + .5) * bin / grid.
    coord = start.view(k, 1, 1) + p * bin_size.view(k, 1, 1) + (i + 0.5) * bin_size.view(k, 1, 1) / grid_f
    in_grid = i < grid.view(k, 1, 1).to(dtype)
    inside = (coord >= -1.0) & (coord <= size)
    coord = coord.clamp(min=0)
    low = coord.floor().to(torch.int64)
    at_edge = low >= size - 1
    low = torch.where(at_edge, torch.full_like(low, size - 1), low)
    high = torch.where(at_edge, low, low + 1)
    coord = torch.where(at_edge, low.to(dtype), coord)
    frac = coord - low.to(dtype)
    scale = (in_grid & inside).to(dtype) / grid_f
    flat = weights.view(k * pooled, size)
    w_low = ((1 - frac) * scale).reshape(k * pooled, max_grid)
    w_high = (frac * scale).reshape(k * pooled, max_grid)
    flat.scatter_add_(1, low.reshape(k * pooled, max_grid), w_low)
    flat.scatter_add_(1, high.reshape(k * pooled, max_grid), w_high)
    return weights


def _roi_boxes(rois: Tensor, spatial_scale: float, aligned: bool) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Feature-space ``(start_x, start_y, width, height)`` of ``(K, 5)`` RoIs."""
    offset = 0.5 if aligned else 0.0
    x1 = rois[:, 1] * spatial_scale - offset
    y1 = rois[:, 2] * spatial_scale - offset
    x2 = rois[:, 3] * spatial_scale - offset
    y2 = rois[:, 4] * spatial_scale - offset
    w, h = x2 - x1, y2 - y1
    if not aligned:
        w, h = w.clamp(min=1.0), h.clamp(min=1.0)
    return x1, y1, w, h


def _check_rois(rois: Tensor, batch: int) -> None:
    if rois.dim() != 2 or rois.shape[1] != 5:
        raise ValueError(f"rois must be (K, 5) [batch_index, x1, y1, x2, y2], got shape {tuple(rois.shape)}")
    if rois.numel():
        idx = rois[:, 0]
        if bool((idx < 0).any()) or bool((idx >= batch).any()) or bool((idx != idx.round()).any()):
            raise ValueError(f"roi batch indices must be integers in [0, {batch}), got {idx.tolist()}")


def _roi_align_maps(features: Tensor, rois: Tensor, output_size: tuple[int, int], spatial_scale: float,
                    sampling_ratio: int, aligned: bool) -> Tensor:
    """RoIAlign on ``(N, M, H, W)`` maps (``M`` = any flattened channel axes) -> ``(K, M, out_h, out_w)``."""
    n, m, h, w = features.shape
    out_h, out_w = output_size
    k = rois.shape[0]
    if k == 0:
        return features.new_zeros((0, m, out_h, out_w))
    rois = rois.detach().to(features.dtype)
    x1, y1, roi_w, roi_h = _roi_boxes(rois, spatial_scale, aligned)
    ay = _axis_weights(y1, roi_h, out_h, h, sampling_ratio)  # (K, out_h, H)
    ax = _axis_weights(x1, roi_w, out_w, w, sampling_ratio)  # (K, out_w, W)
    batch_index = rois[:, 0].to(torch.int64)
    pieces, order = [], []
    # One pair of matrix products per image; a batch holds few images, so this loop is short.
    for b in torch.unique(batch_index).tolist():
        sel = torch.nonzero(batch_index == b).flatten()
        kb = sel.numel()
        fmap = features[b].permute(1, 0, 2).reshape(h, m * w)  # (H, M*W)
        rows = (ay[sel].reshape(kb * out_h, h) @ fmap).view(kb, out_h * m, w)  # (kb, out_h*M, W)
        out = torch.bmm(rows, ax[sel].transpose(1, 2))  # (kb, out_h*M, out_w)
        pieces.append(out.view(kb, out_h, m, out_w).permute(0, 2, 1, 3))
        order.append(sel)
    result = torch.cat(pieces)
    inverse = torch.empty_like(batch_index)
    inverse[torch.cat(order)] = torch.arange(k, device=batch_index.device)
    return result[inverse]


def roi_align(features: Tensor, rois: Tensor, output_size: int | tuple[int, int], spatial_scale: float = 1.0,
              sampling_ratio: int = 0, aligned: bool = True) -> Tensor:
    """Average RoIAlign of ``(N, C, H, W)`` features -> ``(K, C, out_h, out_w)``.

    ``rois``: ``(K, 5)`` rows ``[batch_index, x1, y1, x2, y2]`` in input-image pixels (``spatial_scale`` maps them
    to feature coordinates, e.g. 1/16). ``sampling_ratio <= 0``: adaptive ``ceil(roi_size / output_size)``
    samples per bin and axis. ``aligned``: shift by -0.5 feature pixel (see the module docstring).
    """
    if features.dim() != 4:
        raise ValueError(f"roi_align expects (N, C, H, W) features, got shape {tuple(features.shape)}")
    _check_rois(rois, features.shape[0])
    return _roi_align_maps(features, rois, _pair(output_size), spatial_scale, sampling_ratio, aligned)


def roi_align_3d(features: Tensor, rois: Tensor, output_size: int | tuple[int, int], spatial_scale: float = 1.0,
                 sampling_ratio: int = 0, aligned: bool = True) -> Tensor:
    """RoIAlign applied to every time step of ``(N, C, T, H, W)`` features -> ``(K, C, T, out_h, out_w)``.

    The same RoI is used at every time step (AVA's keyframe box), as mmaction2's ``SingleRoIExtractor3D`` does.
    Temporal pooling, when wanted, is :func:`partwise.ops.pooling.temporal_pool` applied before this call
    (mmaction2's order: pool over time first, then RoIAlign the single remaining step).
    """
    if features.dim() != 5:
        raise ValueError(f"roi_align_3d expects (N, C, T, H, W) features, got shape {tuple(features.shape)}")
    _check_rois(rois, features.shape[0])
    n, c, t, h, w = features.shape
    out = _roi_align_maps(features.reshape(n, c * t, h, w), rois, _pair(output_size), spatial_scale,
                          sampling_ratio, aligned)
    return out.view(out.shape[0], c, t, out.shape[2], out.shape[3])


def roi_align_loop(features: Tensor, rois: Tensor, output_size: int | tuple[int, int], spatial_scale: float = 1.0,
                   sampling_ratio: int = 0, aligned: bool = True) -> Tensor:
    """Straightforward per-sample RoIAlign (loops over RoIs, bins and samples; vector only over channels).

    The speed baseline of ``benchmarks/models.py``; same semantics and shapes as :func:`roi_align`.
    """
    out_h, out_w = _pair(output_size)
    n, c, h, w = features.shape
    offset = 0.5 if aligned else 0.0
    result = features.new_zeros((rois.shape[0], c, out_h, out_w))
    for r, roi in enumerate(rois.tolist()):
        fmap = features[int(roi[0])]
        x1, y1 = roi[1] * spatial_scale - offset, roi[2] * spatial_scale - offset
        rw, rh = roi[3] * spatial_scale - offset - x1, roi[4] * spatial_scale - offset - y1
        if not aligned:
            rw, rh = max(rw, 1.0), max(rh, 1.0)
        bh, bw = rh / out_h, rw / out_w
        gh = sampling_ratio if sampling_ratio > 0 else max(math.ceil(rh / out_h), 0)
        gw = sampling_ratio if sampling_ratio > 0 else max(math.ceil(rw / out_w), 0)
        count = max(gh * gw, 1)
        for ph in range(out_h):
            for pw in range(out_w):
                acc = features.new_zeros(c)
                for iy in range(gh):
                    y = y1 + ph * bh + (iy + 0.5) * bh / gh
                    for ix in range(gw):
                        x = x1 + pw * bw + (ix + 0.5) * bw / gw
                        if y < -1.0 or y > h or x < -1.0 or x > w:
                            continue
                        yy, xx = max(y, 0.0), max(x, 0.0)
                        yl, xl = int(yy), int(xx)
                        if yl >= h - 1:
                            yl = yh = h - 1
                            yy = float(yl)
                        else:
                            yh = yl + 1
                        if xl >= w - 1:
                            xl = xh = w - 1
                            xx = float(xl)
                        else:
                            xh = xl + 1
                        ly, lx = yy - yl, xx - xl
                        acc = acc + ((1 - ly) * (1 - lx) * fmap[:, yl, xl] + (1 - ly) * lx * fmap[:, yl, xh]
                                     + ly * (1 - lx) * fmap[:, yh, xl] + ly * lx * fmap[:, yh, xh])
                result[r, :, ph, pw] = acc / count
    return result
