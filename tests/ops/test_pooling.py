import pytest
import torch

from partwise.ops import temporal_pool


def test_temporal_pool():
    x = torch.arange(2 * 3 * 4, dtype=torch.float32).view(1, 2, 3, 2, 2)
    torch.testing.assert_close(temporal_pool(x, "avg"), x[:, :, 1:2])  # arithmetic sequence: mean = middle
    torch.testing.assert_close(temporal_pool(x, "max", keepdim=False), x[:, :, 2])


def test_temporal_pool_rejects_bad_input():
    with pytest.raises(ValueError, match="avg"):
        temporal_pool(torch.zeros(1, 1, 2, 1, 1), "median")
    with pytest.raises(ValueError, match="N, C, T, H, W"):
        temporal_pool(torch.zeros(1, 2, 3))
