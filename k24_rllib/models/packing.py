"""Real timesteps of padded sequences, packed time-major by index: one gather to pack, one scatter to unpack.

The layout is ``PackedSequence.data``'s (timestep by timestep, longest sequence first), but moving data in and
out of it costs one indexed copy each way, forward and backward. torch's ``pad_packed_sequence`` copies one
block per distinct sequence length instead, and autograd clones the whole gradient for every block: on a
3m-shaped train batch that took 15-18% of a profiled learner update.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class PackedSteps:
    """Where the real timesteps of B sequences lie (``valid`` [B, T], a prefix per sequence)."""

    sizes: torch.Tensor  # [T'] (CPU): sequences running at each timestep, T' the longest length
    order: torch.Tensor  # [B]: the sequences, longest first (ties in their own order)
    flat: torch.Tensor  # [N]: each real timestep's row in [B * T], packed order
    flat_sorted: torch.Tensor  # [N]: the same in [B * T'] with the sequences longest first
    shape: tuple[int, int, int]  # (B, T, T')

    @classmethod
    def of(cls, valid: torch.Tensor) -> PackedSteps:
        b, t = valid.shape
        order = torch.sort(valid.sum(dim=1), descending=True, stable=True).indices
        running = valid[order].t()  # [T, B], sequences longest first
        time, rank = running.nonzero(as_tuple=True)  # timestep by timestep, longest first within each
        sizes = running.sum(dim=1).cpu()
        longest = int((sizes > 0).sum())
        return cls(sizes[:longest], order, order[rank] * t + time, rank * longest + time, (b, t, longest))

    def pack(self, x: torch.Tensor, longest_first: bool = False) -> torch.Tensor:
        """[B, T, ...] (or [B, T', ...] with the sequences longest first) -> the real timesteps [N, ...]."""
        return x.flatten(0, 1).index_select(0, self.flat_sorted if longest_first else self.flat)

    def unpack(self, data: torch.Tensor, longest_first: bool = False) -> torch.Tensor:
        """[N, ...] -> [B, T, ...] zero-padded (or [B, T', ...] with the sequences longest first)."""
        b, t, longest = self.shape
        steps, index = (longest, self.flat_sorted) if longest_first else (t, self.flat)
        padded = data.new_zeros(b * steps, *data.shape[1:]).index_copy(0, index, data)
        return padded.unflatten(0, (b, steps))
