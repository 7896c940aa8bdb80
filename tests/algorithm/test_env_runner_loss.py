"""An EnvRunner killed mid-training (SIGKILL, sample request in flight): RLlib restarts it and training goes on."""

from __future__ import annotations

import os
import signal

import pytest

pytest.importorskip("jaxmarl")

from k24_rllib import K24QMixConfig  # noqa: E402
from k24_rllib.algorithm.algorithm import SAMPLE_TAG  # noqa: E402


def test_a_killed_env_runner_is_restarted_and_training_completes(ray_local):
    config = (
        K24QMixConfig()
        .environment("smac", env_config={"map_name": "3m"})
        .env_runners(num_env_runners=1, num_envs_per_env_runner=2, num_cpus_per_env_runner=0.5,
                     gym_env_vectorize_mode="vector_entry_point")
        .fault_tolerance(restart_failed_env_runners=True, delay_between_env_runner_restarts_s=0.5)
        .training(t_max=20_000, num_steps_sampled_before_learning_starts=200, train_batch_size_per_learner=64,
                  training_intensity=1.0)
        .reporting(min_sample_timesteps_per_iteration=600)
        .debugging(seed=0)
    )
    algo = config.build_algo()
    try:
        algo.train()
        assert algo.env_runner_group.num_in_flight_async_reqs(tag=SAMPLE_TAG) == 1  # killed mid-request
        [pid] = algo.env_runner_group.foreach_env_runner(lambda runner: os.getpid(), local_env_runner=False)
        os.kill(pid, signal.SIGKILL)
        results = [algo.train()]
        while results[-1]["fault_tolerance"]["num_remote_worker_restarts"] < 1 and len(results) < 10:
            results.append(algo.train())
        restarted = results[-1]
        after = [algo.train() for _ in range(2)]
    finally:
        algo.stop()
    assert restarted["fault_tolerance"]["num_remote_worker_restarts"] == 1
    assert after[-1]["fault_tolerance"]["num_healthy_workers"] == 1
    steps = [r["env_runners"]["num_env_steps_sampled_lifetime"] for r in (restarted, *after)]
    assert steps[0] < steps[1] < steps[2]  # the restarted runner samples again
    assert after[-1]["learners"]["default_policy"]["num_skipped_updates"] == 0
