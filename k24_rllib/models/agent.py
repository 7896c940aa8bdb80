"""The Kaleidoscope "1R3" recurrent agent with K-2:4, Kaleidoscope or no masks on its four linear layers."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from k24_rllib.models.layers import make_layer
from k24_rllib.sparsity.args import K24Args, KaleiArgs
from k24_rllib.sparsity.diversity import DiversityLoss, MaskDistanceLoss, PatternOverlapLoss
from k24_rllib.sparsity.masked_base import MaskedLinearBase
from k24_rllib.sparsity.stats import mask_stats, pattern_stats, sparsities


class RecurrentAgent(nn.Module):
    """fc1 -> ReLU -> GRUCell -> fc2 -> ReLU -> fc3 -> ReLU -> fc4 -> Q, shared by all agents.

    fc1..fc4 are masked (mask "k24" or "kalei": row r of a batch uses mask ``mask_ids[r]``, one mask per agent or
    per unit type); the GRU is shared and unmasked. Mask "none" is plain parameter-shared QMIX.
    """

    def __init__(
        self,
        obs_dim: int,
        n_actions: int,
        n_masks: int,
        hidden_dim: int = 64,
        mask: str = "k24",
        k24_args: K24Args | None = None,
        kalei_args: KaleiArgs | None = None,
    ) -> None:
        super().__init__()
        self.obs_dim, self.n_actions, self.n_masks, self.hidden_dim = obs_dim, n_actions, n_masks, hidden_dim
        self.mask = mask
        k24_args = k24_args or K24Args()
        kalei_args = kalei_args or KaleiArgs()
        sizes = [(obs_dim, hidden_dim), (hidden_dim, hidden_dim), (hidden_dim, hidden_dim), (hidden_dim, n_actions)]
        self.fc1, self.fc2, self.fc3, self.fc4 = (
            make_layer(mask, i, o, n_masks, k24_args, kalei_args) for i, o in sizes
        )
        self.rnn = nn.GRUCell(hidden_dim, hidden_dim)
        losses: dict[str, type[DiversityLoss]] = {"k24": PatternOverlapLoss, "kalei": MaskDistanceLoss}
        self.diversity: DiversityLoss | None = losses[mask]() if mask in losses else None

    def initial_state(self, *batch_shape: int) -> torch.Tensor:
        """Zero GRU state [*batch_shape, hidden_dim]."""
        return self.fc1.weight.new_zeros(*batch_shape, self.hidden_dim)

    def forward(
        self, obs: torch.Tensor, hidden: torch.Tensor, mask_ids: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """obs [..., obs_dim], hidden [..., hidden_dim], mask_ids [...] -> (q [..., n_actions], hidden [..., hidden_dim])."""
        lead = obs.shape[:-1]
        x = obs.reshape(-1, self.obs_dim)
        h = hidden.reshape(-1, self.hidden_dim)
        ids = torch.broadcast_to(mask_ids, lead).reshape(-1)
        x = F.relu(self.fc1(x, ids))
        h = self.rnn(x, h)
        x = F.relu(self.fc2(h, ids))
        x = F.relu(self.fc3(x, ids))
        q = self.fc4(x, ids)
        return q.reshape(*lead, self.n_actions), h.reshape(*lead, self.hidden_dim)

    @contextmanager
    def unroll_masks(self) -> Iterator[None]:
        """For one sequence unroll: mask quantities are derived once, not at every step (``MaskedLinearBase.unroll``)."""
        with ExitStack() as stack:
            for layer in self.masked_layers():
                stack.enter_context(layer.unroll())
            yield

    def target_copy(self) -> RecurrentAgent:
        """A frozen copy for TD targets: it samples masks like this agent does in training, but never moves
        the activation EMA (bootstrapping from argmax masks, which training does not fit while the
        temperature is high, made Q-values diverge)."""
        target = copy.deepcopy(self).requires_grad_(False)
        for layer in target.masked_layers():
            layer.observe_inputs = False
        return target

    def masked_layers(self) -> list[nn.Module]:
        """fc1..fc4 when masked, else empty."""
        return [layer for layer in (self.fc1, self.fc2, self.fc3, self.fc4) if isinstance(layer, MaskedLinearBase)]

    def set_temperature(self, t: float) -> None:
        """Gumbel-softmax temperature of every masked layer (no-op for masks without one)."""
        for layer in self.masked_layers():
            layer.set_temperature(t)

    def diversity_loss(self) -> torch.Tensor:
        """The pluggable ``diversity`` loss over the masked layers (0 without masks)."""
        if self.diversity is None:
            return self.fc1.weight.new_zeros(())
        return self.diversity(self.masked_layers())

    def get_pattern_stats(self) -> dict[str, float | list[float]]:
        """K-2:4: pattern usage, entropy, pairwise similarity; Kaleidoscope: mask similarity; none: {}.

        K-2:4 similarity is the expected pattern overlap sum_p pi_i pi_j (1/6 for uniform, see
        ``sparsity.stats.pattern_stats``); Kaleidoscope's is the fraction of agreeing mask entries. With a single
        mask there is no pair and the similarity keys are absent.
        """
        if self.mask == "k24":
            return pattern_stats(self.masked_layers())
        if self.mask == "kalei":
            return dict(mask_stats(self.masked_layers()))
        return {}

    def get_sparsities(self) -> tuple[list[float], dict[str, list[float]], float]:
        """(sparsity per layer, per-mask per-layer detail, overall); all zero for mask "none"."""
        if self.mask == "none":
            return [0.0] * 4, {}, 0.0
        return sparsities(self.masked_layers())


def mask_ids_for(obs: torch.Tensor, unit_type_slice: tuple[int, int] | None = None) -> torch.Tensor:
    """Mask id of every agent: its index (one mask per agent), or its unit type read from one-hot obs bits.

    obs [..., n_agents, obs_dim] -> LongTensor [..., n_agents]. Dead agents (all-zero type bits) get id 0.
    """
    if unit_type_slice is None:
        ids = torch.arange(obs.shape[-2], device=obs.device)
        return ids.expand(obs.shape[:-1])
    bits = obs[..., unit_type_slice[0] : unit_type_slice[1]]
    alive = bits.abs().sum(dim=-1) > 0
    return torch.where(alive, bits.argmax(dim=-1), torch.zeros_like(alive, dtype=torch.long))
