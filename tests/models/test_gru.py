"""The GRU over whole sequences: time segments over the running sequences compute what one fused call computes."""

from __future__ import annotations

import copy
import itertools

import pytest
import torch
from torch import nn

from k24_rllib.models.gru import gru_running, gru_sequence, plan_segments


def modelled_cost(segments, running, rows, call, step):
    return sum(call + (e - s) * (step + running[s] * rows) for s, e in segments)


@pytest.mark.parametrize("call, step", [(0.0, 0.0), (80.0, 30.0), (1e9, 30.0), (5.0, 1.0)])
def test_plan_is_the_cheapest_cover_of_the_sequence(call, step):
    """Segments are contiguous from 0 to T, start where a sequence ends, and cost no more than any other such
    cover (checked against every subset of the possible cuts)."""
    running = [7, 7, 5, 5, 5, 2, 2, 1, 1, 1]  # lengths 10, 7, 7, 5, 5, 5, 2
    segments = plan_segments(running, rows_per_sequence=3, call_cost=call, step_cost=step)
    assert segments[0][0] == 0 and segments[-1][1] == len(running)
    assert all(a[1] == b[0] for a, b in zip(segments, segments[1:]))
    cuts = [2, 5, 7]  # where a sequence ends
    assert all(s in [0, *cuts] for s, _ in segments)
    best = min(
        modelled_cost(list(zip([0, *chosen], [*chosen, len(running)])), running, 3, call, step)
        for k in range(len(cuts) + 1)
        for chosen in itertools.combinations(cuts, k)
    )
    assert modelled_cost(segments, running, 3, call, step) == pytest.approx(best)
    if call == 0.0:
        assert segments == [(0, 2), (2, 5), (5, 7), (7, 10)]  # free calls: a segment wherever a sequence ends
    if call == 1e9:
        assert segments == [(0, 10)]


def test_running_segments_compute_what_one_fused_call_computes():
    """Equal hiddens wherever a sequence runs, zeros where it has ended before a segment, and equal gradients
    for the inputs, the initial state and the GRU's weights."""
    torch.manual_seed(1)
    cell = nn.GRUCell(6, 8)
    reference = copy.deepcopy(cell)
    n, lengths = 2, torch.tensor([9, 6, 6, 3, 1])  # longest first
    running = [int((lengths > t).sum()) for t in range(9)]
    segments = plan_segments(running, n, call_cost=0.0, step_cost=0.0)
    assert len(segments) == 4
    x = torch.randn(n, 5, 9, 6, requires_grad=True)
    h0 = torch.randn(n, 5, 8, requires_grad=True)
    x_ref, h0_ref = x.detach().clone().requires_grad_(), h0.detach().clone().requires_grad_()
    valid = (torch.arange(9)[None] < lengths[:, None])[None, ..., None]  # [1, B, T, 1]

    out = gru_running(cell, x, h0, running, segments)
    expected = gru_sequence(reference, x_ref.reshape(n * 5, 9, 6), h0_ref.reshape(n * 5, 8)).reshape(n, 5, 9, 8)
    torch.testing.assert_close(out * valid, expected * valid)
    assert torch.equal(out[:, 4, 1:], torch.zeros_like(out[:, 4, 1:]))  # ended at 1, before segment 2 starts
    (out * valid).square().sum().backward()
    (expected * valid).square().sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad)
    torch.testing.assert_close(h0.grad, h0_ref.grad)
    for p, p_ref in zip(cell.parameters(), reference.parameters()):
        torch.testing.assert_close(p.grad, p_ref.grad)
