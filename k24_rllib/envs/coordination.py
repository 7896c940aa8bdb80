"""A tiny cooperative game that needs coordinated, heterogeneous agents: the test bed for learning.

Every agent sees the same observation and picks one of n actions; the team earns (d - 1) / (n - 1) on a step
where its n agents picked d different actions: 1 when all differ, 0 when all agree. A random team of 3 earns
0.56 per step; the optimum is 1 per step. Agents that share one network can only solve it by becoming different
(agent ids or masks), the situation K-2:4 is built for; the partial credit gives learning a gradient out of the
all-agree trap, where the all-or-nothing version left some seeds stuck within a CI-sized budget.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .team import EnvInfo, TeamEnv


class DistinctActionsEnv(TeamEnv):
    """Repeated "pick different actions" game with ``n_agents`` (>= 2) agents and as many actions."""

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
        reward = (len(set(actions.tolist())) - 1) / (self.env_info.n_agents - 1)
        self._t += 1
        return self._observation(), reward, False, self._t >= self.env_info.episode_limit, {}


class TwoStepGameEnv(TeamEnv):
    """QMIX's two-step matrix game (Rashid et al., 2018), two agents with two actions each.

    Step 1 pays nothing; agent 0's action picks the second state: "2A" pays 7 whatever both agents do, "2B"
    pays [[0, 1], [1, 8]] by joint action. The optimum (8) needs both agents to coordinate on 2B and (1, 1); a
    random team earns 4.75 on average, and 7 is the safe choice that additive value decomposition settles for.
    """

    PAYOFF_2B = np.array([[0.0, 1.0], [1.0, 8.0]])

    def __init__(self) -> None:
        super().__init__(EnvInfo(n_agents=2, n_actions=2, obs_dim=3, state_dim=3, episode_limit=2))
        self._state = 0  # 0: first step, 1: "2A", 2: "2B"

    def _observation(self) -> dict[str, np.ndarray]:
        onehot = np.eye(3, dtype=np.float32)[self._state]
        return {"obs": np.stack([onehot, onehot]), "state": onehot, "action_mask": np.ones((2, 2), np.float32)}

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        super().reset(seed=seed)
        self._state = 0
        return self._observation(), {}

    def step(self, action: Any) -> tuple[dict, float, bool, bool, dict]:
        first, second = (int(a) for a in self._legal(action, self._observation()["action_mask"]))
        if self._state == 0:
            self._state = 1 if first == 0 else 2
            return self._observation(), 0.0, False, False, {}
        reward = 7.0 if self._state == 1 else float(self.PAYOFF_2B[first, second])
        return self._observation(), reward, True, False, {}
