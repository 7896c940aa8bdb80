"""What every masked layer shares: one weight per mask, a batched apply over the agent axis, eval-mode cache.

Layout. A recurrent agent's batch is ``[S, R, T, in]``: S slots (agents), R rows (sequences or envs), T timesteps.
When every slot has its own mask (one mask per agent, ``mask_ids=None``), slot s uses mask s and a layer is one
batched matmul over the slot axis, with no work spent on other masks. When masks are per unit type
(``mask_ids`` given), every mask's output is computed and each row picks its own: cheap for the handful of unit
types a team has.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn


class MaskedLinearBase(nn.Module):
    """A linear layer whose shared weight is seen through one of ``n_masks`` masks.

    Subclasses say how the per-mask weights are made: ``sample_weights(draws)`` (a training forward: may be
    stochastic, carries gradient) and ``masked_weights()`` (deterministic: acting and export). In eval mode the
    deterministic weights are cached, so acting does not rebuild masks each env step; the cache is keyed on the
    storage and in-place version counters of the tensors named in ``cache_sources``, so optimiser steps, resets and
    ``load_state_dict`` (all in-place) invalidate it automatically, while train/eval switches (RLlib makes two
    around every acting forward) keep it.
    """

    # parameters/buffers the deterministic weights read; a layer may extend it per instance
    cache_sources: tuple[str, ...] = ("weight",)
    # per-mask parameters, mask axis first: what tells one mask from another (the rest is shared)
    own_parameters: tuple[str, ...] = ()

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
        self._cache: tuple[torch.Tensor, torch.Tensor, torch.Tensor | None] | None = None
        self._cache_key: list[tuple[int, int]] | None = None
        self._slots: tuple[tuple[dict[str, Any], str], ...] | None = None
        self.observe_inputs = True  # False for a target copy: it samples masks but must not move the EMA

    def _reset_shared_parameters(self) -> None:
        """nn.Linear's initialisation, so a masked layer starts like the dense layer it replaces."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1.0 / math.sqrt(self.in_features)
            nn.init.uniform_(self.bias, -bound, bound)

    def _observe(
        self, x: torch.Tensor, valid: torch.Tensor | None = None, step_sizes: torch.Tensor | None = None
    ) -> None:
        """Training-time input statistics of x [S, R, T, in] (K-2:4's EMA; ``forward_slots`` says what ``valid`` and
        ``step_sizes`` mean). Default: none, so layers that keep none spend nothing on them."""

    def sample_weights(self, draws: int) -> torch.Tensor:
        """Per-mask weights for a training forward, [D, n_masks, out, in] with D in {1, draws}.

        ``draws`` independent samples are asked for (one per timestep, or 1 for the whole sequence); a layer
        whose training weights are deterministic returns one copy, which broadcasts. Default: deterministic.
        """
        return self.masked_weights().unsqueeze(0)

    def masked_weights(self) -> torch.Tensor:
        """Deterministic per-mask effective weights [n_masks, out, in_features]."""
        raise NotImplementedError

    def set_temperature(self, t: float) -> None:
        """Layers without a temperature ignore it, so callers can set it on any masked layer."""

    def set_pruned_scale(self, scale: float) -> None:
        """Layers whose pruned weights are always zero ignore it, so callers can set it on any masked layer."""

    def invalidate_cache(self) -> None:
        """Drop the eval-mode weight cache (only needed after out-of-band edits, e.g. ``.data`` swaps)."""
        self._cache = None
        self._cache_key = None

    def _cache_slots(self) -> tuple[tuple[dict[str, Any], str], ...]:
        """(the module's own parameter or buffer dict, name) of every ``cache_sources`` tensor: read straight from
        those dicts, the current tensors cost a dict lookup each instead of ``nn.Module.__getattr__`` (a third
        of K-2:4's acting overhead at one env). The dicts live as long as the module, so this is built once."""
        if self._slots is None:
            self._slots = tuple((self._parameters if name in self._parameters else self._buffers, name)
                                for name in self.cache_sources)
        return self._slots

    def _source_key(self) -> list[tuple[int, int]]:
        """Storage and in-place version of every ``cache_sources`` tensor: an unchanged key, unchanged sources."""
        return [(table[name].data_ptr(), table[name]._version) for table, name in self._cache_slots()]

    def _eval_weights(self) -> torch.Tensor:
        """Deterministic weights [1, n_masks, out, in]: cached without autograd, recomputed with it."""
        if torch.is_grad_enabled():
            return self.masked_weights().unsqueeze(0)
        return self._eval_cache()[0]

    def _eval_cache(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(deterministic weights [1, n_masks, out, in]; the same as [n_masks, in, out] and the bias as a
        [n_masks, 1, out] view, for acting's batched matmul), rebuilt only when a source tensor changed. The bias
        view follows the bias's in-place updates by itself."""
        key = self._source_key()
        if self._cache is None or key != self._cache_key:
            weights = self.masked_weights().detach()
            bias = self._parameters["bias"]
            bias_view = None if bias is None else bias.detach().expand(self.n_masks, 1, -1)
            self._cache = (weights.unsqueeze(0), weights.transpose(1, 2).contiguous(), bias_view)
            self._cache_key = key
        return self._cache

    def forward_slots(
        self,
        x: torch.Tensor,
        mask_ids: torch.Tensor | None = None,
        valid: torch.Tensor | None = None,
        per_step: bool = False,
        step_sizes: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x [S, R, T, in] -> [S, R, T, out].

        ``mask_ids`` [S, R, T] picks each entry's mask; None means slot s uses mask s (S == n_masks).
        In training mode, ``per_step`` draws an independent mask sample for every timestep, else one for the
        whole call. For the input statistics, ``valid`` [R, T] marks real (non-padding) timesteps; for packed
        sequences (T = 1, rows grouped by timestep) ``step_sizes`` [T'] says how many rows each timestep has.
        """
        if not self.training:
            if mask_ids is None and not torch.is_grad_enabled():  # acting: the leanest path
                return self._act(x)
            return apply_masks(x, self._eval_weights(), self.bias, mask_ids)
        if self.observe_inputs:
            self._observe(x, valid, step_sizes)
        return apply_masks(x, self.sample_weights(x.shape[2] if per_step else 1), self.bias, mask_ids)

    def _act(self, x: torch.Tensor) -> torch.Tensor:
        """``apply_masks`` for slot s = mask s with the cached weights, as one fused bias + batched matmul."""
        s, r, t, n_in = x.shape
        rows = x.reshape(s, r * t, n_in)
        _, wt, bias = self._eval_cache()
        y = torch.bmm(rows, wt) if bias is None else torch.baddbmm(bias, rows, wt)
        return y.reshape(s, r, t, -1)

    def forward(self, x: torch.Tensor, mask_ids: torch.Tensor) -> torch.Tensor:
        """x [..., in_features], mask_ids [...] (broadcastable) -> [..., out_features]; row r uses mask_ids[r]."""
        lead = x.shape[:-1]
        rows = x.reshape(1, -1, 1, self.in_features)
        ids = torch.broadcast_to(mask_ids, lead).reshape(1, -1, 1).long()
        return self.forward_slots(rows, ids).reshape(*lead, self.out_features)


def apply_masks(
    x: torch.Tensor, weights: torch.Tensor, bias: torch.Tensor | None, mask_ids: torch.Tensor | None
) -> torch.Tensor:
    """y[s, r, t] = x[s, r, t] @ weights[d(t), mask(s, r, t)].T + bias, for x [S, R, T, in], weights [D, K, out, in].

    D is 1 (one weight per mask) or T (one per timestep). Without ``mask_ids`` slot s uses mask s: one batched
    matmul over slots (and timesteps when D = T). With ``mask_ids`` [S, R, T] every mask's output is computed
    and each entry takes its own (memory K x entries x out, no host sync).
    """
    s, r, t, n_in = x.shape
    d, _, n_out, _ = weights.shape
    wt = weights.transpose(-1, -2)  # [D, K, in, out]
    if mask_ids is None:
        if d == 1:
            y = torch.matmul(x.reshape(s, r * t, n_in), wt[0]).reshape(s, r, t, n_out)
        else:  # [S, T, R, in] @ [S, T, in, out]
            y = torch.matmul(x.transpose(1, 2), wt.transpose(0, 1)).transpose(1, 2)
    else:
        rows = x.permute(2, 0, 1, 3).reshape(d, -1, n_in)  # [D, S*R*T/D, in], timestep-major when D = T
        ids = mask_ids.permute(2, 0, 1).reshape(d, 1, -1, 1)
        every = torch.matmul(rows.unsqueeze(1), wt)  # [D, K, rows, out]
        picked = every.gather(1, ids.expand(-1, 1, -1, n_out)).squeeze(1)  # [D, rows, out]
        y = picked.reshape(t, s, r, n_out).permute(1, 2, 0, 3)
    return y if bias is None else y + bias
