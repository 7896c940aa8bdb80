"""The spec's mask metrics of an agent network, as the flat scalars a result dict and TensorBoard hold."""

from __future__ import annotations

import numpy as np
import torch

from k24_rllib.models import RecurrentAgent


@torch.no_grad()
def mask_metrics(agent: RecurrentAgent) -> dict[str, float]:
    """Pattern statistics (``pattern_mean`` becomes ``pattern_{i}_prob``), ``sparsity_layer_{i}`` and
    ``overall_sparsity``; list-valued statistics other than ``pattern_mean`` are left out."""
    metrics: dict[str, float] = {}
    for key, value in agent.get_pattern_stats().items():
        if key == "pattern_mean":
            metrics.update({f"pattern_{i}_prob": float(p) for i, p in enumerate(value)})
        elif np.isscalar(value):
            metrics[key] = float(value)
    per_layer, _, overall = agent.get_sparsities()
    metrics.update({f"sparsity_layer_{i}": float(s) for i, s in enumerate(per_layer)})
    metrics["overall_sparsity"] = float(overall)
    return metrics
