"""RoIAlign against a brute-force scalar reference written here (Python loops over every bin and sample)."""
import math
import random

import pytest
import torch

from partwise.ops import roi_align, roi_align_3d
from partwise.ops.roi_align import roi_align_loop


def reference_terms(rois, height, width, out, scale, sampling_ratio, aligned):
    """Every (roi, ph, pw, batch, y, x, weight) term of RoIAlign, by the textbook definition in scalar Python."""
    terms = []
    offset = 0.5 if aligned else 0.0
    for k, (b, x1, y1, x2, y2) in enumerate(rois):
        sx, sy = x1 * scale - offset, y1 * scale - offset
        rw, rh = x2 * scale - offset - sx, y2 * scale - offset - sy
        if not aligned:
            rw, rh = max(rw, 1.0), max(rh, 1.0)
        gh = sampling_ratio if sampling_ratio > 0 else math.ceil(rh / out)
        gw = sampling_ratio if sampling_ratio > 0 else math.ceil(rw / out)
        count = max(gh * gw, 1)
        for ph in range(out):
            for pw in range(out):
                for iy in range(max(gh, 0)):
                    for ix in range(max(gw, 0)):
                        y = sy + ph * rh / out + (iy + 0.5) * (rh / out) / gh
                        x = sx + pw * rw / out + (ix + 0.5) * (rw / out) / gw
                        if y < -1 or y > height or x < -1 or x > width:
                            continue
                        y, x = max(y, 0.0), max(x, 0.0)
                        y0, x0 = int(y), int(x)
                        if y0 >= height - 1:
                            y0 = y1_ = height - 1
                            y = float(y0)
                        else:
                            y1_ = y0 + 1
                        if x0 >= width - 1:
                            x0 = x1_ = width - 1
                            x = float(x0)
                        else:
                            x1_ = x0 + 1
                        ly, lx = y - y0, x - x0
                        for yy, xx, wgt in ((y0, x0, (1 - ly) * (1 - lx)), (y0, x1_, (1 - ly) * lx),
                                            (y1_, x0, ly * (1 - lx)), (y1_, x1_, ly * lx)):
                            terms.append((k, ph, pw, int(b), yy, xx, wgt / count))
    return terms


def reference_roi_align(feat, rois, out, scale, sampling_ratio, aligned):
    n, c, h, w = feat.shape
    f = feat.tolist()
    result = [[[[0.0] * out for _ in range(out)] for _ in range(c)] for _ in range(len(rois))]
    for k, ph, pw, b, y, x, wgt in reference_terms(rois.tolist(), h, w, out, scale, sampling_ratio, aligned):
        for ch in range(c):
            result[k][ch][ph][pw] += wgt * f[b][ch][y][x]
    return torch.tensor(result, dtype=torch.float64)


def reference_grad(feat_shape, rois, grad_out, out, scale, sampling_ratio, aligned):
    n, c, h, w = feat_shape
    grad = torch.zeros(feat_shape, dtype=torch.float64)
    for k, ph, pw, b, y, x, wgt in reference_terms(rois.tolist(), h, w, out, scale, sampling_ratio, aligned):
        grad[b, :, y, x] += wgt * grad_out[k, :, ph, pw]
    return grad


def random_rois(rng, n_images, count, height, width, scale):
    """Boxes in image pixels; some partly or fully outside the map, some tiny, some degenerate."""
    ih, iw = height / scale, width / scale
    rois = []
    for _ in range(count):
        x1 = rng.uniform(-0.5 * iw, 1.2 * iw)
        y1 = rng.uniform(-0.5 * ih, 1.2 * ih)
        rois.append([rng.randrange(n_images), x1, y1, x1 + rng.uniform(0, 0.9 * iw), y1 + rng.uniform(0, 0.9 * ih)])
    rois.append([0, 3.0, 4.0, 3.0, 4.0])  # zero size
    rois.append([n_images - 1, -iw, -ih, 2 * iw, 2 * ih])  # covers and exceeds the map
    rois.append([0, 2.0, 2.0, 2.5, 9.0])  # thin
    return torch.tensor(rois, dtype=torch.float64)


@pytest.mark.parametrize("aligned", [True, False])
@pytest.mark.parametrize("sampling_ratio", [0, 1, 2, 3])
def test_roi_align_matches_brute_force(aligned, sampling_ratio):
    rng = random.Random(sampling_ratio * 2 + aligned)
    torch.manual_seed(sampling_ratio)
    scale = 0.25
    feat = torch.randn(2, 3, 7, 9, dtype=torch.float64)
    rois = random_rois(rng, 2, 12, 7, 9, scale)
    want = reference_roi_align(feat, rois, 3, scale, sampling_ratio, aligned)
    got = roi_align(feat, rois, 3, scale, sampling_ratio, aligned)
    torch.testing.assert_close(got, want, atol=1e-10, rtol=0)
    got32 = roi_align(feat.float(), rois.float(), 3, scale, sampling_ratio, aligned)
    torch.testing.assert_close(got32.double(), want, atol=1e-5, rtol=0)
    torch.testing.assert_close(roi_align_loop(feat, rois, 3, scale, sampling_ratio, aligned), want,
                               atol=1e-10, rtol=0)


def test_roi_align_known_values():
    # A linear ramp f(y, x) = 10*y + x is reproduced exactly by bilinear sampling inside the map, so a bin's
    # average is the ramp at the bin centre. Aligned RoI [0, 0, 4, 4] at scale 1 covers feature coords
    # [-0.5, 3.5]; 2x2 bins of size 2 have centres 0.5 and 2.5.
    ys, xs = torch.meshgrid(torch.arange(6.0), torch.arange(6.0), indexing="ij")
    feat = (10 * ys + xs)[None, None]
    out = roi_align(feat, torch.tensor([[0, 0.0, 0.0, 4.0, 4.0]]), 2, 1.0, 0, True)[0, 0]
    # Adaptive grid = ceil(4 / 2) = 2: bin 0 samples at 0.0 and 1.0 along each axis (mean 0.5), bin 1 at 2 and 3.
    torch.testing.assert_close(out, torch.tensor([[5.5, 7.5], [25.5, 27.5]]))
    # Not aligned: coords [0, 4], samples at 0.5, 1.5 (mean 1) and 2.5, 3.5 (mean 3).
    out = roi_align(feat, torch.tensor([[0, 0.0, 0.0, 4.0, 4.0]]), 2, 1.0, 0, False)[0, 0]
    torch.testing.assert_close(out, torch.tensor([[11.0, 13.0], [31.0, 33.0]]))


@pytest.mark.parametrize("aligned", [True, False])
def test_roi_align_gradients(aligned):
    rng = random.Random(7)
    torch.manual_seed(7)
    feat = torch.randn(2, 2, 5, 6, dtype=torch.float64, requires_grad=True)
    rois = random_rois(rng, 2, 5, 5, 6, 0.5)
    assert torch.autograd.gradcheck(lambda f: roi_align(f, rois, 2, 0.5, 0, aligned), (feat,))
    out = roi_align(feat, rois, 2, 0.5, 2, aligned)
    grad_out = torch.randn_like(out)
    (grad,) = torch.autograd.grad(out, feat, grad_out)
    torch.testing.assert_close(grad, reference_grad(feat.shape, rois, grad_out, 2, 0.5, 2, aligned),
                               atol=1e-10, rtol=0)


def test_roi_align_3d_is_per_time_step():
    torch.manual_seed(3)
    feat = torch.randn(2, 3, 4, 8, 10)
    rois = torch.tensor([[1, 4.0, 2.0, 60.0, 50.0], [0, -10.0, 8.0, 30.0, 200.0]])
    got = roi_align_3d(feat, rois, (3, 4), 1 / 8, 0, True)
    assert got.shape == (2, 3, 4, 3, 4)
    for t in range(4):
        torch.testing.assert_close(got[:, :, t], roi_align(feat[:, :, t], rois, (3, 4), 1 / 8, 0, True))


def test_roi_align_empty_and_bad_rois():
    feat = torch.randn(1, 2, 4, 4)
    assert roi_align(feat, torch.zeros(0, 5), 2).shape == (0, 2, 2, 2)
    with pytest.raises(ValueError, match="batch indices"):
        roi_align(feat, torch.tensor([[1, 0.0, 0.0, 2.0, 2.0]]), 2)
    with pytest.raises(ValueError, match=r"\(K, 5\)"):
        roi_align(feat, torch.zeros(3, 4), 2)
