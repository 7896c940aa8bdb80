"""Any PettingZoo ``ParallelEnv`` with discrete actions as a team env.

Agents with different observation or action sizes are padded to the largest: observations with
zeros, actions by masking the missing ones. The global state is ``env.state()`` where the env
has a ``state_space``, else the concatenated (padded) observations. All actions are available
unless the env gives masks (dict observations with "action_mask", or ``info["action_mask"]``).
"""

from __future__ import annotations

from typing import Any, Callable, Literal

import gymnasium as gym
import numpy as np

from .team import EnvInfo, IllegalActionPolicy, TeamEnv


class ParallelTeamEnv(TeamEnv):
    """A PettingZoo ParallelEnv presented as one team env.

    Args:
        env_factory: builds the ParallelEnv (called once).
        episode_limit: steps before the env truncates; default the env's ``max_cycles``.
        reward_reduce: how agents' rewards become the team reward ("sum", as EPyMARL, or "mean").
        on_illegal_action: "raise" (default) or "replace" with the no-op/first legal action.

    An agent that leaves before the episode ends gets zero observations and may only take
    action 0 (``noop_action``), which is then not sent to the env.
    """

    def __init__(self, env_factory: Callable[[], Any], episode_limit: int | None = None,
                 reward_reduce: Literal["sum", "mean"] = "sum",
                 on_illegal_action: IllegalActionPolicy = "raise") -> None:
        if reward_reduce not in ("sum", "mean"):
            raise ValueError(f"reward_reduce must be 'sum' or 'mean', got {reward_reduce!r}")
        self.env = env_factory()
        self.agents: list[str] = list(self.env.possible_agents)
        self._reduce = np.sum if reward_reduce == "sum" else np.mean
        obs_sizes = [int(np.prod(_obs_box(self.env.observation_space(a)).shape)) for a in self.agents]
        self._n_actions = []
        for agent in self.agents:
            space = self.env.action_space(agent)
            if not isinstance(space, gym.spaces.Discrete):
                raise ValueError(f"agent {agent!r} has action space {space}; only Discrete is supported "
                                 "(MPE: continuous_actions=False)")
            self._n_actions.append(int(space.n))
        self._has_state = getattr(self.env, "state_space", None) is not None
        obs_dim = max(obs_sizes)
        limit = episode_limit or getattr(self.env.unwrapped, "max_cycles", None)
        if not limit:
            raise ValueError("pass episode_limit: the env has no max_cycles")
        info = EnvInfo(
            n_agents=len(self.agents),
            n_actions=max(self._n_actions),
            obs_dim=obs_dim,
            state_dim=(int(np.prod(self.env.state_space.shape)) if self._has_state
                       else obs_dim * len(self.agents)),
            episode_limit=int(limit),
        )
        super().__init__(info, on_illegal_action)
        self._mask = np.ones((info.n_agents, info.n_actions), np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None
              ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        observations, infos = self.env.reset(seed=seed, options=options)
        return self._observation(observations, infos), {}

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        actions = self._legal(action, self._mask)
        live = set(self.env.agents)
        observations, rewards, terms, truncs, infos = self.env.step(
            {a: int(actions[i]) for i, a in enumerate(self.agents) if a in live})
        reward = float(self._reduce([rewards.get(a, 0.0) for a in self.agents]))
        terminated = bool(terms) and all(terms.values())
        truncated = not terminated and (not self.env.agents or (bool(truncs) and any(truncs.values())))
        return self._observation(observations, infos), reward, terminated, truncated, {}

    def close(self) -> None:
        self.env.close()

    def _observation(self, observations: dict, infos: dict) -> dict[str, np.ndarray]:
        """Stack, pad and mask the per-agent dicts; remembers the mask for the next step."""
        info = self.env_info
        obs = np.zeros((info.n_agents, info.obs_dim), np.float32)
        mask = np.zeros((info.n_agents, info.n_actions), np.float32)
        for i, agent in enumerate(self.agents):
            if agent not in observations:
                mask[i, info.noop_action] = 1.0
                continue
            raw = observations[agent]
            vector = np.asarray(raw["observation"] if isinstance(raw, dict) else raw, np.float32).ravel()
            obs[i, : vector.size] = vector
            given = raw.get("action_mask") if isinstance(raw, dict) else None
            if given is None:
                given = infos.get(agent, {}).get("action_mask")
            n = self._n_actions[i]
            mask[i, :n] = 1.0 if given is None else np.asarray(given, np.float32)[:n]
        state = np.asarray(self.env.state(), np.float32).ravel() if self._has_state else obs.ravel()
        self._mask = mask
        return {"obs": obs, "state": state, "action_mask": mask}


def _obs_box(space: gym.Space) -> gym.Space:
    """The observation part of a (possibly dict, action-masked) observation space."""
    return space["observation"] if isinstance(space, gym.spaces.Dict) else space
