"""partwise's small linear sum assignment gives scipy's pairs, ties included."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment as scipy_lsa

from partwise.infer.assignment import linear_sum_assignment


@pytest.mark.parametrize("shape", [(1, 1), (3, 3), (5, 2), (2, 7), (9, 9), (12, 8)])
def test_same_pairs_as_scipy_on_random_and_tied_matrices(shape):
    rng = np.random.default_rng(sum(shape))
    for trial in range(60):
        cost = rng.random(shape)
        if trial % 3 == 1:  # ties: few distinct values, as IoU matrices with zeros have
            cost = np.round(cost * 2) / 2
        elif trial % 3 == 2:
            cost = np.zeros(shape)
        for maximize in (False, True):
            ours = linear_sum_assignment(cost, maximize=maximize)
            theirs = scipy_lsa(cost, maximize=maximize)
            assert [a.tolist() for a in ours] == [a.tolist() for a in theirs], (cost, maximize)


def test_empty_and_invalid():
    rows, cols = linear_sum_assignment(np.zeros((0, 3)))
    assert rows.shape == cols.shape == (0,)
    with pytest.raises(ValueError):
        linear_sum_assignment(np.array([[np.nan, 1.0]]))
