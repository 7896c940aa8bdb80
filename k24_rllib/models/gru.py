"""The agent's GRU over whole sequences: one fused call, or time segments over the sequences still running.

A train batch pads every episode to the longest one, and on CPU the GRU's cost follows the rows it runs times
the timesteps (a 3m batch of ~60 episodes of 12-25 steps with one truncated at 60 is two thirds padding). Run
in time segments, each over only the sequences still running at its start, the GRU computes the same outputs
on the real timesteps and skips most of the padding; each segment costs one more fused call, so segments are
cut where the saving outweighs that (``plan_segments``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# A fused CPU call's cost in row-timesteps (one row for one timestep) at hidden 64: a call (forward and backward)
# about 200, each timestep about 45 on top of its rows (fitted by benchmarks/gru_segments.py). They only decide
# where segments are cut, never what is computed.
CALL_COST, STEP_COST = 200.0, 45.0


def gru_sequence(cell: nn.GRUCell, x: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
    """``cell`` run over x [N, T, H_in] from h0 [N, H] in one fused call -> hiddens [N, T, H].

    Computes what a loop of ``cell`` steps computes (a test checks it), with the GRUCell's own parameters,
    so checkpoints keep the GRUCell layout. ``torch._VF.gru`` is the kernel ``nn.GRU`` itself calls.
    """
    params = [cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh]
    out, _ = torch._VF.gru(x, h0.unsqueeze(0), params, True, 1, 0.0, cell.training, False, True)
    return out


def plan_segments(
    running: Sequence[int], rows_per_sequence: int = 1, call_cost: float = CALL_COST, step_cost: float = STEP_COST
) -> list[tuple[int, int]]:
    """Time segments [(start, end)] covering 0..T that minimise the modelled cost, the sum over segments of
    ``call_cost + (end - start) * (step_cost + rows running at start)``.

    ``running[t]``: sequences still running at timestep t (non-increasing, as ``PackedSequence.batch_sizes``);
    each sequence is ``rows_per_sequence`` GRU rows (one per agent). Segments start only where a sequence ends.
    """
    t_max = len(running)
    points = np.array([0, *[t for t in range(1, t_max) if running[t] < running[t - 1]], t_max])
    rows = np.array([running[p] * rows_per_sequence for p in points[:-1]], dtype=float)
    best = np.zeros(len(points))  # best[j]: cheapest cover of 0..points[j]
    previous = np.zeros(len(points), dtype=int)
    for j in range(1, len(points)):
        costs = best[:j] + call_cost + (points[j] - points[:j]) * (step_cost + rows[:j])
        previous[j] = int(costs.argmin())
        best[j] = costs[previous[j]]
    segments, j = [], len(points) - 1
    while j > 0:
        segments.append((int(points[previous[j]]), int(points[j])))
        j = previous[j]
    return segments[::-1]


def gru_running(
    cell: nn.GRUCell, x: torch.Tensor, h0: torch.Tensor, running: Sequence[int], segments: list[tuple[int, int]]
) -> torch.Tensor:
    """``gru_sequence`` in time segments over x [n, B, T, H_in] from h0 [n, B, H] -> hiddens [n, B, T, H].

    The B sequences are sorted longest first and ``running[t]`` of them run at timestep t, so a segment runs
    the first ``running[start]`` of them (for each of the n agents) and the rest stay zero. Equal to
    ``gru_sequence`` wherever a sequence runs (a test checks it); past a sequence's end inside a segment the
    GRU goes on over the padding, as ``gru_sequence`` does everywhere.
    """
    n, b, _, hidden = *x.shape[:3], cell.hidden_size
    chunks = x.split([end - start for start, end in segments], dim=2)
    outs, h = [], h0
    for (start, end), chunk in zip(segments, chunks):
        r = running[start]
        out = gru_sequence(cell, chunk[:, :r].reshape(n * r, end - start, -1), h[:, :r].reshape(n * r, hidden))
        out = out.reshape(n, r, end - start, hidden)
        outs.append(F.pad(out, (0, 0, 0, 0, 0, b - r)))
        h = out[:, :, -1]
    return torch.cat(outs, dim=2)
