"""K24QMix learns a cooperative task that needs coordination, within a CI-sized budget.

QMIX's two-step matrix game: a random team earns 4.75 on average, the safe choice earns 7 and the coordinated
optimum 8. Greedy play after training must clearly beat random play, with every mask setting.
"""

from __future__ import annotations

import pytest

from k24_rllib import K24QMixConfig
from k24_rllib.algorithm.evaluation import run_greedy_episodes
from k24_rllib.envs import make_env

RANDOM_RETURN = 0.5 * 7.0 + 0.5 * (0 + 1 + 1 + 8) / 4
BUDGET = 3_000


@pytest.mark.parametrize("mask", ["k24", "kalei", "none"])
def test_greedy_team_clearly_beats_random(ray_local, mask):
    config = (
        K24QMixConfig()
        .environment("two_step")
        .env_runners(num_env_runners=0, num_envs_per_env_runner=4)
        .training(
            mask=mask,
            t_max=BUDGET,
            epsilon=[(0, 1.0), (1_500, 0.05)],
            num_steps_sampled_before_learning_starts=200,
            train_batch_size_per_learner=128,
            training_intensity=8.0,
            target_network_update_freq=200,
        )
        .reporting(min_sample_timesteps_per_iteration=400)
        .debugging(seed=1)
    )
    algo = config.build_algo()
    try:
        steps = 0
        while steps < BUDGET:
            steps = algo.train()["env_runners"]["num_env_steps_sampled_lifetime"]
        result = run_greedy_episodes(algo.get_module(), make_env("two_step"), episodes=3)
    finally:
        algo.stop()
    assert result.return_mean >= RANDOM_RETURN + 2.0, result
