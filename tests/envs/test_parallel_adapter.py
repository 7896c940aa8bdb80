"""The generic PettingZoo adapter, on a tiny ParallelEnv written here (no state(), masks, an agent
that leaves early, unequal sizes), so these tests need no optional package."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from k24_rllib.envs import make_env
from k24_rllib.envs.parallel import ParallelTeamEnv


class _Relay:
    """Two agents; "a" has 2 obs and 3 actions (only 0 and 1 allowed), "b" has 4 obs and 2
    actions and leaves after step 2; reward 1 per agent that played action 1; 5 steps."""

    possible_agents = ["a", "b"]
    max_cycles = 5

    def __init__(self) -> None:
        self.agents: list[str] = []
        self.t = 0
        self.received: list[dict] = []

    def observation_space(self, agent):
        if agent == "a":
            return gym.spaces.Dict({"observation": gym.spaces.Box(-1, 1, (2,)),
                                    "action_mask": gym.spaces.MultiBinary(3)})
        return gym.spaces.Box(-1, 1, (4,))

    def action_space(self, agent):
        return gym.spaces.Discrete(3 if agent == "a" else 2)

    @property
    def unwrapped(self):
        return self

    def _obs(self):
        out = {"a": {"observation": np.full(2, self.t / 10), "action_mask": np.array([1, 1, 0])}}
        if "b" in self.agents:
            out["b"] = np.full(4, -self.t / 10)
        return out

    def reset(self, seed=None, options=None):
        self.agents, self.t = list(self.possible_agents), 0
        return self._obs(), {a: {} for a in self.agents}

    def step(self, actions):
        self.received.append(actions)
        self.t += 1
        rewards = {a: float(actions[a] == 1) for a in self.agents}
        truncs = {a: self.t >= self.max_cycles for a in self.agents}
        terms = {a: a == "b" and self.t >= 2 for a in self.agents}
        self.agents = [a for a in self.agents if not (terms[a] or truncs[a])]
        return self._obs(), rewards, terms, truncs, {a: {} for a in rewards}

    def close(self):
        pass


@pytest.fixture
def relay_env():
    return ParallelTeamEnv(_Relay)


def test_padding_state_and_masks(relay_env):
    info = relay_env.env_info
    assert (info.n_agents, info.n_actions, info.obs_dim, info.state_dim) == (2, 3, 4, 8)
    assert info.episode_limit == 5
    obs, _ = relay_env.reset(seed=0)
    np.testing.assert_array_equal(obs["action_mask"], [[1, 1, 0], [1, 1, 0]])
    np.testing.assert_array_equal(obs["obs"][0], [0, 0, 0, 0])  # "a" padded from 2 to 4
    np.testing.assert_array_equal(obs["state"], obs["obs"].ravel())  # no state(): concatenation
    assert relay_env.observation_space.contains(obs)


def test_agent_leaving_gets_noop_only_and_episode_truncates(relay_env):
    relay_env.reset(seed=0)
    rewards = []
    for t in range(5):
        obs, reward, terminated, truncated, info = relay_env.step(np.array([1, 0 if t >= 2 else 1]))
        rewards.append(reward)
        if t >= 1:
            np.testing.assert_array_equal(obs["action_mask"][1], [1, 0, 0])
            assert (obs["obs"][1] == 0).all()
    assert rewards == [2.0, 2.0, 1.0, 1.0, 1.0]  # team reward is the sum
    assert truncated and not terminated and info == {}
    assert "b" not in relay_env.env.received[2]  # a departed agent's no-op is not sent


def test_masked_action_is_rejected(relay_env):
    relay_env.reset(seed=0)
    with pytest.raises(ValueError, match="agent 0: action 2 is not available"):
        relay_env.step(np.array([2, 0]))


def test_mean_reward_and_bad_options():
    env = ParallelTeamEnv(_Relay, reward_reduce="mean")
    env.reset(seed=0)
    assert env.step(np.array([1, 0]))[1] == 0.5
    with pytest.raises(ValueError, match="reward_reduce"):
        ParallelTeamEnv(_Relay, reward_reduce="max")


def test_registry_builds_single_and_vector_pettingzoo_envs():
    env = make_env("pettingzoo", env_factory=_Relay)
    assert isinstance(env, ParallelTeamEnv)
    vector = make_env("pettingzoo", num_envs=2, env_factory=_Relay)
    assert isinstance(vector, gym.vector.SyncVectorEnv)
    obs, _ = vector.reset(seed=0)
    assert obs["obs"].shape == (2, 2, 4)
    with pytest.raises(ValueError, match="env_factory"):
        make_env("pettingzoo")
