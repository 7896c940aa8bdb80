"""The Kaleidoscope "1R3" recurrent agent with K-2:4, Kaleidoscope or no masks on its four linear layers."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any
import torch
import torch.nn.functional as F
from torch import nn

from k24_rllib.models.gru import gru_running, gru_sequence, plan_segments
from k24_rllib.models.mask_kinds import mask_kind
from k24_rllib.models.packing import PackedSteps
from k24_rllib.sparsity.args import K24Args, KaleiArgs
from k24_rllib.sparsity.diversity import DiversityLoss
from k24_rllib.sparsity.masked_base import MaskedLinearBase
from k24_rllib.sparsity.stats import sparsities


LAYER_NAMES = ("fc1", "fc2", "fc3", "fc4")  # the agent's linear layers, in forward order; any of them may be masked


class RecurrentAgent(nn.Module):
    """fc1 -> ReLU -> GRUCell -> fc2 -> ReLU -> fc3 -> ReLU -> fc4 -> Q, shared by all agents.

    The layers named in ``masked_layers`` (all four by default) are masked by the registered mask kind ``mask``
    (``models.mask_kinds``: "k24", "kalei", or a user's; row r of a batch uses mask ``mask_ids[r]``, one mask per
    agent or per unit type); the others, and the GRU, are dense and shared by every agent. Mask "none" is plain
    parameter-shared QMIX.
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
        masked_layers: Sequence[str] = LAYER_NAMES,
    ) -> None:
        super().__init__()
        self.obs_dim, self.n_actions, self.n_masks, self.hidden_dim = obs_dim, n_actions, n_masks, hidden_dim
        self.mask, self.kind = mask, mask_kind(mask)
        settings = self.kind.pick_settings(k24_args or K24Args(), kalei_args or KaleiArgs())
        sizes = [(obs_dim, hidden_dim), (hidden_dim, hidden_dim), (hidden_dim, hidden_dim), (hidden_dim, n_actions)]
        dense = mask_kind("none").make_layer
        self.fc1, self.fc2, self.fc3, self.fc4 = (
            self.kind.make_layer(i, o, n_masks, settings) if name in masked_layers else dense(i, o, n_masks, None)
            for name, (i, o) in zip(LAYER_NAMES, sizes)
        )
        self.rnn = nn.GRUCell(hidden_dim, hidden_dim)
        self.diversity: DiversityLoss | None = self.kind.diversity() if self.kind.diversity else None

    def initial_state(self, *batch_shape: int) -> torch.Tensor:
        """Zero GRU state [*batch_shape, hidden_dim]."""
        return self.fc1.weight.new_zeros(*batch_shape, self.hidden_dim)

    def forward(
        self, obs: torch.Tensor, hidden: torch.Tensor, mask_ids: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One step (acting): obs [..., n, obs_dim], hidden [..., n, hidden_dim] -> (q [..., n, A], hidden).

        ``mask_ids`` [..., n] picks each agent's mask (per unit type); None: agent i uses mask i.
        """
        lead, n = obs.shape[:-2], obs.shape[-2]
        x = obs.reshape(-1, n, self.obs_dim).transpose(0, 1).unsqueeze(2)  # [n, R, 1, d]
        ids = None
        if mask_ids is not None:  # [R, n] -> the slot layout [n, R, 1]
            ids = torch.broadcast_to(mask_ids, obs.shape[:-1]).reshape(-1, n, 1).transpose(0, 1)
        x = F.relu(self.fc1.forward_slots(x, ids))
        h = hidden.reshape(-1, n, self.hidden_dim).transpose(0, 1).reshape(-1, self.hidden_dim)
        h = self.rnn(x.reshape(-1, self.hidden_dim), h).reshape(n, -1, 1, self.hidden_dim)
        q = self._head(h, ids, None, False)
        unslot = lambda y: y.squeeze(2).transpose(0, 1).reshape(*lead, n, y.shape[-1])  # noqa: E731
        return unslot(q), unslot(h)

    def unroll(
        self,
        obs: torch.Tensor,
        h0: torch.Tensor,
        mask_ids: torch.Tensor | None = None,
        valid: torch.Tensor | None = None,
        per_step: bool = False,
        pack: bool | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A whole sequence (training): obs [B, T, n, d], h0 [B, n, H] -> (q [B, T, n, A], hiddens [B, T, n, H]).

        fc1..fc4 run over all timesteps at once and the GRU is one fused call over time: only the GRU is
        recurrent. ``mask_ids`` [B, T, n] as in ``forward``; ``valid`` [B, T] marks real timesteps (padding is
        kept out of the input statistics); ``per_step`` draws a training mask per timestep, else one per call.
        ``pack``: run fc1..fc4 on the real timesteps only (needs ``valid``, not ``per_step``). The default packs
        on CPU, where compute spent on padding costs time; on a GPU an update of this size is bound by kernel
        launches, and packing adds launches without saving time, so there the layout stays padded.
        """
        if pack is None:
            pack = obs.device.type == "cpu"
        if pack and valid is not None and not per_step:
            return self._unroll_packed(obs, h0, mask_ids, valid)
        b, t, n, _ = obs.shape
        ids = None if mask_ids is None else mask_ids.permute(2, 0, 1)  # [n, B, T]
        x = F.relu(self.fc1.forward_slots(obs.permute(2, 0, 1, 3), ids, valid, per_step))  # [n, B, T, H]
        h = gru_sequence(self.rnn, x.reshape(n * b, t, self.hidden_dim), h0.transpose(0, 1).reshape(n * b, -1))
        h = h.reshape(n, b, t, self.hidden_dim)
        q = self._head(h, ids, valid, per_step)
        return q.permute(1, 2, 0, 3), h.permute(1, 2, 0, 3)

    def _unroll_packed(
        self, obs: torch.Tensor, h0: torch.Tensor, mask_ids: torch.Tensor | None, valid: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``unroll`` with the fc layers on the real timesteps only (``valid`` is a prefix mask per row).

        The real timesteps are packed time-major (``PackedSteps``), so fc1..fc4 see [n, N, 1, d] (N real
        timesteps) and spend nothing on padding. The GRU runs on the padded layout, longest sequence first, in
        time segments over the sequences still running (``gru_running``): on CPU a packed GRU's backward
        zero-fills the whole gradient at every timestep, which costs more than the padding it skips. Padding
        comes back as zeros.
        """
        n = obs.shape[2]
        steps = PackedSteps.of(valid)

        def to_slots(data: torch.Tensor) -> torch.Tensor:  # [N, n, ...] -> [n, N, 1, ...]
            return data.transpose(0, 1).unsqueeze(2)

        def from_slots(y: torch.Tensor) -> torch.Tensor:  # [n, N, 1, F] -> [N, n, F]
            return y.squeeze(2).transpose(0, 1)

        ids = None if mask_ids is None else to_slots(steps.pack(mask_ids))
        x = F.relu(self.fc1.forward_slots(to_slots(steps.pack(obs)), ids, step_sizes=steps.sizes))
        x = steps.unpack(from_slots(x), longest_first=True).permute(2, 0, 1, 3)  # [n, B, T', H]
        running = steps.sizes.tolist()
        h = gru_running(self.rnn, x, h0[steps.order].transpose(0, 1), running, plan_segments(running, n))
        h = steps.pack(h.permute(1, 2, 0, 3), longest_first=True)  # [N, n, H]
        q = self._head(to_slots(h), ids, None, False, steps.sizes)
        return steps.unpack(from_slots(q)), steps.unpack(h)

    def _head(
        self,
        h: torch.Tensor,
        ids: torch.Tensor | None,
        valid: torch.Tensor | None,
        per_step: bool,
        step_sizes: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """fc2 -> ReLU -> fc3 -> ReLU -> fc4 on GRU outputs in the slot layout [n, R, T, H]."""
        x = F.relu(self.fc2.forward_slots(h, ids, valid, per_step, step_sizes))
        x = F.relu(self.fc3.forward_slots(x, ids, valid, per_step, step_sizes))
        return self.fc4.forward_slots(x, ids, valid, per_step, step_sizes)

    def target_copy(self) -> RecurrentAgent:
        """A frozen copy for TD targets: it samples masks like this agent does in training, but never moves
        the activation EMA (bootstrapping from argmax masks, which training does not fit while the
        temperature is high, made Q-values diverge)."""
        target = copy.deepcopy(self).requires_grad_(False)
        for layer in target.masked_layers():
            layer.observe_inputs = False
        return target

    def named_masked_layers(self) -> list[tuple[str, MaskedLinearBase]]:
        """(name, layer) of every masked layer, in forward order ("fc1".."fc4"; none without masks)."""
        return [(name, layer) for name in LAYER_NAMES if isinstance(layer := getattr(self, name), MaskedLinearBase)]

    def masked_layers(self) -> list[MaskedLinearBase]:
        """The masked layers among fc1..fc4, in forward order."""
        return [layer for _, layer in self.named_masked_layers()]

    @torch.no_grad()
    def reassign_masks(self, sources: Sequence[int]) -> None:
        """Mask i takes mask ``sources[i]``'s own parameters in every masked layer, in place; shared weights stay.

        ``[1, 0]`` swaps two unit types' masks, ``[0, 0]`` gives both the first one's. What a greedy test loses then
        is what the masks' differences are worth in play, which pattern similarity alone does not say.
        """
        layers = self.masked_layers()
        if not layers:
            raise ValueError("this network has no masks (mask 'none'): there is nothing to reassign")
        n_masks = layers[0].n_masks
        if len(sources) != n_masks or not all(0 <= i < n_masks for i in sources):
            raise ValueError(f"masks {list(sources)} must name one of the {n_masks} masks (0..{n_masks - 1}) for "
                             f"each of them, e.g. {list(range(n_masks))[::-1]}")
        unnamed = [type(layer).__name__ for layer in layers if not layer.own_parameters]
        if unnamed:
            raise ValueError(f"{unnamed[0]} names no own_parameters (its per-mask parameters): set the class attribute")
        for layer in layers:
            for name in layer.own_parameters:
                own = getattr(layer, name)
                own.copy_(own[list(sources)])

    def set_temperature(self, t: float) -> None:
        """Gumbel-softmax temperature of every masked layer (no-op for masks without one)."""
        for layer in self.masked_layers():
            layer.set_temperature(t)

    def set_pruned_scale(self, scale: float) -> None:
        """Share of pruned weights that every masked layer keeps (``K24_args.fade_pruned``; no-op for others)."""
        for layer in self.masked_layers():
            layer.set_pruned_scale(scale)

    def diversity_loss(self) -> torch.Tensor:
        """The pluggable ``diversity`` loss over the masked layers (0 without masks)."""
        if self.diversity is None:
            return self.fc1.weight.new_zeros(())
        named = self.named_masked_layers()
        return self.diversity([layer for _, layer in named], [LAYER_NAMES.index(name) for name, _ in named])

    def get_pattern_stats(self) -> dict[str, float | list[float]]:
        """The mask kind's statistics: K-2:4 pattern usage, entropy, pairwise similarity; Kaleidoscope mask
        similarity; {} without masks.

        K-2:4 similarity is the expected pattern overlap sum_p pi_i pi_j (1/6 for uniform, see
        ``sparsity.stats.pattern_stats``); Kaleidoscope's is the fraction of agreeing mask entries. With a single
        mask there is no pair and the similarity keys are absent.
        """
        return self.kind.stats(self.masked_layers()) if self.kind.stats else {}

    def get_sparsities(self) -> tuple[list[float], dict[str, list[float]], float]:
        """(sparsity of fc1..fc4, the same per mask, overall over the masked layers): a dense layer counts 0, so
        entry i is always fc{i+1}; overall is 0.5 for 2:4 whichever layers carry masks; all zero without masks."""
        named = self.named_masked_layers()
        if not named:
            return [0.0] * len(LAYER_NAMES), {}, 0.0
        per_layer, detail, overall = sparsities([layer for _, layer in named])
        where = [LAYER_NAMES.index(name) for name, _ in named]

        def per_fc(values: list[float]) -> list[float]:
            out = [0.0] * len(LAYER_NAMES)
            for i, value in zip(where, values):
                out[i] = value
            return out

        return per_fc(per_layer), {mask: per_fc(values) for mask, values in detail.items()}, overall


def mask_ids_for(obs: torch.Tensor, unit_type_slice: tuple[int, int] | None = None) -> torch.Tensor | None:
    """Mask id of every agent from its observation: None for one mask per agent (agent i uses mask i), or
    its unit type read from one-hot obs bits: obs [..., n_agents, obs_dim] -> LongTensor [..., n_agents].
    Dead agents (all-zero type bits) get id 0.
    """
    if unit_type_slice is None:
        return None
    bits = obs[..., unit_type_slice[0] : unit_type_slice[1]]
    alive = bits.abs().sum(dim=-1) > 0
    return torch.where(alive, bits.argmax(dim=-1), torch.zeros_like(alive, dtype=torch.long))


def first_non_finite(tensors: Mapping[str, Any]) -> str | None:
    """The name of the first floating-point tensor (or array) holding NaN or inf; None when all are finite."""
    for name, value in tensors.items():
        t = torch.as_tensor(value)
        if t.is_floating_point() and not torch.isfinite(t).all():
            return name
    return None
