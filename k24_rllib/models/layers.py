"""The per-layer choice of the agent: K-2:4 masks, Kaleidoscope masks, or one plain shared layer."""

from __future__ import annotations

import torch
from torch import nn

from k24_rllib.sparsity.args import K24Args, KaleiArgs
from k24_rllib.sparsity.k24_linear import K24Linear
from k24_rllib.sparsity.kalei_linear import KaleiLinear

MASK_KINDS = ("k24", "kalei", "none")


class SharedLinear(nn.Linear):
    """nn.Linear with the masked layers' faces; mask ids are ignored (plain parameter sharing)."""

    def forward(self, x: torch.Tensor, mask_ids: torch.Tensor | None = None) -> torch.Tensor:
        return super().forward(x)

    def forward_slots(
        self,
        x: torch.Tensor,
        mask_ids: torch.Tensor | None = None,
        valid: torch.Tensor | None = None,
        per_step: bool = False,
        step_sizes: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x [S, R, T, in] -> [S, R, T, out], like ``MaskedLinearBase.forward_slots``."""
        return super().forward(x)


def make_layer(
    mask: str,
    in_features: int,
    out_features: int,
    n_masks: int,
    k24_args: K24Args,
    kalei_args: KaleiArgs,
) -> nn.Module:
    """One agent layer of the requested ``mask`` kind."""
    if mask == "k24":
        return K24Linear(
            in_features,
            out_features,
            n_masks,
            n=k24_args.n,
            m=k24_args.m,
            ema_momentum=k24_args.ema_momentum,
            hetero_init_scale=k24_args.hetero_init_scale,
        )
    if mask == "kalei":
        return KaleiLinear(
            in_features,
            out_features,
            n_masks,
            threshold_init_scale=kalei_args.threshold_init_scale,
            threshold_init_bias=kalei_args.threshold_init_bias,
        )
    if mask == "none":
        return SharedLinear(in_features, out_features)
    raise ValueError(f"unknown mask {mask!r}; valid: {', '.join(MASK_KINDS)}")
