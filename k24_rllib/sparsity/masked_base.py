"""What every masked layer shares: one weight per mask, rows routed by mask id, eval-mode weight cache."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import chain

import torch
from torch import nn


class MaskedLinearBase(nn.Module):
    """A linear layer whose shared weight is seen through one of ``n_masks`` masks per input row.

    Subclasses say how the per-mask weights are made: ``_sample_weights()`` (training forward, may be stochastic,
    carries gradient) and ``masked_weights()`` (deterministic, what acting and export use). In eval mode the
    deterministic weights are cached, so acting does not rebuild masks each env step; the cache is keyed on the
    storage and in-place version counters of every parameter and buffer, so optimiser steps, resets and
    ``load_state_dict`` (all in-place) invalidate it automatically.
    """

    def __init__(self, in_features: int, out_features: int, n_masks: int, bias: bool) -> None:
        super().__init__()
        if min(in_features, out_features, n_masks) < 1:
            raise ValueError(
                f"in_features, out_features and n_masks must be >= 1, got {in_features}, {out_features}, {n_masks}"
            )
        self.in_features = in_features
        self.out_features = out_features
        self.n_masks = n_masks
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.empty(out_features)) if bias else None
        self._reset_shared_parameters()
        self._cache: torch.Tensor | None = None
        self._cache_key: tuple[tuple[int, int], ...] | None = None
        self._held: torch.Tensor | None = None  # set inside ``unroll()``
        self.observe_inputs = True  # False for a target copy: it samples masks but must not move the EMA

    def _reset_shared_parameters(self) -> None:
        """nn.Linear's initialisation, so a masked layer starts like the dense layer it replaces."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1.0 / math.sqrt(self.in_features)
            nn.init.uniform_(self.bias, -bound, bound)

    def _observe(self, rows: torch.Tensor) -> None:
        """Training-time statistics of the input rows (K-2:4's activation EMA); none by default."""

    def _sample_weights(self) -> torch.Tensor:
        """Per-mask effective weights [n_masks, out, in] for a training forward, with gradient.

        Default: the deterministic weights (reused within ``unroll()``); K24Linear draws a Gumbel sample.
        """
        return self._held if self._held is not None else self.masked_weights()

    def _unroll_state(self) -> torch.Tensor | None:
        """What a training unroll may compute once and reuse at every step (see ``unroll``); None: nothing."""
        return self.masked_weights()

    @contextmanager
    def unroll(self) -> Iterator[None]:
        """Training forwards inside the block reuse ``_unroll_state()``, computed once on entry.

        A recurrent unroll calls the layer once per timestep and the parameters do not change within it, so
        what derives from them alone is computed once: Kaleidoscope's masked weights, K-2:4's pattern logits.
        K-2:4 still draws a fresh Gumbel sample at every step, as pymarl's per-step agent forward does.
        """
        self._held = self._unroll_state() if self.training else None
        try:
            yield
        finally:
            self._held = None

    def masked_weights(self) -> torch.Tensor:
        """Deterministic per-mask effective weights [n_masks, out, in_features]."""
        raise NotImplementedError

    def set_temperature(self, t: float) -> None:
        """Layers without a temperature ignore it, so callers can set it on any masked layer."""

    def invalidate_cache(self) -> None:
        """Drop the eval-mode weight cache (only needed after out-of-band edits, e.g. ``.data`` swaps)."""
        self._cache = None
        self._cache_key = None

    def train(self, mode: bool = True) -> MaskedLinearBase:
        self.invalidate_cache()
        return super().train(mode)

    def _eval_weights(self) -> torch.Tensor:
        """Cached deterministic weights; recomputed with gradient when autograd is on (nothing stale to reuse)."""
        if torch.is_grad_enabled():
            return self.masked_weights()
        key = tuple((t.data_ptr(), t._version) for t in chain(self.parameters(), self.buffers()))
        if self._cache is None or key != self._cache_key:
            self._cache = self.masked_weights().detach()
            self._cache_key = key
        return self._cache

    def forward(self, x: torch.Tensor, mask_ids: torch.Tensor) -> torch.Tensor:
        """x [..., in_features], mask_ids [...] (broadcastable) -> [..., out_features]; row r uses mask mask_ids[r]."""
        lead = x.shape[:-1]
        rows = x.reshape(-1, self.in_features)
        ids = torch.broadcast_to(mask_ids, lead).reshape(-1).long()
        if self.training:
            if self.observe_inputs:
                self._observe(rows)
            weights = self._sample_weights()
        else:
            weights = self._eval_weights()
        return route_rows(rows, ids, weights, self.bias).reshape(*lead, self.out_features)


def route_rows(
    rows: torch.Tensor, ids: torch.Tensor, weights: torch.Tensor, bias: torch.Tensor | None
) -> torch.Tensor:
    """y[r] = rows[r] @ weights[ids[r]].T + bias.

    Computes every mask's output and gathers: one batched matmul, no host sync, and cheap for the handful of
    masks (agents or unit types) a team has. Memory is n_masks x rows x out.
    """
    all_out = torch.matmul(rows.unsqueeze(0), weights.transpose(1, 2))  # [n_masks, rows, out]
    out = all_out[ids, torch.arange(rows.shape[0], device=rows.device)]
    return out if bias is None else out + bias
