"""MPE tasks from mpe2 through the PettingZoo adapter."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mpe2")

from gymnasium.utils.env_checker import check_env  # noqa: E402

from k24_rllib.envs import available_maps, env_info_for, make_env  # noqa: E402


@pytest.mark.filterwarnings("ignore:.*Box observation space:UserWarning")
def test_simple_spread_contract():
    env = make_env("mpe", task="simple_spread")
    info = env.env_info
    assert (info.n_agents, info.n_actions, info.obs_dim, info.state_dim, info.episode_limit) == (
        3, 5, 18, 54, 25)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    np.testing.assert_array_equal(obs["state"], env.env.state())  # the env's own global state
    assert (obs["action_mask"] == 1).all()
    check_env(env, skip_render_check=True)


def test_simple_spread_truncates_at_max_cycles_without_battle_won():
    env = make_env("mpe", task="simple_spread", N=3, local_ratio=0.5, max_cycles=7)
    env.reset(seed=1)
    for t in range(7):
        obs, reward, terminated, truncated, info = env.step(np.array([t % 5] * 3))
        assert isinstance(reward, float)
        assert truncated == (t == 6) and not terminated
    assert "battle_won" not in info


def test_seeded_reset_reproducible():
    env = make_env("mpe")
    first = env.reset(seed=3)[0]["obs"]
    np.testing.assert_array_equal(first, env.reset(seed=3)[0]["obs"])
    assert not np.array_equal(first, env.reset(seed=4)[0]["obs"])


def test_speaker_listener_is_padded():
    env = make_env("mpe", task="simple_speaker_listener")
    info = env.env_info
    assert (info.n_agents, info.n_actions, info.obs_dim) == (2, 5, 11)
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs["action_mask"], [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    assert (obs["obs"][0, 3:] == 0).all()


def test_registry_names_info_and_vector():
    assert available_maps("mpe") == ("simple_spread", "simple_reference", "simple_speaker_listener")
    assert env_info_for("mpe", task="simple_reference").n_actions == 50
    vector = make_env("mpe", num_envs=3)
    obs, _ = vector.reset(seed=0)
    assert obs["obs"].shape == (3, 3, 18)
    with pytest.raises(ValueError, match="simple_spread"):
        make_env("mpe", task="simple_tag")
    with pytest.raises(ValueError, match="continuous_actions"):
        make_env("mpe", continuous_actions=True)
