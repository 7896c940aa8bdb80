"""The two-step game's training setup, shared by the learning tests on CPU and on a CUDA learner."""

from __future__ import annotations

from typing import Any

from k24_rllib import K24QMixConfig

RANDOM_RETURN = 0.5 * 7.0 + 0.5 * (0 + 1 + 1 + 8) / 4  # a random team on QMIX's two-step game
BUDGET = 3_000


def two_step_config(mask: str, **training: Any) -> K24QMixConfig:
    """A config that learns the two-step game within BUDGET env steps."""
    return (
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
            **training,
        )
        .reporting(min_sample_timesteps_per_iteration=400)
        .debugging(seed=1)
    )
