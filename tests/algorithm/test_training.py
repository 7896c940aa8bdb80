"""K24QMix end to end on Ray: remote rollout workers, the spec's metrics, schedules on every worker, and
checkpoint -> Algorithm.from_checkpoint -> identical weights, greedy actions and a continuing schedule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

pytest.importorskip("jaxmarl")

from k24_rllib import K24QMixConfig  # noqa: E402
from k24_rllib.algorithm.evaluation import greedy_actions, run_greedy_episodes  # noqa: E402
from k24_rllib.envs import make_env  # noqa: E402
from k24_rllib.sparsity import K24Args, make_temperature_schedule  # noqa: E402

T_MAX = 20_000
SPEC_LEARNER_METRICS = [
    "loss_td", "div_loss", "div_coef", "loss", "temperature", "progress", "epsilon",
    "pattern_mean_similarity", "pattern_max_similarity", "pattern_min_similarity",
    *(f"pattern_{k}_prob" for k in range(6)), "pattern_entropy",
    *(f"sparsity_layer_{k}" for k in range(4)), "overall_sparsity",
    "q_taken_mean", "target_mean", "td_error_abs", "gradients_default_optimizer_global_norm", "t_env",
]


def small_config(env: str, env_config: dict[str, Any], **training: Any) -> K24QMixConfig:
    """Two remote workers on fractional CPUs and a tiny budget per iteration."""
    return (
        K24QMixConfig()
        .environment(env, env_config=env_config)
        .env_runners(
            num_env_runners=2,
            num_envs_per_env_runner=2,
            num_cpus_per_env_runner=0.5,
            gym_env_vectorize_mode="vector_entry_point" if env == "smac" else "sync",
        )
        .training(
            t_max=T_MAX,
            num_steps_sampled_before_learning_starts=100,
            train_batch_size_per_learner=128,
            training_intensity=4.0,
            **training,
        )
        .evaluation(
            evaluation_interval=1,
            evaluation_duration=2,
            evaluation_duration_unit="episodes",
            evaluation_num_env_runners=0,
            evaluation_config=K24QMixConfig.overrides(explore=False),
        )
        .reporting(min_sample_timesteps_per_iteration=300)
        .debugging(seed=0)
    )


def worker_temperatures(algo: Any) -> list[float]:
    return algo.env_runner_group.foreach_env_runner(
        lambda runner: float(runner.module.agent.fc1.temperature), local_env_runner=False
    )


def learner_module(algo: Any) -> Any:
    return algo.learner_group._learner.module["default_policy"]


def env_steps(result: dict[str, Any]) -> int:
    return int(result["env_runners"]["num_env_steps_sampled_lifetime"])


@pytest.fixture(scope="module")
def smax_run(ray_local, tmp_path_factory) -> dict[str, Any]:
    algo = small_config("smac", {"map_name": "3m"}).build_algo()
    results = [algo.train() for _ in range(2)]
    path = tmp_path_factory.mktemp("ckpt")
    algo.save_to_path(str(path))
    run = {"algo": algo, "results": results, "path": path}
    yield run
    algo.stop()


def test_two_iterations_report_every_spec_metric(smax_run):
    result = smax_run["results"][-1]
    learner = result["learners"]["default_policy"]
    missing = [name for name in SPEC_LEARNER_METRICS if name not in learner]
    assert not missing, f"missing learner metrics: {missing}"
    for name in ("episode_return_mean", "episode_len_mean", "win_rate"):
        assert name in result["env_runners"], name
    assert "win_rate" in result["evaluation"]["env_runners"]
    assert learner["overall_sparsity"] == pytest.approx(0.5)
    assert 0.0 <= result["env_runners"]["win_rate"] <= 1.0
    changes = [learner[f"mask_change_layer_{k}"] for k in range(4)]  # since the previous batch's argmax masks
    assert all(0.0 <= c <= 1.0 for c in changes) and min(changes) <= learner["mask_change"] <= max(changes)


def test_temperature_follows_the_schedule_on_learner_and_every_worker(smax_run):
    result, algo = smax_run["results"][-1], smax_run["algo"]
    learner = result["learners"]["default_policy"]
    t_env = learner["t_env"]  # the step of the iteration's last update
    assert 0 < t_env <= env_steps(result)
    expected = make_temperature_schedule(K24Args(), T_MAX)(t_env)
    assert learner["temperature"] == pytest.approx(expected, rel=1e-5)
    assert learner["progress"] == pytest.approx(t_env / T_MAX)
    learner_temperature = float(learner_module(algo).agent.fc1.temperature)
    assert learner_temperature == pytest.approx(expected, rel=1e-5)
    assert worker_temperatures(algo) == pytest.approx([learner_temperature] * 2)
    assert learner["temperature"] < K24Args().temperature_init


def test_restore_gives_identical_weights_actions_and_continues_the_schedule(smax_run):
    from ray.rllib.algorithms.algorithm import Algorithm

    algo, path = smax_run["algo"], Path(smax_run["path"])
    saved_steps = env_steps(smax_run["results"][-1])
    restored = Algorithm.from_checkpoint(str(path))
    try:
        before, after = algo.get_module().state_dict(), restored.get_module().state_dict()
        assert before.keys() == after.keys()
        assert all(torch.equal(before[k], after[k]) for k in before)
        assert worker_temperatures(restored) == pytest.approx(worker_temperatures(algo))

        env = make_env("smac", map_name="3m")
        obs, _ = env.reset(seed=3)
        for module in (algo.get_module(), restored.get_module()):
            module.eval()
        state_a = algo.get_module().get_initial_state()
        state_b = restored.get_module().get_initial_state()
        for _ in range(5):
            act_a, state_a = greedy_actions(algo.get_module(), obs, state_a)
            act_b, state_b = greedy_actions(restored.get_module(), obs, state_b)
            np.testing.assert_array_equal(act_a, act_b)
            obs, *_ = env.step(act_a)

        saved_controller = algo.learner_group._learner.controllers["default_policy"].state_dict()
        restored_controller = restored.learner_group._learner.controllers["default_policy"].state_dict()
        assert restored_controller["coefficient"] == saved_controller["coefficient"]

        result = restored.train()
        assert env_steps(result) > saved_steps  # counts on from the checkpoint, not from zero
        learner = result["learners"]["default_policy"]
        assert learner["t_env"] > saved_steps
        expected = make_temperature_schedule(K24Args(), T_MAX)(learner["t_env"])
        assert learner["temperature"] == pytest.approx(expected, rel=1e-5)

        evaluation = restored.evaluate()
        assert "win_rate" in evaluation["env_runners"]
        greedy = run_greedy_episodes(restored.get_module(), env, episodes=2)
        assert greedy.episodes == 2 and greedy.win_rate is not None
    finally:
        restored.stop()


def test_mpe_trains_with_remote_workers_and_reports_metrics(ray_local):
    pytest.importorskip("mpe2")
    algo = small_config("mpe", {"task": "simple_spread"}, mask="kalei").build_algo()
    try:
        results = [algo.train() for _ in range(2)]
    finally:
        algo.stop()
    learner = results[-1]["learners"]["default_policy"]
    for name in ("loss_td", "div_loss", "div_coef", "loss", "overall_sparsity", "sparsity_layer_3"):
        assert name in learner, name
    assert np.isfinite(results[-1]["env_runners"]["episode_return_mean"])
    assert env_steps(results[-1]) > env_steps(results[0])
