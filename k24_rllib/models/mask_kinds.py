"""The registry of mask kinds: everything the agent, the trainer and the analysis need to know about one kind.

A kind names its layer, its settings class, its diversity loss, its logged statistics and its reset rule. The
CLI's ``--mask`` choices, ``K24QMixConfig.validate()``, the agent and the mask controller all read this registry,
so a new kind (a user's own mask, or the guide's 4:8 variant as a preset) is one ``register_mask_kind`` call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from k24_rllib.models.layers import SharedLinear
from k24_rllib.sparsity.args import K24Args, KaleiArgs
from k24_rllib.sparsity.diversity import DiversityLoss, MaskDistanceLoss, PatternOverlapLoss
from k24_rllib.sparsity.k24_linear import K24Linear
from k24_rllib.sparsity.kalei_linear import KaleiLinear
from k24_rllib.sparsity.resets import reset_collapsed_groups, reset_dead_weights
from k24_rllib.sparsity.stats import mask_stats, pattern_stats

LayerFactory = Callable[[int, int, int, Any], nn.Module]  # (in_features, out_features, n_masks, settings)
ResetRule = Callable[[nn.Module, float, "torch.optim.Optimizer | None", "torch.Generator | None"], int]


@dataclass(frozen=True)
class MaskKind:
    """One kind of mask on the agent's fc1..fc4.

    ``settings`` is the settings class whose instance the layers, the diversity coefficient (``div_coef``,
    ``deque_len``) and the reset schedule (``reset_interval``, ``reset_ratio``) read: ``K24Args`` (the config's
    ``K24_args``) or ``KaleiArgs`` (``kalei_args``); None for a network without masks.
    """

    name: str
    make_layer: LayerFactory
    settings: type | None = None
    diversity: type[DiversityLoss] | None = None
    stats: Callable[[Sequence[nn.Module]], dict[str, Any]] | None = None
    reset: ResetRule | None = None

    @property
    def masked(self) -> bool:
        return self.settings is not None

    def pick_settings(self, k24_args: K24Args, kalei_args: KaleiArgs) -> Any:
        """This kind's settings among the config's two settings objects (None without masks)."""
        if self.settings is None:
            return None
        return next(args for args in (k24_args, kalei_args) if isinstance(args, self.settings))


MASK_KINDS: dict[str, MaskKind] = {}


def register_mask_kind(kind: MaskKind) -> MaskKind:
    """Adds (or replaces) a kind by name; returns it."""
    if kind.settings not in (None, K24Args, KaleiArgs):
        raise ValueError(f"mask kind {kind.name!r}: settings must be K24Args, KaleiArgs or None")
    MASK_KINDS[kind.name] = kind
    return kind


def mask_kind(name: str) -> MaskKind:
    """The registered kind called ``name``; a ValueError naming the valid ones otherwise."""
    try:
        return MASK_KINDS[name]
    except KeyError:
        raise ValueError(f"unknown mask {name!r}; valid: {', '.join(MASK_KINDS)}") from None


def _k24_layer(in_features: int, out_features: int, n_masks: int, args: K24Args) -> nn.Module:
    return K24Linear(in_features, out_features, n_masks, n=args.n, m=args.m, ema_momentum=args.ema_momentum,
                     hetero_init_scale=args.hetero_init_scale, fade_pruned=args.fade_pruned)


def _kalei_layer(in_features: int, out_features: int, n_masks: int, args: KaleiArgs) -> nn.Module:
    return KaleiLinear(in_features, out_features, n_masks, threshold_init_scale=args.threshold_init_scale,
                       threshold_init_bias=args.threshold_init_bias)


def _shared_layer(in_features: int, out_features: int, n_masks: int, args: None) -> nn.Module:
    return SharedLinear(in_features, out_features)


register_mask_kind(MaskKind("k24", _k24_layer, K24Args, PatternOverlapLoss, pattern_stats, reset_collapsed_groups))
register_mask_kind(MaskKind("kalei", _kalei_layer, KaleiArgs, MaskDistanceLoss, mask_stats, reset_dead_weights))
register_mask_kind(MaskKind("none", _shared_layer))
