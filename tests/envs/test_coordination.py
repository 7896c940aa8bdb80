import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from k24_rllib.envs import make_env


def test_partial_credit_for_distinct_actions_and_truncation_at_the_limit():
    env = make_env("coordination", n_agents=3, episode_limit=2)
    check_env(env, skip_render_check=True)
    env.reset(seed=0)
    _, all_agree, *_ = env.step(np.array([1, 1, 1]))
    _, all_differ, terminated, truncated, _ = env.step(np.array([2, 0, 1]))
    assert (all_agree, all_differ) == (0.0, 1.0)
    assert truncated and not terminated  # a time limit, not a death
    env.reset(seed=0)
    assert env.step(np.array([0, 0, 2]))[1] == pytest.approx(0.5)


def test_out_of_range_actions_are_rejected():
    env = make_env("coordination")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="agent 1"):
        env.step(np.array([0, 5, 1]))


@pytest.mark.parametrize("first, second, payoff", [((0, 0), (1, 0), 7.0), ((1, 0), (1, 1), 8.0), ((1, 1), (0, 0), 0.0)])
def test_two_step_game_payoffs(first, second, payoff):
    env = make_env("two_step")
    check_env(env, skip_render_check=True)
    env.reset(seed=0)
    _, reward, terminated, *_ = env.step(np.array(first))
    assert reward == 0.0 and not terminated
    _, reward, terminated, truncated, _ = env.step(np.array(second))
    assert (reward, terminated, truncated) == (payoff, True, False)
