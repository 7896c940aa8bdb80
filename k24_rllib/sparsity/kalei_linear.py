"""Kaleidoscope baseline layer: per-mask learnable soft thresholds (STR) on a shared weight."""

from __future__ import annotations

import torch
from torch import nn

from k24_rllib.sparsity.masked_base import MaskedLinearBase


class KaleiLinear(MaskedLinearBase):
    """W_i = sign(W) * ReLU(|W| - sigmoid(s_i)), one threshold tensor s_i [out, in] per mask.

    Thresholds start at s = -(U(0,1) * threshold_init_scale + threshold_init_bias); with the paper code's 5 / 5
    sigmoid(s) is below 0.007, so the layer starts almost dense. Both modes are deterministic; eval caches.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        n_masks: int,
        threshold_init_scale: float = 5.0,
        threshold_init_bias: float = 5.0,
        bias: bool = True,
    ) -> None:
        super().__init__(in_features, out_features, n_masks, bias)
        self.threshold_init_scale = threshold_init_scale
        self.threshold_init_bias = threshold_init_bias
        self.thresholds = nn.Parameter(self.draw_thresholds((n_masks, out_features, in_features)))

    def draw_thresholds(self, shape: tuple[int, ...], generator: torch.Generator | None = None) -> torch.Tensor:
        """Fresh threshold logits (init and resets use the same rule)."""
        device = generator.device if generator is not None else None
        u = torch.rand(shape, generator=generator, device=device)
        return -(u * self.threshold_init_scale + self.threshold_init_bias)

    cache_sources = ("weight", "thresholds")
    own_parameters = ("thresholds",)

    def hard_masks(self) -> torch.Tensor:
        """Float 0/1 [n_masks, out, in]: 1 where mask i keeps the weight."""
        return (self.weight.abs() > torch.sigmoid(self.thresholds)).to(self.weight.dtype)

    def ste_masks(self) -> torch.Tensor:
        """Binary masks whose gradient w.r.t. the thresholds passes straight through the step (|W| detached)."""
        margin = self.weight.detach().abs() - torch.sigmoid(self.thresholds)
        return (margin > 0).to(margin.dtype) + (margin - margin.detach())

    def masked_weights(self) -> torch.Tensor:
        """Soft-thresholded weights [n_masks, out, in] (same in training and eval)."""
        magnitude = torch.relu(self.weight.abs() - torch.sigmoid(self.thresholds))
        return torch.sign(self.weight) * magnitude

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, n_masks={self.n_masks}"
