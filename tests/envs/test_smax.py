"""SMAX backend: contract, SMAC semantics (masks, wins, reward scale, limits), unit types, seeding
and vectorised stepping. Envs come from session fixtures, so each scenario compiles once."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("jaxmarl")

from gymnasium.utils.env_checker import check_env  # noqa: E402

from k24_rllib.envs.smax import SmaxTeamEnv, SmaxVectorEnv  # noqa: E402
from k24_rllib.envs.smax_scenarios import STALKER, ZEALOT  # noqa: E402


def _episode(env, policy, seed):
    """Play one episode; returns the list of (obs, reward, terminated, truncated, info)."""
    obs, _ = env.reset(seed=seed)
    steps = []
    while True:
        obs, reward, terminated, truncated, info = env.step(policy(obs["action_mask"]))
        steps.append((obs, reward, terminated, truncated, info))
        if terminated or truncated:
            return steps


def _assert_matches_info(obs, info):
    assert obs["obs"].shape == (info.n_agents, info.obs_dim) and obs["obs"].dtype == np.float32
    assert obs["state"].shape == (info.state_dim,) and obs["state"].dtype == np.float32
    assert obs["action_mask"].shape == (info.n_agents, info.n_actions)
    assert obs["action_mask"].dtype == np.float32
    assert set(np.unique(obs["action_mask"])) <= {0.0, 1.0}


def test_3m_has_smac_sizes_and_limit(smax_3m):
    info = smax_3m.env_info
    assert (info.n_agents, info.n_actions, info.episode_limit) == (3, 9, 60)
    assert info.n_unit_types == 0 and info.unit_type_slice is None and info.noop_action == 0
    obs, _ = smax_3m.reset(seed=0)
    _assert_matches_info(obs, info)
    assert smax_3m.observation_space.contains(obs)


@pytest.mark.filterwarnings("ignore:.*Box observation space:UserWarning")
def test_check_env_passes(smax_3m):
    # check_env steps with unmasked random actions, which the default policy rejects by design;
    # "replace" turns them into the no-op/stop action so the rest of the checks can run.
    smax_3m.on_illegal_action = "replace"
    try:
        check_env(smax_3m, skip_render_check=True)
    finally:
        smax_3m.on_illegal_action = "raise"


def test_masks_mark_only_legal_actions_and_dead_units_only_noop(smax_3m, focus_fire):
    saw_dead = False
    for seed in range(3):
        for obs, *_ in _episode(smax_3m, focus_fire, seed):
            mask = obs["action_mask"]
            dead = mask[:, 0] > 0
            saw_dead |= bool(dead.any())
            assert (mask[dead] == np.eye(9)[0]).all()
            assert (mask[~dead, 1:6] == 1).all()  # living units may stop and move
            assert (obs["obs"][dead] == 0).all()  # dead agents observe nothing, as in SMAC
    assert saw_dead


def test_global_state_holds_units_and_last_actions(smax_3m):
    obs, _ = smax_3m.reset(seed=0)
    units, last = obs["state"][:24].reshape(6, 4), obs["state"][24:].reshape(3, 9)
    np.testing.assert_array_equal(units[:, 0], 1.0)  # full health, 6 units x (health, x, y, cooldown)
    assert (units[:3, 1] < 0.5).all() and (units[3:, 1] > 0.5).all()  # allies start west of enemies
    assert (last == 0).all()  # no action yet
    actions = np.array([1, 2, 4])
    obs, *_ = smax_3m.step(actions)
    np.testing.assert_array_equal(obs["state"][24:].reshape(3, 9), np.eye(9)[actions])


def test_illegal_action_is_rejected_not_executed(smax_3m):
    obs, _ = smax_3m.reset(seed=0)
    assert obs["action_mask"][0, 6] == 0  # enemies start out of range
    with pytest.raises(ValueError, match="agent 0: action 6 is not available"):
        smax_3m.step(np.array([6, 1, 1]))
    with pytest.raises(ValueError, match="agent 1: action 0 is not available"):
        smax_3m.step(np.array([1, 0, 1]))  # no-op is for dead units only


def test_scripted_team_wins_some_battles_with_smac_reward(smax_3m, focus_fire):
    won_returns, lost_returns = [], []
    for seed in range(8):
        steps = _episode(smax_3m, focus_fire, seed)
        *_, (obs, _, terminated, truncated, info) = steps
        episode_return = sum(step[1] for step in steps)
        enemies_dead = info["dead_enemies"] == 3
        allies_alive = info["dead_allies"] < 3
        assert info["battle_won"] == (enemies_dead and allies_alive)
        assert terminated and not truncated
        (won_returns if info["battle_won"] else lost_returns).append(episode_return)
        assert all(not step[4]["battle_won"] for step in steps[:-1])
    assert won_returns and lost_returns
    np.testing.assert_allclose(won_returns, 20.0, rtol=1e-4)
    assert max(lost_returns) < 20.0


def test_time_limit_truncates_not_terminates(hold):
    env = SmaxTeamEnv("3m", episode_limit=4)  # the limit is traced: no new compile
    assert env.env_info.episode_limit == 4
    steps = _episode(env, hold, seed=0)
    assert len(steps) == 4
    *_, (_, _, terminated, truncated, info) = steps
    assert truncated and not terminated and not info["battle_won"]


def test_seeded_resets_are_reproducible(smax_3m, focus_fire):
    first = _episode(smax_3m, focus_fire, seed=5)
    again = _episode(smax_3m, focus_fire, seed=5)
    assert len(first) == len(again)
    for (obs_a, reward_a, *_), (obs_b, reward_b, *_) in zip(first, again):
        for key in obs_a:
            np.testing.assert_array_equal(obs_a[key], obs_b[key])
        assert reward_a == reward_b
    other, _ = smax_3m.reset(seed=6)
    assert not np.array_equal(other["obs"], smax_3m.reset(seed=5)[0]["obs"])


def test_protoss_scenario_exposes_unit_type_bits(smax_protoss):
    info = smax_protoss.env_info
    assert (info.n_agents, info.n_actions, info.episode_limit) == (5, 11, 200)
    assert info.n_unit_types == 2
    start, stop = info.unit_type_slice
    seen = set()
    for seed in range(6):
        obs, _ = smax_protoss.reset(seed=seed)
        _assert_matches_info(obs, info)
        bits = obs["obs"][:, start:stop]
        assert (bits.sum(axis=1) == 1).all()
        true_types = np.asarray(smax_protoss._carry.env_state.state.unit_types[0, :5])
        expected = np.select([true_types == STALKER, true_types == ZEALOT], [0, 1], -1)
        np.testing.assert_array_equal(bits.argmax(axis=1), expected)
        seen.update(expected.tolist())
    assert seen == {0, 1}  # both protoss types drawn across episodes


def _vector_vs_singles(vector, singles, policy, n_steps, seed):
    """Step the vector env and k single envs in lockstep; singles reset when the vector autoresets."""
    obs, _ = vector.reset(seed=seed)
    single_obs = [env.reset(seed=seed + i)[0] for i, env in enumerate(singles)]
    done = np.zeros(len(singles), dtype=bool)
    episodes_ended = 0
    for _ in range(n_steps):
        actions = policy(obs["action_mask"])
        obs, reward, terminated, truncated, infos = vector.step(actions)
        for i, env in enumerate(singles):
            if done[i]:
                expected, _ = env.reset()
                assert reward[i] == 0 and not terminated[i] and not truncated[i]
                assert not infos["_battle_won"][i]
            else:
                expected, r, te, tr, info = env.step(actions[i])
                assert (reward[i], terminated[i], truncated[i]) == (pytest.approx(r), te, tr)
                assert infos["battle_won"][i] == info["battle_won"] and infos["_battle_won"][i]
            for key in expected:
                np.testing.assert_allclose(obs[key][i], expected[key], atol=1e-5)
        done = terminated | truncated
        episodes_ended += int(done.sum())
    return episodes_ended


def test_vector_env_equals_k_single_envs_with_same_seeds(smax_3m_vec, smax_3m, focus_fire):
    singles = [smax_3m] + [SmaxTeamEnv("3m") for _ in range(3)]  # same core: no new compile
    assert _vector_vs_singles(smax_3m_vec, singles, focus_fire, n_steps=40, seed=100) >= 4


def test_vector_env_spaces_and_autoreset_mode(smax_3m_vec):
    import gymnasium as gym

    assert smax_3m_vec.metadata["autoreset_mode"] == gym.vector.AutoresetMode.NEXT_STEP
    obs, _ = smax_3m_vec.reset(seed=0)
    assert smax_3m_vec.observation_space.contains(obs)
    assert smax_3m_vec.single_action_space.nvec.tolist() == [9, 9, 9]
    assert smax_3m_vec.action_space.shape == (4, 3)


def test_vector_env_rejects_illegal_actions(smax_3m_vec):
    smax_3m_vec.reset(seed=0)
    actions = np.ones((4, 3), dtype=np.int64)
    actions[2, 1] = 7
    with pytest.raises(ValueError, match="env 2, agent 1: action 7"):
        smax_3m_vec.step(actions)


def test_vector_env_works_through_gymnasium_make_vec(smax_3m_vec):
    """RLlib builds vector envs with gym.make_vec(vectorization_mode="vector_entry_point") and
    wraps them in DictInfoToList; check that path without Ray."""
    import gymnasium as gym
    from gymnasium.wrappers.vector import DictInfoToList

    gym.register("k24-test-smax-v0", entry_point=lambda: SmaxTeamEnv("3m"),
                 vector_entry_point=lambda num_envs: SmaxVectorEnv(num_envs, "3m"))
    try:
        env = DictInfoToList(gym.make_vec("k24-test-smax-v0", num_envs=4,
                                          vectorization_mode="vector_entry_point"))
        obs, infos = env.reset(seed=1)
        assert obs["obs"].shape == (4, 3, 39) and infos == [{}] * 4
        obs, _, _, _, infos = env.step(np.where(obs["action_mask"][..., 0] > 0, 0, 1))
        assert infos[0]["battle_won"] is not None and set(infos[0]) == {"battle_won", "dead_allies",
                                                                         "dead_enemies"}
    finally:
        gym.registry.pop("k24-test-smax-v0")
