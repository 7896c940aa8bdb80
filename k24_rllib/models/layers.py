"""The agent's layer without masks: plain parameter sharing, with the masked layers' faces."""

from __future__ import annotations

import torch
from torch import nn



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
