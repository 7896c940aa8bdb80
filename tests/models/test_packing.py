"""Packing by index keeps torch's packed layout and moves gradients as torch's packing does."""

from __future__ import annotations

import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from k24_rllib.models.packing import PackedSteps

LENGTHS = torch.tensor([3, 5, 1, 5, 2])


def padded_batch(t: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    valid = torch.arange(t)[None] < LENGTHS[:, None]
    return torch.randn(len(LENGTHS), t, 4) * valid[..., None], valid


def test_the_layout_is_torchs_packed_layout():
    x, valid = padded_batch()
    steps = PackedSteps.of(valid)
    reference = pack_padded_sequence(x, LENGTHS, batch_first=True, enforce_sorted=False)
    assert torch.equal(steps.sizes, reference.batch_sizes)
    assert torch.equal(LENGTHS[steps.order], torch.tensor([5, 5, 3, 2, 1]))
    # within a timestep, sequences of equal length may come in either order; the multiset per timestep is torch's
    packed, start = steps.pack(x), 0
    for size in steps.sizes.tolist():
        mine, theirs = packed[start : start + size], reference.data[start : start + size]
        assert torch.equal(mine.sort(dim=0).values, theirs.sort(dim=0).values)
        start += size
    assert start == int(LENGTHS.sum())


def test_unpack_inverts_pack_with_zero_padding_and_gradients_as_torchs():
    x, valid = padded_batch(t=7)  # one all-padding timestep at the end
    steps = PackedSteps.of(valid)
    data = steps.pack(x).requires_grad_()
    torch.testing.assert_close(steps.unpack(data), x)
    longest_first = steps.unpack(data, longest_first=True)
    assert longest_first.shape == (5, 5, 4)  # T' = the longest length
    torch.testing.assert_close(longest_first, x[steps.order, :5])
    torch.testing.assert_close(steps.pack(longest_first, longest_first=True), data)

    weights = torch.randn(5, 7, 4)
    (steps.unpack(data) * weights).sum().backward()
    torch.testing.assert_close(data.grad, steps.pack(weights))  # each real timestep gets its own gradient
    reference = pack_padded_sequence(x, LENGTHS, batch_first=True, enforce_sorted=False)
    reference_data = reference.data.clone().requires_grad_()
    padded, _ = pad_packed_sequence(reference._replace(data=reference_data), batch_first=True, total_length=7)
    (padded * weights).sum().backward()
    assert torch.equal(data.grad.sum(dim=0), reference_data.grad.sum(dim=0))


def test_sequences_without_real_timesteps_stay_zero():
    valid = torch.arange(4)[None] < torch.tensor([2, 0, 3])[:, None]
    steps = PackedSteps.of(valid)
    assert steps.sizes.tolist() == [2, 2, 1]
    out = steps.unpack(torch.ones(5, 2))
    assert torch.equal(out.sum(dim=(1, 2)), torch.tensor([4.0, 0.0, 6.0]))
