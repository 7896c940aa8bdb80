"""K24QMix learns a cooperative task that needs coordination, within a CI-sized budget.

QMIX's two-step matrix game: a random team earns 4.75 on average, the safe choice earns 7 and the coordinated
optimum 8. Greedy play after training must clearly beat random play, with every mask setting.
"""

from __future__ import annotations

import pytest

from two_step_setup import BUDGET, RANDOM_RETURN, two_step_config

from k24_rllib.algorithm.evaluation import run_greedy_episodes
from k24_rllib.envs import make_env


@pytest.mark.parametrize("mask", ["k24", "kalei", "none"])
def test_greedy_team_clearly_beats_random(ray_local, mask):
    algo = two_step_config(mask).build_algo()
    try:
        steps = 0
        while steps < BUDGET:
            steps = algo.train()["env_runners"]["num_env_steps_sampled_lifetime"]
        result = run_greedy_episodes(algo.get_module(), make_env("two_step"), episodes=3)
    finally:
        algo.stop()
    assert result.return_mean >= RANDOM_RETURN + 2.0, result
