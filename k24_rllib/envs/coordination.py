"""A tiny cooperative game that needs coordinated, heterogeneous agents: the test bed for learning.

Every agent sees the same observation, and the team earns 1 on a step only when all agents pick different
actions. A random team earns n!/n^n per step (0.22 for 3 agents); the optimum is 1 per step. Agents that share
one network can only solve it by becoming different (agent ids or masks), the situation K-2:4 is built for.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .team import EnvInfo, TeamEnv


class DistinctActionsEnv(TeamEnv):
    """Repeated "all pick different actions" game with ``n_agents`` agents and as many actions."""

    def __init__(self, n_agents: int = 3, episode_limit: int = 10, obs_dim: int = 4) -> None:
        super().__init__(EnvInfo(n_agents, n_agents, obs_dim, obs_dim + 1, episode_limit))
        self._t = 0

    def _observation(self) -> dict[str, np.ndarray]:
        info = self.env_info
        obs = np.ones((info.n_agents, info.obs_dim), np.float32)
        state = np.append(np.ones(info.obs_dim), self._t / info.episode_limit).astype(np.float32)
        return {"obs": obs, "state": state, "action_mask": np.ones((info.n_agents, info.n_actions), np.float32)}

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        super().reset(seed=seed)
        self._t = 0
        return self._observation(), {}

    def step(self, action: Any) -> tuple[dict, float, bool, bool, dict]:
        actions = self._legal(action, self._observation()["action_mask"])
        reward = float(len(set(actions.tolist())) == self.env_info.n_agents)
        self._t += 1
        return self._observation(), reward, False, self._t >= self.env_info.episode_limit, {}
