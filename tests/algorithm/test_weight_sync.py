"""Every weight push reaches every remote EnvRunner, also when a runner applies the previous push late (a loaded
machine): right after ``train()`` each runner holds the learner's weights, temperature included."""

from __future__ import annotations

import sys
import time
from typing import Any

import ray.cloudpickle
import torch
from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner

from two_step_setup import two_step_config

SET_STATE_DELAY_S = 2.0


class SlowToApplyWeightsRunner(SingleAgentEnvRunner):
    """Takes longer to apply a state than the learner takes for an iteration here: a runner on a busy machine."""

    def set_state(self, state: dict[str, Any]) -> None:
        time.sleep(SET_STATE_DELAY_S)
        super().set_state(state)


ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # runner processes cannot import test modules


def test_a_runner_slow_to_apply_weights_still_gets_every_push(ray_local):
    config = two_step_config("k24").training(training_intensity=1.0).env_runners(
        num_env_runners=2, num_cpus_per_env_runner=0.5, env_runner_cls=SlowToApplyWeightsRunner
    )
    algo = config.build_algo()
    try:
        for _ in range(2):
            algo.train()
        learner = algo.learner_group._learner.module["default_policy"].state_dict()
        runners = algo.env_runner_group.foreach_env_runner(
            lambda runner: runner.module.state_dict(), local_env_runner=False
        )
    finally:
        algo.stop()
    assert len(runners) == 2
    for runner in runners:
        assert runner.keys() <= learner.keys()
        stale = [name for name in runner if not torch.equal(runner[name], learner[name])]
        assert not stale, f"a runner kept old values of {stale[:3]}"
