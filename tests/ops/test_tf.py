"""TF op semantics on small inputs, against values computed by hand from TF's definitions."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from partwise.ops import tf as tfops


def test_same_padding_puts_the_extra_pixel_after():
    assert tfops.same_padding(8, 3, 2) == (0, 1)
    assert tfops.same_padding(7, 3, 2) == (1, 1)
    assert tfops.same_padding(8, 3, 1) == (1, 1)
    assert tfops.same_padding(8, 1, 2) == (0, 0)
    assert tfops.same_padding(6, 5, 1) == (2, 2)
    assert tfops.same_padding(6, 3, 1, dilation=2) == (2, 2)


def test_conv2d_nhwc_with_explicit_padding_list():
    x = torch.arange(9, dtype=torch.float32).reshape(1, 3, 3, 1)
    w = tfops.tf_filter_to_torch(torch.ones(2, 2, 1, 1))
    # EXPLICIT: [[0,0],[top,bottom],[left,right],[0,0]] = one row above, one column right
    y = tfops.conv2d(x, w, padding=[0, 0, 1, 0, 0, 1, 0, 0])
    img = np.pad(np.arange(9.0).reshape(3, 3), ((1, 0), (0, 1)))
    want = np.array([[img[r:r + 2, c:c + 2].sum() for c in range(3)] for r in range(3)])
    np.testing.assert_allclose(y[0, :, :, 0].numpy(), want)


def test_resize_bilinear_legacy_rule():
    # src = dst * in / out: rows 0, 2/3, 4/3 of a 2-row image 2|4 -> 2, 2 + 2 * 2/3, 4 (row 1 is the last)
    x = torch.tensor([2.0, 2.0, 4.0, 4.0]).reshape(1, 2, 2, 1)
    y = tfops.resize_bilinear(x, (3, 3))
    np.testing.assert_allclose(y.reshape(-1).numpy(), [2, 2, 2, 10 / 3, 10 / 3, 10 / 3, 4, 4, 4], rtol=1e-6)
    y = tfops.resize_bilinear(x, (3, 3), align_corners=True)
    np.testing.assert_allclose(y.reshape(-1).numpy(), [2, 2, 2, 3, 3, 3, 4, 4, 4])


def test_resize_bilinear_half_pixel_equals_torch_align_corners_false():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 5, 7, 3, generator=g)
    y = tfops.resize_bilinear(x, (10, 14), half_pixel_centers=True)
    t = F.interpolate(x.permute(0, 3, 1, 2), size=(10, 14), mode="bilinear", align_corners=False)
    np.testing.assert_allclose(y.numpy(), t.permute(0, 2, 3, 1).numpy(), atol=1e-6)


def test_resize_bilinear_is_float64_then_rounded_once():
    # 1 -> 2 * 1/3 of the way to 2 in float64 then float32: identical to numpy's float64 then astype
    x = torch.tensor([1.0, 2.0]).reshape(1, 1, 2, 1)
    y = tfops.resize_bilinear(x, (1, 3))
    want = np.array([1.0, 1.0 + (2.0 - 1.0) * (2 / 3), 2.0]).astype(np.float32)
    np.testing.assert_array_equal(y.reshape(-1).numpy(), want)


def test_top_k_ties_go_to_the_lower_index():
    values, indices = tfops.top_k(torch.tensor([[1.0, 3.0, 3.0, 2.0, 3.0]]), 3)
    assert values.tolist() == [[3.0, 3.0, 3.0]]
    assert indices.tolist() == [[1, 2, 4]] and indices.dtype == torch.int32



def test_top_k_of_a_heat_map_sized_axis_with_many_ties_keeps_tf_order():
    """Long axes (CenterNet's 1.3M scores) skip the full sort: the result must still be the k largest, equal values
    in index order -- here scores rounded to 0.01, so the 100th value is shared by ~13,000 elements."""
    generator = torch.Generator().manual_seed(0)
    x = torch.round(torch.rand(2, 1_310_720, generator=generator) * 100) / 100
    x[1, 5] = x[1, 700_000] = 2.0  # a tie at the top
    values, indices = tfops.top_k(x, 100)
    assert values.shape == (2, 100) and indices.dtype == torch.int32
    for row, vals, idx in zip(x, values, indices):
        kth = vals[-1]
        assert torch.equal(row[idx.long()], vals)
        assert (vals[:-1] >= vals[1:]).all()
        assert int((row > kth).sum()) < 100  # every larger value is in, and the tied ones are the first by index
        tied = torch.nonzero(row == kth).squeeze(1)[: 100 - int((row > kth).sum())]
        assert torch.equal(idx[vals == kth].long(), tied)
    assert indices[1, :2].tolist() == [5, 700_000]

def test_select_with_vector_condition_picks_rows():
    a, b = torch.ones(3, 2), torch.zeros(3, 2)
    out = tfops.select(torch.tensor([True, False, True]), a, b)
    assert out.tolist() == [[1, 1], [0, 0], [1, 1]]
    out = tfops.select(torch.tensor([[True, False]] * 3), a, b)
    assert out.tolist() == [[1, 0]] * 3


def test_gather_nd_and_gather():
    params = torch.arange(24).reshape(2, 3, 4)
    assert tfops.gather_nd(params, torch.tensor([[1, 2], [0, 0]], dtype=torch.int32)).tolist() == \
        [[20, 21, 22, 23], [0, 1, 2, 3]]
    assert tfops.gather_nd(params, torch.tensor([[1, 2, 3]])).tolist() == [23]
    out = tfops.gather(params, torch.tensor([[3, 0]]), axis=2)
    assert out.shape == (2, 3, 1, 2) and out[1, 2, 0].tolist() == [23, 20]


def test_strided_slice_masks():
    x = torch.arange(24).reshape(2, 3, 4)
    # x[1, :, ::2] : shrink axis 0 (bit 0), begin/end mask on axis 1 (bit 1)
    out = tfops.strided_slice(x, [1, 0, 0], [2, 0, 4], [1, 1, 2], begin_mask=2, end_mask=2, shrink_axis_mask=1)
    assert out.tolist() == x[1, :, ::2].tolist()
    # x[..., 1:3] with an ellipsis, then a new axis: x[..., 1:3, None]
    out = tfops.strided_slice(x, [0, 1, 0], [0, 3, 0], [1, 1, 1], ellipsis_mask=1, new_axis_mask=4)
    assert out.shape == (2, 3, 2, 1) and out[..., 0].tolist() == x[..., 1:3].tolist()
    # negative stride walks backwards: x[:, ::-1]
    out = tfops.strided_slice(x, [0, -1], [0, -4], [1, -1], begin_mask=1, end_mask=1)
    assert out.tolist() == np.asarray(x)[:, ::-1].tolist()
    # fewer spec entries than axes: the rest are full
    assert tfops.strided_slice(x, [1], [2], [1]).tolist() == x[1:2].tolist()
    with pytest.raises(IndexError):
        tfops.strided_slice(x, [5], [6], [1], shrink_axis_mask=1)


def test_max_pool_same_padding_never_wins():
    x = -torch.arange(1, 17, dtype=torch.float32).reshape(1, 4, 4, 1)   # all negative: zero padding would win
    y = tfops.max_pool(x, (3, 3), (2, 2), "SAME")
    # windows rows/cols {0,1,2} and {2,3} (pad after): maxima of the top-left elements
    assert y[0, :, :, 0].tolist() == [[-1.0, -3.0], [-9.0, -11.0]]
