"""Diversity losses (pluggable: subclass ``DiversityLoss``) and Kaleidoscope's adaptive coefficient."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import nn


def mask_pairs(n_masks: int, device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Index vectors (i, j) of every unordered pair i < j of masks."""
    pairs = torch.triu_indices(n_masks, n_masks, offset=1, device=device)
    return pairs[0], pairs[1]


def pairwise_overlap(probs: torch.Tensor) -> torch.Tensor:
    """Probability that masks i and j pick the same pattern: [n_pairs, out, groups] from probs [n, out, groups, P]."""
    i, j = mask_pairs(probs.shape[0], probs.device)
    return (probs[i] * probs[j]).sum(dim=-1)


def mean_pairwise_overlap(probs: torch.Tensor) -> torch.Tensor:
    """``pairwise_overlap(probs).mean()`` (0 for a single mask) without forming the pairs: for every group,
    sum_{i<j} pi_i . pi_j = (|sum_i pi_i|^2 - sum_i |pi_i|^2) / 2, a few passes over probs instead of two
    gathers per pair (whose backward scatters dominated the diversity loss's cost)."""
    n = probs.shape[0]
    if n < 2:
        return probs.sum() * 0.0
    total = probs.sum(dim=0)
    pair_sum = ((total * total).sum() - (probs * probs).sum()) / 2
    return pair_sum / (n * (n - 1) // 2 * probs[0, ..., 0].numel())


class DiversityLoss(nn.Module):
    """Base: ``forward(layers, depths)`` -> scalar combining ``layer_loss`` over layers with per-layer weights.

    Subclass and override ``layer_loss`` (or ``forward`` itself) to plug in another notion of diversity; the
    agent exposes its loss as the attribute ``diversity``. Lower must mean more diverse (it is minimised).
    """

    normalise: ClassVar[bool] = False  # True: weighted mean over layers; False: weighted sum

    def __init__(self, layer_weights: Sequence[float] | None = None) -> None:
        super().__init__()
        self.layer_weights = None if layer_weights is None else tuple(float(w) for w in layer_weights)

    def default_weight(self, depth: int) -> float:
        """Weight of the layer at ``depth`` in the network (fc1 = 0) when none were given."""
        return 1.0

    def layer_loss(self, layer: nn.Module) -> torch.Tensor:
        """Scalar diversity loss of one masked layer."""
        raise NotImplementedError

    def forward(self, layers: Sequence[nn.Module], depths: Sequence[int] | None = None) -> torch.Tensor:
        """``depths``: each layer's position in the network (fc1 = 0; default 0, 1, ...), so that default weights
        follow the layer, not its rank among the masked ones, when only some layers carry masks."""
        if not layers:
            return torch.zeros(())
        if self.layer_weights is None:
            weights = [self.default_weight(d) for d in (range(len(layers)) if depths is None else depths)]
        elif len(self.layer_weights) != len(layers):
            raise ValueError(f"{len(self.layer_weights)} layer_weights given for {len(layers)} masked layers")
        else:
            weights = list(self.layer_weights)
        total = sum(w * self.layer_loss(layer) for w, layer in zip(weights, layers))
        return total / sum(weights) if self.normalise else total


class PatternOverlapLoss(DiversityLoss):
    """K-2:4: mean over mask pairs i<j, groups and layers of sum_p pi_i[p] pi_j[p].

    The chance two masks pick the same pattern; 1/P for uniform distributions (1/6 for 2:4). It keeps the
    gradient of ``pattern_probs()`` so it actually moves alpha (the public attempt detached it). Like
    Kaleidoscope's loss it sees the shared weight W detached: diversity shapes the masks, while W is left to
    the TD loss (the adaptive coefficient grows with the TD loss, and its pull should not act on W).
    """

    normalise = True

    def layer_loss(self, layer: nn.Module) -> torch.Tensor:
        return mean_pairwise_overlap(layer.pattern_probs(detach_weight=True))


class MaskDistanceLoss(DiversityLoss):
    """Kaleidoscope: -sum_l lambda_l sum_{i!=j} ||M_i|W| - M_j|W|||_1 / (N(N-1) |W|), lambda = 1, 2, 4, 8 for
    fc1..fc4 (by depth: with masks on fc2 and fc3 only, their weights stay 2 and 4).

    Binary masks use a straight-through estimator and W is detached, so only the thresholds learn from it.
    """

    def default_weight(self, depth: int) -> float:
        return float(2**depth)

    def layer_loss(self, layer: nn.Module) -> torch.Tensor:
        kept = layer.ste_masks() * layer.weight.detach().abs()
        n = kept.shape[0]
        if n < 2:
            return kept.sum() * 0.0
        i, j = mask_pairs(n, kept.device)
        # each unordered pair stands for both (i, j) and (j, i)
        distance = 2.0 * (kept[i] - kept[j]).abs().sum()
        return -distance / (n * (n - 1) * layer.weight.numel())


class AdaptiveCoefficient:
    """coef = |div_coef * mean(TD history) / mean(div history)| over the last ``deque_len`` values of each.

    Keeps the diversity term at a fixed fraction of the TD loss whatever their scales (Kaleidoscope's rule).
    Plain Python state, so it checkpoints with the learner.
    """

    def __init__(self, div_coef: float, deque_len: int) -> None:
        self.div_coef = div_coef
        self.td_history: deque[float] = deque(maxlen=deque_len)
        self.div_history: deque[float] = deque(maxlen=deque_len)
        self.value = div_coef

    def update(self, td_loss: float, div_loss: float) -> float:
        """Record this iteration's losses and return the new coefficient (div_coef while div history averages 0)."""
        self.td_history.append(float(td_loss))
        self.div_history.append(float(div_loss))
        div_mean = sum(self.div_history) / len(self.div_history)
        td_mean = sum(self.td_history) / len(self.td_history)
        self.value = abs(self.div_coef * td_mean / div_mean) if div_mean != 0 else self.div_coef
        return self.value

    def state_dict(self) -> dict[str, Any]:
        return {"td_history": list(self.td_history), "div_history": list(self.div_history), "value": self.value}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.td_history.clear()
        self.td_history.extend(state["td_history"])
        self.div_history.clear()
        self.div_history.extend(state["div_history"])
        self.value = float(state["value"])
