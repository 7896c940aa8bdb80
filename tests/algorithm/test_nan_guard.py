"""A non-finite loss never reaches the weights: the update is skipped and counted; too many in a row stop training
with an error that names the loss term and the env step."""

from __future__ import annotations

import pytest
import torch

from k24_rllib import K24QMixConfig
from k24_rllib.algorithm.learner import K24QMixLearner, NonFiniteTrainingError


def poison_td_loss(monkeypatch: pytest.MonkeyPatch, calls: list[int]) -> None:
    """Makes the TD loss NaN for the update numbers listed in ``calls`` (counted from 0)."""
    original = K24QMixLearner.compute_loss_for_module
    count = [0]

    def poisoned(self, **kwargs):
        fwd_out = kwargs["fwd_out"]
        if count[0] in calls:
            fwd_out = {**fwd_out, "q": fwd_out["q"] * float("nan")}
        count[0] += 1
        return original(self, **{**kwargs, "fwd_out": fwd_out})

    monkeypatch.setattr(K24QMixLearner, "compute_loss_for_module", poisoned)


def build(max_skipped: int):
    return small_config(max_skipped).build_algo()


def small_config(max_skipped: int) -> K24QMixConfig:
    return (
        K24QMixConfig()
        .environment("two_step")
        .env_runners(num_env_runners=0, num_envs_per_env_runner=4)
        .training(t_max=5_000, num_steps_sampled_before_learning_starts=40, train_batch_size_per_learner=32,
                  training_intensity=4.0, max_skipped_updates=max_skipped)
        .reporting(min_sample_timesteps_per_iteration=200)
        .debugging(seed=0)
    )


def test_a_nan_update_is_skipped_and_counted(ray_local, monkeypatch):
    poison_td_loss(monkeypatch, calls=[3])
    algo = build(max_skipped=3)
    try:
        result = algo.train()
        weights = algo.get_module().state_dict()
        controller = algo.learner_group._learner.controllers["default_policy"]
    finally:
        algo.stop()
    assert result["learners"]["default_policy"]["num_skipped_updates"] == 1
    assert all(torch.isfinite(w).all() for w in weights.values())
    assert all(v == v for v in controller.coefficient.td_history)  # no NaN in the adaptive coefficient


def test_repeated_nan_updates_stop_training_naming_the_term(ray_local, monkeypatch):
    poison_td_loss(monkeypatch, calls=list(range(1000)))
    algo = build(max_skipped=3)
    try:
        with pytest.raises(NonFiniteTrainingError, match=r"TD loss not finite for 3 updates in a row at env step \d+"):
            algo.train()
        assert all(torch.isfinite(w).all() for w in algo.get_module().state_dict().values())
    finally:
        algo.stop()


def test_the_cli_reports_it_in_one_line_with_the_last_checkpoint(ray_local, monkeypatch, tmp_path):
    from k24_rllib.cli import CliError
    from k24_rllib.experiment import train

    poison_td_loss(monkeypatch, calls=list(range(1000)))
    config = small_config(max_skipped=3)
    with pytest.raises(CliError, match=r"TD loss not finite .* no checkpoint was saved$"):
        train(config, tmp_path, resume=False, checkpoint_every=1, quiet=True)


def test_a_checkpoint_with_nan_weights_is_refused_naming_the_tensor(ray_local, tmp_path):
    from ray.rllib.algorithms.algorithm import Algorithm

    algo = build(max_skipped=3)
    try:
        algo.train()
        module = algo.learner_group._learner.module["default_policy"]
        with torch.no_grad():
            module.agent.fc2.weight[0, 0] = float("nan")
        algo.save_to_path(str(tmp_path))
    finally:
        algo.stop()
    with pytest.raises(ValueError, match=r"tensor agent\.fc2\.weight holds NaN/inf"):
        Algorithm.from_checkpoint(str(tmp_path))
