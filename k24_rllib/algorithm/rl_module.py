"""The RLModule around the K-2:4 agent network and the QMIX mixer.

The whole team is one RLlib "agent": observations are ``{"obs": [n_agents, obs_dim], "state": [state_dim],
"action_mask": [n_agents, n_actions]}`` and actions are ``MultiDiscrete([n_actions] * n_agents)``. Execution
stays decentralised: each agent's Q-values use only its own observation, its own hidden state and its own mask.

EnvRunners build this module with ``inference_only=True``: the mixer and the target networks are dropped there,
and acting uses the deterministic argmax masks, which the masked layers cache between weight syncs.
"""

from __future__ import annotations

from typing import Any

import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.apis import InferenceOnlyAPI, TargetNetworkAPI
from ray.rllib.core.rl_module.torch import TorchRLModule
from torch import nn
from torch.nn import functional as F

from k24_rllib.models import ModelSettings, RecurrentAgent, make_mixer, mask_ids_for

HIDDEN = "h"
LAST_ACTION = "last_action"  # recurrent-state entry with each agent's previous action (``obs_last_action``)
_TARGET_AGENT = "_target_agent"
_TARGET_MIXER = "_target_mixer"


class K24QMixModule(TorchRLModule, TargetNetworkAPI, InferenceOnlyAPI):
    """Recurrent per-agent Q-network with per-agent (or per-unit-type) masks, plus a QMIX/VDN mixer.

    ``model_config`` holds the fields of ``ModelSettings`` (mask kind, mixer, sizes, ``K24_args``, ...); masks
    go per unit type when it holds a ``unit_type_slice``.
    Epsilon and the Gumbel temperature are buffers so they travel with weight syncs and checkpoints.
    """

    def setup(self) -> None:
        settings = ModelSettings.from_mapping(self.model_config)
        obs_space = self.observation_space
        self.n_agents, obs_dim = obs_space["obs"].shape
        self.n_actions = obs_space["action_mask"].shape[-1]
        state_dim = obs_space["state"].shape[0]
        self.obs_agent_id = settings.obs_agent_id
        self.obs_last_action = settings.obs_last_action
        self.unit_type_slice = settings.unit_type_slice
        n_masks = settings.n_unit_types if self.unit_type_slice is not None else self.n_agents
        k24_args, kalei_args = settings.mask_args()
        self.per_step_masks = k24_args.mask_sample == "step"
        self.agent = RecurrentAgent(
            obs_dim=obs_dim + (self.n_agents if self.obs_agent_id else 0)
            + (self.n_actions if self.obs_last_action else 0),
            n_actions=self.n_actions,
            n_masks=n_masks,
            hidden_dim=settings.hidden_dim,
            mask=settings.mask,
            k24_args=k24_args,
            kalei_args=kalei_args,
            masked_layers=settings.masked_layers,
        )
        custom = settings.diversity_loss_class()
        if custom is not None and self.agent.kind.masked:
            self.agent.diversity = custom()
        self.register_buffer("epsilon", torch.tensor(1.0))
        if not self.inference_only:
            self.mixer = make_mixer(
                settings.mixer,
                n_agents=self.n_agents,
                state_dim=state_dim,
                embed_dim=settings.mixer_embed_dim,
                hypernet_dim=settings.hypernet_dim,
            )

    # ----- recurrent state -------------------------------------------------------------------------------

    def get_initial_state(self) -> dict[str, torch.Tensor]:
        """The GRU's zero state, plus "no previous action" (zeros) with ``obs_last_action``: acting carries the
        action it took in the recurrent state, so RLlib's connectors need no extra column."""
        state = {HIDDEN: self.agent.initial_state(self.n_agents)}
        if self.obs_last_action:
            state[LAST_ACTION] = torch.zeros(self.n_agents, self.n_actions)
        return state

    def is_stateful(self) -> bool:
        return True

    # ----- the agent network -----------------------------------------------------------------------------

    def _agent_inputs(
        self, obs: torch.Tensor, last_actions: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Agent inputs (obs plus the optional one-hot id and previous action) and mask ids (None: one mask per
        agent). ``last_actions`` is one-hot, shaped like ``obs`` but for its last axis (``n_actions``)."""
        mask_ids = mask_ids_for(obs, self.unit_type_slice)
        parts = [obs]
        if self.obs_agent_id:
            eye = torch.eye(self.n_agents, device=obs.device, dtype=obs.dtype)
            parts.append(eye.expand(*obs.shape[:-1], self.n_agents))
        if self.obs_last_action:
            parts.append(last_actions.to(obs.dtype))
        return torch.cat(parts, dim=-1) if len(parts) > 1 else obs, mask_ids

    @torch.no_grad()
    def _act(self, batch: dict[str, Any], explore: bool) -> dict[str, Any]:
        """One env step for a [B, 1] batch: the single-step agent path with the cached argmax masks."""
        obs, state = batch[Columns.OBS], batch[Columns.STATE_IN]
        inputs, mask_ids = self._agent_inputs(obs["obs"][:, -1], state.get(LAST_ACTION))
        q, hidden = self.agent(inputs, state[HIDDEN], mask_ids)
        available = obs["action_mask"][:, -1] > 0
        greedy = q.masked_fill(~available, float("-inf")).argmax(dim=-1)
        actions = greedy
        if explore:
            random_actions = torch.multinomial(
                available.reshape(-1, self.n_actions).float(), num_samples=1
            ).reshape(greedy.shape)
            take_random = torch.rand(greedy.shape, device=greedy.device) < self.epsilon
            actions = torch.where(take_random, random_actions, greedy)
        state_out = {HIDDEN: hidden}
        if self.obs_last_action:
            state_out[LAST_ACTION] = F.one_hot(actions, self.n_actions).float()
        return {Columns.ACTIONS: actions.unsqueeze(1), Columns.STATE_OUT: state_out}

    def _forward_inference(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        return self._act(batch, explore=False)

    def _forward_exploration(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        return self._act(batch, explore=True)

    def _forward_train(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        """Online Q-values [B, T + 1, n, A] over whole episodes: ``q[:, t]`` is Q(o_t) for t = 0..T."""
        return {"q": self.q_values(self.agent, batch, observed_steps(batch[Columns.LOSS_MASK]))}

    def q_values(
        self, agent: RecurrentAgent, batch: dict[str, Any], observed: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Q-values [B, T + 1, n, A] of ``agent`` (online or target) unrolled from a zero state over the batch's
        episodes (OBS [B, T + 1], and ACTIONS [B, T] with ``obs_last_action``).

        ``observed`` [B, T + 1] marks real observations (padding stays out of the masks' input statistics).
        """
        last_actions = previous_actions(batch[Columns.ACTIONS], self.n_actions) if self.obs_last_action else None
        inputs, mask_ids = self._agent_inputs(batch[Columns.OBS]["obs"], last_actions)
        h0 = agent.initial_state(inputs.shape[0], self.n_agents)
        return agent.unroll(inputs, h0, mask_ids, observed, per_step=self.per_step_masks)[0]

    # ----- target networks (TargetNetworkAPI) ------------------------------------------------------------

    def make_target_networks(self) -> None:
        """Target copies of the agent (see ``RecurrentAgent.target_copy``) and the mixer."""
        import copy

        setattr(self, _TARGET_AGENT, self.agent.target_copy())
        setattr(self, _TARGET_MIXER, copy.deepcopy(self.mixer).requires_grad_(False))

    @property
    def target_agent(self) -> RecurrentAgent:
        return getattr(self, _TARGET_AGENT)

    @property
    def target_mixer(self) -> nn.Module:
        return getattr(self, _TARGET_MIXER)

    def get_target_network_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        return [(self.agent, self.target_agent), (self.mixer, self.target_mixer)]

    def forward_target(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Target-network Q-values [B, T + 1, n, A] over the train batch's episodes (no autograd)."""
        with torch.no_grad():
            observed = observed_steps(batch[Columns.LOSS_MASK])
            return {"q": self.q_values(self.target_agent, batch, observed)}

    def get_non_inference_attributes(self) -> list[str]:
        return ["mixer", _TARGET_AGENT, _TARGET_MIXER]


def previous_actions(actions: torch.Tensor, n_actions: int) -> torch.Tensor:
    """Actions [B, T, n] -> the action before each observation, one-hot [B, T + 1, n, A] (zeros before the
    first step), as acting puts it in the recurrent state."""
    one_hot = F.one_hot(actions.long(), n_actions).float()
    return torch.cat([torch.zeros_like(one_hot[:, :1]), one_hot], dim=1)


def observed_steps(loss_mask: torch.Tensor) -> torch.Tensor:
    """[B, T] valid steps -> [B, T + 1] real observations: every valid step's and the one after the last."""
    valid = loss_mask.bool()
    pad = torch.zeros_like(valid[:, :1])
    return torch.cat([valid, pad], dim=1) | torch.cat([pad, valid], dim=1)
