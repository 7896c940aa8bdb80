"""The team-env contract: one gymnasium env per team, so RLlib's single-agent stack can drive a mixer.

A mixer (QMIX) needs every agent's Q at the same timestep plus the global state, which RLlib's
multi-agent replay does not provide; presenting the whole team as ONE env with stacked per-agent
observations and a MultiDiscrete action keeps agents aligned in time (see docs/environments.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import gymnasium as gym
import numpy as np

IllegalActionPolicy = Literal["raise", "replace"]


@dataclass(frozen=True)
class EnvInfo:
    """Static facts about a team env that models and algorithms size themselves by.

    Attributes:
        n_agents: agents in the learning team.
        n_actions: discrete actions per agent (the same for every agent).
        obs_dim: length of each agent's observation vector.
        state_dim: length of the global state vector (for the mixer).
        episode_limit: steps after which an episode is truncated.
        n_unit_types: width of the one-hot unit type in each agent's observation (0: no type bits).
        unit_type_slice: ``(start, stop)`` of that one-hot inside the observation vector, or None.
            It is all zeros for a dead agent (its whole observation is zeroed, as in SMAC).
        noop_action: the only action a dead (inactive) agent may take.
    """

    n_agents: int
    n_actions: int
    obs_dim: int
    state_dim: int
    episode_limit: int
    n_unit_types: int = 0
    unit_type_slice: tuple[int, int] | None = None
    noop_action: int = 0

    def __post_init__(self) -> None:
        if self.unit_type_slice is not None:
            start, stop = self.unit_type_slice
            if stop - start != self.n_unit_types or not 0 <= start < stop <= self.obs_dim:
                raise ValueError(f"unit_type_slice {self.unit_type_slice} does not fit n_unit_types "
                                 f"{self.n_unit_types} and obs_dim {self.obs_dim}")
        elif self.n_unit_types:
            raise ValueError("n_unit_types > 0 needs a unit_type_slice")


def team_spaces(info: EnvInfo) -> tuple[gym.spaces.Dict, gym.spaces.MultiDiscrete]:
    """Observation and action spaces of a team env described by ``info``.

    ``action_mask`` is a float32 0/1 Box (not MultiBinary) so that it batches and converts to
    torch like the other observation parts.
    """
    observation_space = gym.spaces.Dict({
        "obs": gym.spaces.Box(-np.inf, np.inf, (info.n_agents, info.obs_dim), np.float32),
        "state": gym.spaces.Box(-np.inf, np.inf, (info.state_dim,), np.float32),
        "action_mask": gym.spaces.Box(0.0, 1.0, (info.n_agents, info.n_actions), np.float32),
    })
    action_space = gym.spaces.MultiDiscrete(np.full(info.n_agents, info.n_actions, dtype=np.int64))
    return observation_space, action_space


def enforce_legal(actions: Any, mask: np.ndarray, policy: IllegalActionPolicy,
                  noop_action: int) -> np.ndarray:
    """Return ``actions`` as an int array after checking them against ``mask`` (any leading dims).

    An illegal action is never executed silently: with ``policy="raise"`` it raises ValueError
    naming the agent, with ``"replace"`` it becomes ``noop_action`` where that is legal, else the
    lowest legal action (SMAC: no-op for dead units, stop for living ones).
    """
    actions = np.asarray(actions)
    n_actions = mask.shape[-1]
    if actions.shape != mask.shape[:-1] or not np.issubdtype(actions.dtype, np.integer):
        raise ValueError(f"expected integer actions of shape {mask.shape[:-1]}, got "
                         f"{actions.dtype} {actions.shape}")
    out_of_range = (actions < 0) | (actions >= n_actions)
    if out_of_range.any():
        where = np.argwhere(out_of_range)[0]
        raise ValueError(f"{_who(where)}: action {actions[tuple(where)]} is outside [0, {n_actions})")
    legal = np.take_along_axis(mask, actions[..., None], axis=-1)[..., 0] > 0
    if legal.all():
        return actions
    if policy == "raise":
        where = tuple(np.argwhere(~legal)[0])
        raise ValueError(f"{_who(where)}: action {actions[where]} is not available; "
                         f"legal actions are {np.flatnonzero(mask[where]).tolist()}")
    fallback = np.where(mask[..., noop_action] > 0, noop_action, mask.argmax(axis=-1))
    return np.where(legal, actions, fallback)


def _who(index: np.ndarray | tuple) -> str:
    """'agent 2' or 'env 1, agent 2' for an index into (env, agent) or (agent,)."""
    *env, agent = (int(i) for i in index)
    return (f"env {env[0]}, " if env else "") + f"agent {agent}"


class TeamEnv(gym.Env):
    """Base of every team env: spaces from ``env_info`` and the illegal-action policy.

    Subclasses implement ``reset`` and ``step``. ``step`` returns
    ``(obs_dict, team_reward, terminated, truncated, info)`` where a time-limit end is
    ``truncated=True, terminated=False`` and combat envs report ``info["battle_won"]``.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, env_info: EnvInfo, on_illegal_action: IllegalActionPolicy = "raise") -> None:
        if on_illegal_action not in ("raise", "replace"):
            raise ValueError(f"on_illegal_action must be 'raise' or 'replace', got {on_illegal_action!r}")
        self.env_info = env_info
        self.on_illegal_action: IllegalActionPolicy = on_illegal_action
        self.observation_space, self.action_space = team_spaces(env_info)

    def _legal(self, actions: Any, mask: np.ndarray) -> np.ndarray:
        """The actions to execute, checked against the current mask (see ``enforce_legal``)."""
        return enforce_legal(actions, mask, self.on_illegal_action, self.env_info.noop_action)
