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

from k24_rllib.models import RecurrentAgent, make_mixer, mask_ids_for
from k24_rllib.sparsity import K24Args, KaleiArgs

HIDDEN = "h"
_TARGET_AGENT = "_target_agent"
_TARGET_MIXER = "_target_mixer"


class K24QMixModule(TorchRLModule, TargetNetworkAPI, InferenceOnlyAPI):
    """Recurrent per-agent Q-network with per-agent (or per-unit-type) masks, plus a QMIX/VDN mixer.

    ``model_config`` keys: ``hidden_dim``, ``mask`` ("k24" | "kalei" | "none"), ``K24_args``, ``kalei_args``,
    ``mixer`` ("qmix" | "vdn"), ``mixer_embed_dim``, ``hypernet_dim``, ``obs_agent_id`` (append a one-hot agent
    id to each observation, as pymarl does), ``unit_type_slice`` (masks per unit type when given).
    Epsilon and the Gumbel temperature are buffers so they travel with weight syncs and checkpoints.
    """

    def setup(self) -> None:
        cfg = self.model_config
        obs_space = self.observation_space
        self.n_agents, obs_dim = obs_space["obs"].shape
        self.n_actions = obs_space["action_mask"].shape[-1]
        state_dim = obs_space["state"].shape[0]
        self.obs_agent_id = bool(cfg.get("obs_agent_id", True))
        slice_ = cfg.get("unit_type_slice")
        self.unit_type_slice = tuple(slice_) if slice_ is not None else None
        n_masks = int(cfg["n_unit_types"]) if self.unit_type_slice is not None else self.n_agents
        self.agent = RecurrentAgent(
            obs_dim=obs_dim + (self.n_agents if self.obs_agent_id else 0),
            n_actions=self.n_actions,
            n_masks=n_masks,
            hidden_dim=int(cfg.get("hidden_dim", 64)),
            mask=cfg.get("mask", "k24"),
            k24_args=K24Args.from_dict(cfg.get("K24_args")),
            kalei_args=KaleiArgs.from_dict(cfg.get("kalei_args")),
        )
        self.register_buffer("epsilon", torch.tensor(1.0))
        if not self.inference_only:
            self.mixer = make_mixer(
                cfg.get("mixer", "qmix"),
                n_agents=self.n_agents,
                state_dim=state_dim,
                embed_dim=int(cfg.get("mixer_embed_dim", 32)),
                hypernet_dim=int(cfg.get("hypernet_dim", 64)),
            )

    # ----- recurrent state -------------------------------------------------------------------------------

    def get_initial_state(self) -> dict[str, torch.Tensor]:
        return {HIDDEN: self.agent.initial_state(self.n_agents)}

    def is_stateful(self) -> bool:
        return True

    # ----- the agent network over a [B, T] batch ----------------------------------------------------------

    def _agent_inputs(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Agent inputs (obs plus optional one-hot id) and mask ids for obs [..., n_agents, obs_dim]."""
        mask_ids = mask_ids_for(obs, self.unit_type_slice)
        if self.obs_agent_id:
            eye = torch.eye(self.n_agents, device=obs.device, dtype=obs.dtype)
            obs = torch.cat([obs, eye.expand(*obs.shape[:-1], self.n_agents)], dim=-1)
        return obs, mask_ids

    @staticmethod
    def unroll(
        agent: RecurrentAgent, obs: torch.Tensor, mask_ids: torch.Tensor, h0: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Runs ``agent`` over obs [B, T, n, d] from h0 [B, n, H]; returns Q [B, T, n, A] and hiddens [B, T, n, H].

        In training mode the pattern logits are computed once for the unroll and every step draws fresh
        Gumbel noise (see ``RecurrentAgent.unroll_masks``).
        """
        qs, hs, h = [], [], h0
        with agent.unroll_masks():
            for t in range(obs.shape[1]):
                q, h = agent(obs[:, t], h, mask_ids[:, t])
                qs.append(q)
                hs.append(h)
        return torch.stack(qs, dim=1), torch.stack(hs, dim=1)

    @torch.no_grad()
    def _act(self, batch: dict[str, Any], explore: bool) -> dict[str, Any]:
        obs = batch[Columns.OBS]
        inputs, mask_ids = self._agent_inputs(obs["obs"])
        q, hs = self.unroll(self.agent, inputs, mask_ids, batch[Columns.STATE_IN][HIDDEN])
        available = obs["action_mask"] > 0
        greedy = q.masked_fill(~available, float("-inf")).argmax(dim=-1)
        actions = greedy
        if explore:
            random_actions = torch.multinomial(
                available.reshape(-1, self.n_actions).float(), num_samples=1
            ).reshape(greedy.shape)
            take_random = torch.rand(greedy.shape, device=greedy.device) < self.epsilon
            actions = torch.where(take_random, random_actions, greedy)
        return {Columns.ACTIONS: actions, Columns.STATE_OUT: {HIDDEN: hs[:, -1]}}

    def _forward_inference(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        return self._act(batch, explore=False)

    def _forward_exploration(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        return self._act(batch, explore=True)

    def _forward_train(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        """Online Q-values over the sequence extended by its final next observation (see ``extend_sequence``).

        ``q[:, t]`` is Q(o_t) and ``q[:, t + 1]`` is Q(o_{t+1}) for every valid t, as in pymarl's single unroll.
        """
        ext = extend_sequence(batch[Columns.OBS], batch[Columns.NEXT_OBS], batch[Columns.LOSS_MASK])
        q = self.q_values(self.agent, ext, batch[Columns.STATE_IN][HIDDEN])
        return {"q": q, "obs_ext": ext}

    def q_values(self, agent: RecurrentAgent, obs: dict[str, torch.Tensor], h0: torch.Tensor) -> torch.Tensor:
        """Q-values [B, T, n, A] of ``agent`` (online or target) over a team-observation sequence."""
        inputs, mask_ids = self._agent_inputs(obs["obs"])
        return self.unroll(agent, inputs, mask_ids, h0)[0]

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
        """Target-network Q-values over the extended sequence that ``_forward_train`` returned."""
        with torch.no_grad():
            return {"q": self.q_values(self.target_agent, batch["obs_ext"], batch[Columns.STATE_IN][HIDDEN])}

    def get_non_inference_attributes(self) -> list[str]:
        return ["mixer", _TARGET_AGENT, _TARGET_MIXER]


def extend_sequence(
    obs: dict[str, torch.Tensor], next_obs: dict[str, torch.Tensor], loss_mask: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Appends each row's final next observation after its last valid step: [B, T] -> [B, T + 1].

    Sequences are right-padded, so row b has ``L_b = loss_mask[b].sum()`` valid steps and its bootstrap
    observation ``next_obs[b, L_b - 1]`` goes to position ``L_b``. One unroll over the result then gives
    Q(o_t) and Q(o_{t+1}) for every valid t, with the hidden state carried through, as pymarl does.
    """
    lengths = loss_mask.long().sum(dim=1).clamp(min=1)
    rows = torch.arange(loss_mask.shape[0], device=loss_mask.device)

    def extend(x: torch.Tensor, nx: torch.Tensor) -> torch.Tensor:
        out = torch.cat([x, torch.zeros_like(x[:, :1])], dim=1)
        out[rows, lengths] = nx[rows, lengths - 1]
        return out

    return {key: extend(obs[key], next_obs[key]) for key in obs}
