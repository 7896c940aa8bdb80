"""Read-outs of masked layers for logging and analysis: pattern usage, mask similarity, sparsity."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from k24_rllib.sparsity.diversity import mask_pairs, pairwise_overlap


def _summarise(prefix: str, per_pair: torch.Tensor) -> dict[str, float]:
    """Mean/max/min over mask pairs; no keys when there is no pair (a single mask has no similarity)."""
    if per_pair.numel() == 0:
        return {}
    return {
        f"{prefix}_mean_similarity": float(per_pair.mean()),
        f"{prefix}_max_similarity": float(per_pair.max()),
        f"{prefix}_min_similarity": float(per_pair.min()),
    }


@torch.no_grad()
def pattern_stats(layers: Sequence[nn.Module]) -> dict[str, float | list[float]]:
    """Pattern usage and pairwise similarity of K-2:4 layers, every group of every layer weighted equally.

    pattern_mean[p]: mean probability of pattern p (also as pattern_{p}_prob); pattern_entropy: entropy (nats)
    of that usage distribution, log(P) when all patterns are used equally. Similarity of masks i, j: expected
    overlap sum_p pi_i[p] pi_j[p] (what the diversity loss minimises; 1/P for uniform, 1 for identical one-hot).
    """
    probs = [layer.pattern_probs() for layer in layers]
    usage = torch.cat([p.reshape(-1, p.shape[-1]) for p in probs]).mean(dim=0)
    stats: dict[str, float | list[float]] = {"pattern_mean": usage.tolist()}
    stats.update({f"pattern_{k}_prob": float(v) for k, v in enumerate(usage)})
    stats["pattern_entropy"] = float(-(usage * usage.clamp_min(1e-12).log()).sum())
    per_pair = torch.cat([pairwise_overlap(p).flatten(1) for p in probs], dim=1)
    stats.update(_summarise("pattern", per_pair.mean(dim=1)))
    return stats


@torch.no_grad()
def mask_stats(layers: Sequence[nn.Module]) -> dict[str, float]:
    """Pairwise similarity of binary masks: fraction of positions where masks i and j agree (kept or pruned)."""
    agreement = []
    for layer in layers:
        masks = layer.hard_masks().reshape(layer.n_masks, -1)
        i, j = mask_pairs(layer.n_masks, masks.device)
        agreement.append(masks[i] == masks[j])
    return _summarise("mask", torch.cat(agreement, dim=1).float().mean(dim=1))


@torch.no_grad()
def sparsities(layers: Sequence[nn.Module]) -> tuple[list[float], dict[str, list[float]], float]:
    """(pruned fraction per layer, {"mask_k": per-layer pruned fraction of mask k}, overall pruned fraction).

    Counted on ``hard_masks()``, i.e. over K-2:4's padded layout (exactly 1 - n/m).
    """
    masks = [layer.hard_masks() for layer in layers]
    per_layer = [float(1 - m.mean()) for m in masks]
    n_masks = masks[0].shape[0] if masks else 0
    detail = {f"mask_{k}": [float(1 - m[k].mean()) for m in masks] for k in range(n_masks)}
    kept = sum(float(m.sum()) for m in masks)
    total = sum(m.numel() for m in masks)
    return per_layer, detail, (1 - kept / total) if total else 0.0


class MaskChange:
    """Share of each layer's binary mask entries that differ from the previous call's: how far the argmax masks
    moved between two measurements (0 once they stop changing, as with frozen or static masks).

    The network greedy tests run is the argmax-masked one, so this is how much of it changes under the shared
    weights between two measurements. It keeps the last masks in memory only: after a restore the first call
    has nothing to compare with.
    """

    def __init__(self) -> None:
        self._previous: list[torch.Tensor] = []

    @torch.no_grad()
    def __call__(self, layers: Sequence[nn.Module]) -> tuple[list[float], float] | None:
        """(per layer, over all layers) the share of mask entries that changed since the previous call; None on
        the first call, without layers, or when the layers' shapes differ from the previous call's."""
        masks = [layer.hard_masks() for layer in layers]
        previous, self._previous = self._previous, masks
        if not masks or [p.shape for p in previous] != [m.shape for m in masks]:
            return None
        changed = [int((p != m).sum()) for p, m in zip(previous, masks)]
        sizes = [m.numel() for m in masks]
        return [c / n for c, n in zip(changed, sizes)], sum(changed) / sum(sizes)
