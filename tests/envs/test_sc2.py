"""The real-StarCraft II adapter, tested against a test double.

StarCraft II cannot run here, so ``_FakeStarCraft2Env`` stands in for oxwhirl SMAC's
``StarCraft2Env`` (and SMACv2's ``StarCraftCapabilityEnvWrapper``). It follows SMAC's documented
API only: ``get_env_info()`` -> {n_agents, n_actions, obs_shape, state_shape, episode_limit},
``reset()``, ``step(actions) -> (reward, terminated, info)`` with ``info["battle_won"]``,
``get_obs()``, ``get_state()``, ``get_avail_actions()`` (0 no-op for dead units, 1 stop, 2-5
move, 6+ attack), ``unit_type_bits`` and ``close()``; SMAC ends a timed-out episode with
``terminated=True``. The double is installed as the ``smac.env`` / ``smacv2.env`` modules.
"""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from k24_rllib.envs import make_env
from k24_rllib.envs.sc2 import Sc2TeamEnv, smacv2_capability_config


class _FakeStarCraft2Env:
    """2 agents, 2 enemies, 8 actions, limit 4; every attack (action 6 or 7) kills that enemy,
    reward 10 per kill; agent 1 dies at step 2 unless the battle is already won."""

    n_agents, n_enemies, limit = 2, 2, 4
    obs_dim = 5

    def __init__(self, map_name="3m", seed=None, unit_type_bits=2, **kwargs):
        self.map_name, self.seed, self.kwargs = map_name, seed, kwargs
        self.unit_type_bits = unit_type_bits
        self.closed = False
        self.sent: list[list[int]] = []

    def get_env_info(self):
        return {"n_agents": self.n_agents, "n_actions": 6 + self.n_enemies, "obs_shape": self.obs_dim,
                "state_shape": 7, "episode_limit": self.limit}

    def reset(self):
        self.t, self.alive, self.enemies = 0, [True, True], [True, True]

    def step(self, actions):
        self.sent.append(list(actions))
        self.t += 1
        kills = 0
        for a in actions:
            if a >= 6 and self.enemies[a - 6]:
                self.enemies[a - 6] = False
                kills += 1
        won = not any(self.enemies)
        if self.t == 2 and not won:
            self.alive[1] = False
        info = {"battle_won": won, "dead_allies": self.alive.count(False),
                "dead_enemies": self.enemies.count(False)}
        return 10.0 * kills, won or self.t >= self.limit, info

    def get_obs(self):
        return [np.full(self.obs_dim, i + 1.0) * alive for i, alive in enumerate(self.alive)]

    def get_state(self):
        return np.arange(7, dtype=np.float64)

    def get_avail_actions(self):
        attack = [int(e) for e in self.enemies]
        return [[0, 1, 1, 1, 1, 1, *attack] if alive else [1, 0, 0, 0, 0, 0, 0, 0]
                for alive in self.alive]

    def close(self):
        self.closed = True


class _FakeCapabilityWrapper(_FakeStarCraft2Env):
    def __init__(self, capability_config, map_name, seed=None, **kwargs):
        super().__init__(map_name=map_name, seed=seed, unit_type_bits=3, **kwargs)
        self.capability_config = capability_config


@pytest.fixture
def fake_smac(monkeypatch):
    smac_env = types.ModuleType("smac.env")
    smac_env.StarCraft2Env = _FakeStarCraft2Env
    smacv2_env = types.ModuleType("smacv2.env")
    smacv2_env.StarCraftCapabilityEnvWrapper = _FakeCapabilityWrapper
    monkeypatch.setitem(sys.modules, "smac.env", smac_env)
    monkeypatch.setitem(sys.modules, "smacv2.env", smacv2_env)


def test_env_info_and_observation_mapping(fake_smac):
    env = Sc2TeamEnv(map_name="3m", seed=7, difficulty="7")
    assert env.env.seed == 7 and env.env.kwargs == {"difficulty": "7"}
    info = env.env_info
    assert (info.n_agents, info.n_actions, info.obs_dim, info.state_dim, info.episode_limit) == (
        2, 8, 5, 7, 4)
    assert info.n_unit_types == 2 and info.unit_type_slice == (3, 5)  # SMAC: own type bits last
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    np.testing.assert_array_equal(obs["obs"][1], np.full(5, 2.0))
    np.testing.assert_array_equal(obs["action_mask"][0], [0, 1, 1, 1, 1, 1, 1, 1])


def test_win_terminates_with_battle_won(fake_smac):
    env = Sc2TeamEnv()
    env.reset()
    _, reward, terminated, truncated, info = env.step(np.array([6, 7]))
    assert reward == 20.0 and terminated and not truncated and info["battle_won"] is True
    assert env.env.sent == [[6, 7]]


def test_time_limit_is_truncation_and_dead_units_only_noop(fake_smac):
    env = Sc2TeamEnv()
    env.reset()
    env.step(np.array([1, 1]))
    obs, *_ = env.step(np.array([1, 1]))  # agent 1 dies at step 2
    np.testing.assert_array_equal(obs["action_mask"][1], [1, 0, 0, 0, 0, 0, 0, 0])
    with pytest.raises(ValueError, match="agent 1: action 1 is not available"):
        env.step(np.array([1, 1]))
    env.step(np.array([1, 0]))
    _, _, terminated, truncated, info = env.step(np.array([1, 0]))
    assert truncated and not terminated and not info["battle_won"]


def test_smacv2_scenario_uses_capability_wrapper(fake_smac):
    env = make_env("smacv2", scenario="zerg_10_vs_11", backend="sc2")
    assert env.env.map_name == "10gen_zerg"
    config = env.env.capability_config
    assert (config["n_units"], config["n_enemies"]) == (10, 11)
    assert config["team_gen"]["unit_types"] == ["zergling", "hydralisk", "baneling"]
    assert env.env_info.n_unit_types == 3
    assert smacv2_capability_config("protoss_5_vs_5")[1]["team_gen"]["weights"] == [0.45, 0.45, 0.1]


@pytest.mark.filterwarnings("ignore:.*Box observation space:UserWarning")
def test_check_env_passes_on_the_double(fake_smac):
    check_env(Sc2TeamEnv(on_illegal_action="replace"), skip_render_check=True)


def test_registry_close_and_unknown_names(fake_smac):
    env = make_env("smac", map_name="MMM", backend="sc2")  # a map SMAX cannot model
    env.close()
    assert env.env.closed
    with pytest.raises(ValueError, match="corridor"):
        make_env("smac", map_name="4m", backend="sc2")
    with pytest.raises(ValueError, match="protoss_5_vs_5"):
        make_env("smacv2", scenario="protoss_3_vs_3", backend="sc2")
