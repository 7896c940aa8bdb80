"""RLlib's GPU learner path: a CUDA learner (``num_gpus_per_learner=1``) trains with EnvRunners acting on CPU, in
fp32 and under bf16 autocast (``mixed_precision=True``), and the team it trains still learns QMIX's two-step
game. Skipped without CUDA (CI has none): ``benchmarks/device_check.sh`` runs it on a GPU machine."""

from __future__ import annotations

import math

import pytest
import torch

from two_step_setup import BUDGET, RANDOM_RETURN, two_step_config

from k24_rllib.algorithm.evaluation import run_greedy_episodes
from k24_rllib.envs import make_env

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.parametrize("mixed_precision", [False, True])
@pytest.mark.parametrize("mask", ["k24", "none"])
def test_a_cuda_learner_trains_and_learns(ray_local, mask, mixed_precision):
    config = two_step_config(mask, mixed_precision=mixed_precision).learners(num_learners=0, num_gpus_per_learner=1)
    algo = config.build_algo()
    try:
        module = algo.learner_group._learner.module["default_policy"].unwrapped()
        autocast: list[torch.dtype | None] = []  # the mixer's autocast dtype at each call (None: off)
        module.mixer.register_forward_hook(
            lambda *_: autocast.append(torch.get_autocast_dtype("cuda") if torch.is_autocast_enabled("cuda") else None)
        )
        steps, results = 0, []
        while steps < BUDGET:
            results.append(algo.train())
            steps = results[-1]["env_runners"]["num_env_steps_sampled_lifetime"]
        acting = algo.get_module()
        played = run_greedy_episodes(acting, make_env("two_step"), episodes=3)
    finally:
        algo.stop()

    assert {p.device.type for p in module.parameters()} == {"cuda"}
    assert {p.dtype for p in module.parameters()} == {torch.float32}  # autocast leaves the weights in fp32
    assert {p.device.type for p in acting.parameters()} == {"cpu"}
    assert autocast and set(autocast) == {torch.bfloat16 if mixed_precision else None}
    learner = results[-1]["learners"]["default_policy"]
    assert math.isfinite(learner["loss_td"]) and learner.get("num_skipped_updates", 0) == 0
    learned = module.state_dict()
    for name, weight in acting.state_dict().items():  # the EnvRunner acts with the learner's latest weights
        assert torch.equal(weight, learned[name].cpu()), name
    assert played.return_mean >= RANDOM_RETURN + 2.0, played
