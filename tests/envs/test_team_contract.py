"""The team-env contract itself: EnvInfo validation, spaces and the illegal-action policy."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from k24_rllib.envs import EnvInfo, team_spaces
from k24_rllib.envs.team import enforce_legal

INFO = EnvInfo(n_agents=3, n_actions=9, obs_dim=12, state_dim=20, episode_limit=60,
               n_unit_types=2, unit_type_slice=(10, 12), noop_action=0)


def test_spaces_follow_env_info():
    obs_space, action_space = team_spaces(INFO)
    assert obs_space["obs"].shape == (3, 12) and obs_space["obs"].dtype == np.float32
    assert obs_space["state"].shape == (20,) and obs_space["state"].dtype == np.float32
    mask_space = obs_space["action_mask"]
    assert mask_space.shape == (3, 9) and mask_space.dtype == np.float32
    assert mask_space.low.min() == 0.0 and mask_space.high.max() == 1.0
    assert isinstance(action_space, gym.spaces.MultiDiscrete)
    assert action_space.nvec.tolist() == [9, 9, 9]


@pytest.mark.parametrize("bad", [
    dict(n_unit_types=2, unit_type_slice=None),
    dict(n_unit_types=2, unit_type_slice=(10, 13)),
    dict(n_unit_types=3, unit_type_slice=(10, 12)),
])
def test_env_info_rejects_inconsistent_unit_types(bad):
    fields = {**INFO.__dict__, **bad}
    with pytest.raises(ValueError):
        EnvInfo(**fields)


MASK = np.array([[1, 0, 0], [0, 1, 1]], np.float32)  # agent 0 dead (no-op only), agent 1 alive


def test_legal_actions_pass_through():
    assert enforce_legal(np.array([0, 2]), MASK, "raise", 0).tolist() == [0, 2]


def test_illegal_action_raises_naming_agent_and_action():
    with pytest.raises(ValueError, match=r"agent 1: action 0 is not available; legal actions are \[1, 2\]"):
        enforce_legal(np.array([0, 0]), MASK, "raise", 0)


def test_out_of_range_and_wrong_shape_raise_even_when_replacing():
    with pytest.raises(ValueError, match="outside"):
        enforce_legal(np.array([0, 3]), MASK, "replace", 0)
    with pytest.raises(ValueError, match="shape"):
        enforce_legal(np.array([0, 1, 1]), MASK, "replace", 0)


def test_replace_uses_noop_where_legal_else_lowest_legal():
    assert enforce_legal(np.array([2, 0]), MASK, "replace", 0).tolist() == [0, 1]


def test_batched_error_names_env_and_agent():
    batch = np.stack([MASK, MASK])
    with pytest.raises(ValueError, match="env 1, agent 0"):
        enforce_legal(np.array([[0, 1], [1, 1]]), batch, "raise", 0)
