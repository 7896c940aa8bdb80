"""N:M sparsity patterns: which n of every m consecutive weights a group keeps."""

from __future__ import annotations

from itertools import combinations

import torch


def nm_patterns(n: int = 2, m: int = 4) -> torch.Tensor:
    """All C(m, n) keep-patterns as float 0/1 rows of length m.

    Rows are in lexicographic order of the kept indices ((0,1), (0,2), (0,3), (1,2), (1,3), (2,3) for 2:4), so
    ``pattern_k_prob`` metrics mean the same pattern in every run.
    """
    if not 0 < n < m:
        raise ValueError(f"need 0 < n < m, got n={n}, m={m}")
    kept = list(combinations(range(m), n))
    patterns = torch.zeros(len(kept), m)
    for row, idx in enumerate(kept):
        patterns[row, list(idx)] = 1.0
    return patterns
