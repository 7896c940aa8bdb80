"""Resets that revive collapsed masks: periodic (every ``reset_interval``) or KL-triggered.

Re-drawn entries also lose their optimiser moments; otherwise Adam's stale momentum would push them straight
back to where they collapsed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from k24_rllib.sparsity.diversity import mask_pairs
from k24_rllib.sparsity.k24_linear import K24Linear
from k24_rllib.sparsity.kalei_linear import KaleiLinear


def pairwise_symmetric_kl(layers: list[K24Linear]) -> float:
    """Mean over mask pairs, groups and layers of KL(pi_i||pi_j) + KL(pi_j||pi_i); inf when no layer has a pair.

    Low values mean the masks choose patterns alike: the adaptive-reset signal.
    """
    values = []
    with torch.no_grad():
        for layer in layers:
            if layer.n_masks < 2:
                continue
            log_p = torch.log_softmax(layer.pattern_logits() / layer.temperature, dim=-1)
            i, j = mask_pairs(layer.n_masks, log_p.device)
            # KL(p||q) + KL(q||p) = sum (p - q)(log p - log q)
            sym = (log_p[i].exp() - log_p[j].exp()) * (log_p[i] - log_p[j])
            values.append(sym.sum(dim=-1).mean())
    return float(torch.stack(values).mean()) if values else math.inf


def _random(
    sampler: Callable[..., torch.Tensor], like: torch.Tensor, generator: torch.Generator | None
) -> torch.Tensor:
    """``sampler`` (torch.rand / torch.randn) shaped like ``like``, drawn on the generator's device if one is given."""
    device = generator.device if generator is not None else like.device
    return sampler(like.shape, generator=generator, device=device).to(device=like.device, dtype=torch.float32)


def _choose(candidates: torch.Tensor, ratio: float, generator: torch.Generator | None) -> torch.Tensor:
    """Each candidate entry is picked with probability ``ratio`` (Kaleidoscope's rule)."""
    return candidates & (_random(torch.rand, candidates, generator) < ratio)


def _zero_optimizer_state(optimizer: torch.optim.Optimizer | None, param: torch.Tensor, where: torch.Tensor) -> None:
    """Zero every per-entry state tensor of ``param`` (Adam's exp_avg/exp_avg_sq, SGD momentum...) at ``where``."""
    if optimizer is None:
        return
    for value in optimizer.state.get(param, {}).values():
        if torch.is_tensor(value) and value.shape == param.shape:
            value[where] = 0


def reset_collapsed_groups(
    layer: K24Linear,
    ratio: float,
    optimizer: torch.optim.Optimizer | None,
    generator: torch.Generator | None = None,
) -> int:
    """Among groups where every mask's argmax pattern agrees, pick ~``ratio`` of them and re-draw alpha there.

    alpha is re-drawn from N(0, hetero_init_scale^2) for all masks in the chosen groups; everything else stays
    bit-identical. Returns the number of groups reset.
    """
    with torch.no_grad():
        choice = layer.pattern_logits().argmax(dim=-1)  # [n_masks, out, groups]
        collapsed = (choice == choice[:1]).all(dim=0)
        chosen = _choose(collapsed, ratio, generator)
        where = chosen.repeat_interleave(layer.m, dim=1).expand_as(layer.alpha)
        fresh = _random(torch.randn, layer.alpha, generator).to(layer.alpha)
        layer.alpha[where] = fresh[where] * layer.hetero_init_scale
        _zero_optimizer_state(optimizer, layer.alpha, where)
    return int(chosen.sum())


def reset_dead_weights(
    layer: KaleiLinear,
    ratio: float,
    optimizer: torch.optim.Optimizer | None,
    generator: torch.Generator | None = None,
) -> int:
    """Kaleidoscope: among weights every mask prunes, pick ~``ratio``; re-draw their thresholds and shared weights.

    Weights come back with nn.Linear's init range; thresholds with the layer's init rule. Returns the count reset.
    """
    with torch.no_grad():
        dead = (layer.hard_masks() == 0).all(dim=0)  # [out, in]
        chosen = _choose(dead, ratio, generator)
        bound = 1.0 / math.sqrt(layer.in_features)
        fresh_w = (_random(torch.rand, layer.weight, generator) * 2 - 1) * bound
        layer.weight[chosen] = fresh_w.to(layer.weight)[chosen]
        where = chosen.expand_as(layer.thresholds)
        fresh_s = layer.draw_thresholds(tuple(layer.thresholds.shape), generator).to(layer.thresholds)
        layer.thresholds[where] = fresh_s[where]
        _zero_optimizer_state(optimizer, layer.weight, chosen)
        _zero_optimizer_state(optimizer, layer.thresholds, where)
    return int(chosen.sum())


class ResetSchedule:
    """Says when a periodic reset is due: every ``interval`` env steps, never within the last interval of t_max.

    ``due`` records the reset it announces, so calling it once per training iteration is enough.
    """

    def __init__(self, interval: int, t_max: int) -> None:
        self.interval = interval
        self.t_max = t_max
        self.last_reset = 0

    def due(self, t_env: int) -> bool:
        if t_env - self.last_reset < self.interval or t_env >= self.t_max - self.interval:
            return False
        self.last_reset = t_env
        return True

    def state_dict(self) -> dict[str, Any]:
        return {"last_reset": self.last_reset}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.last_reset = int(state["last_reset"])


class KLResetTrigger:
    """Adaptive reset: fires when the pairwise KL falls below ``threshold``, at most once per ``min_interval``."""

    def __init__(self, threshold: float, min_interval: int) -> None:
        self.threshold = threshold
        self.min_interval = min_interval
        self.last_fired: int | None = None

    def should_reset(self, kl: float, t_env: int) -> bool:
        if kl >= self.threshold:
            return False
        if self.last_fired is not None and t_env - self.last_fired < self.min_interval:
            return False
        self.last_fired = t_env
        return True

    def state_dict(self) -> dict[str, Any]:
        return {"last_fired": self.last_fired}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.last_fired = state["last_fired"]
