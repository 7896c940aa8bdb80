from math import comb

import pytest
import torch

from k24_rllib.sparsity import nm_patterns


def test_2_4_lexicographic():
    expected = [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    patterns = nm_patterns()
    assert patterns.dtype == torch.float32 and patterns.shape == (6, 4)
    assert [tuple(row.nonzero().flatten().tolist()) for row in patterns] == expected


def test_4_8_has_70_distinct_rows():
    patterns = nm_patterns(4, 8)
    assert patterns.shape == (comb(8, 4), 8)
    assert (patterns.sum(dim=1) == 4).all()
    assert len({tuple(r.tolist()) for r in patterns}) == 70


def test_rejects_n_not_below_m():
    with pytest.raises(ValueError):
        nm_patterns(4, 4)
