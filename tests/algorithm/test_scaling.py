"""The training step's promises: the configured replay ratio is the one that runs, remote sampling overlaps
learning, and RLlib's multi-learner (DDP) path trains."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

pytest.importorskip("jaxmarl")

from k24_rllib import K24QMixConfig  # noqa: E402
from k24_rllib.algorithm.algorithm import SAMPLE_TAG  # noqa: E402
from k24_rllib.algorithm.callbacks import K24Callbacks  # noqa: E402
from k24_rllib.algorithm.learner import K24QMixLearner  # noqa: E402

BATCH = 128
# how long a gated sample (or update) waits for its signal before it goes on anyway: only a failing run waits
GATE_TIMEOUT_S = 30.0


def config(num_env_runners: int, intensity: float, **learners) -> K24QMixConfig:
    return (
        K24QMixConfig()
        .environment("smac", env_config={"map_name": "3m"})
        # every runner's first sample compiles SMAX, over a minute on a loaded machine: collect all of it, so the
        # first iteration always trains on both runners' samples
        .env_runners(num_env_runners=num_env_runners, num_envs_per_env_runner=2, num_cpus_per_env_runner=0.5,
                     gym_env_vectorize_mode="vector_entry_point", sample_timeout_s=600)
        .learners(**learners)
        .training(t_max=20_000, num_steps_sampled_before_learning_starts=200, train_batch_size_per_learner=BATCH,
                  training_intensity=intensity)
        .reporting(min_sample_timesteps_per_iteration=600)
        .debugging(seed=0)
    )


@pytest.mark.parametrize("runners", [0, 2])
def test_the_configured_replay_ratio_is_the_one_that_runs(ray_local, runners):
    """RLlib's DQN step would train 1.5x the configured ratio with 2 remote runners (it counts a local one)."""
    algo = config(runners, intensity=4.0).build_algo()
    try:
        results = [algo.train() for _ in range(3)]
        if runners:  # the next sample is already running while the caller looks at this result
            assert algo.env_runner_group.num_in_flight_async_reqs(tag=SAMPLE_TAG) == runners
    finally:
        algo.stop()
    replay = results[-1]["replay"]
    # credit carries over between iterations, so one iteration is off by less than a batch either way
    tolerance = 2 * BATCH / replay["num_env_steps_sampled"]
    assert replay["replay_ratio"] == pytest.approx(4.0, abs=4.0 * tolerance)
    lifetime = replay["num_env_steps_trained_lifetime"] / replay["num_env_steps_sampled_lifetime"]
    assert replay["replay_ratio_lifetime"] == pytest.approx(lifetime)
    assert 2.5 < lifetime <= 4.0 + tolerance  # below 4: no training before learning starts
    # whole episodes padded to the longest in their batch: the padded batches hold the trained steps and more
    assert replay["num_padded_steps_trained"] >= replay["num_env_steps_trained"] > 0
    assert replay["learner_batch_real_share"] == pytest.approx(
        replay["num_env_steps_trained"] / replay["num_padded_steps_trained"])


def gated_second_sample(gate: Path) -> type[K24Callbacks]:
    """Callbacks under which each EnvRunner's second sample finishes only when ``gate/open`` exists (or after
    GATE_TIMEOUT_S), then leaves ``gate/done_<runner index>``; defined here so that Ray pickles it by value."""

    class GatedSecondSample(K24Callbacks):
        def __init__(self) -> None:
            super().__init__()
            self.samples = 0

        def on_sample_end(self, *, env_runner=None, **kwargs) -> None:
            self.samples += 1
            if self.samples == 2:
                deadline = time.monotonic() + GATE_TIMEOUT_S
                while not (gate / "open").exists() and time.monotonic() < deadline:
                    time.sleep(0.02)
                (gate / f"done_{env_runner.worker_index}").touch()

    return GatedSecondSample


def test_the_next_sample_runs_while_the_iteration_ends(ray_local, tmp_path):
    """RLlib ends every iteration by asking each remote EnvRunner for its connector states, a call that queues
    behind the sample ``training_step`` started and so waits for it; K24QMixConfig turns that merge off
    (nothing here keeps connector state), so ``train()`` returns while the runners sample."""
    settings = (
        config(2, intensity=1.0)
        .callbacks(gated_second_sample(tmp_path))
        .reporting(min_sample_timesteps_per_iteration=1)  # one training_step per train()
    )
    # were the merge on, its wait must outlast the gate's, or train() would return on the merge's timeout
    settings.sync_filters_on_rollout_workers_timeout_s = 2 * GATE_TIMEOUT_S
    algo = settings.build_algo()
    try:
        algo.train()  # samples once, trains, starts each runner's gated second sample
        finished_before_gate = sorted(path.name for path in tmp_path.glob("done_*"))
        (tmp_path / "open").touch()
        algo.train()  # collects the second samples
        finished = sorted(path.name for path in tmp_path.glob("done_*"))
    finally:
        algo.stop()
    assert finished_before_gate == []
    assert finished == ["done_1", "done_2"]


def overlap_probe(marks: Path) -> tuple[type[K24Callbacks], type[K24QMixLearner]]:
    """Runners that leave ``marks/second_sample_running`` while their second sample steps, and a learner whose
    first update waits for that mark (at most GATE_TIMEOUT_S) and writes whether it came into ``first_update``."""
    running = marks / "second_sample_running"

    class MarkSecondSample(K24Callbacks):
        def __init__(self) -> None:
            super().__init__()
            self.samples_done = 0

        def on_sample_end(self, **kwargs) -> None:
            self.samples_done += 1

        def on_episode_step(self, **kwargs) -> None:
            if self.samples_done == 1:
                running.touch()

    class WaitForSecondSample(K24QMixLearner):
        def before_gradient_based_update(self, *, timesteps) -> None:
            if not (marks / "first_update").exists():
                deadline = time.monotonic() + GATE_TIMEOUT_S
                while not running.exists() and time.monotonic() < deadline:
                    time.sleep(0.02)
                (marks / "first_update").write_text(str(running.exists()))
            super().before_gradient_based_update(timesteps=timesteps)

    return MarkSecondSample, WaitForSecondSample


def test_the_learner_trains_while_the_runners_sample(ray_local, tmp_path):
    """The first update waits for the runners' second sample to step: it can only come if that sample was started
    before the updates (it would start after them if sampling and learning took turns)."""
    callbacks, learner = overlap_probe(tmp_path)
    algo = (
        config(2, intensity=1.0)
        .callbacks(callbacks)
        .training(learner_class=learner)
        .reporting(min_sample_timesteps_per_iteration=1)
        .build_algo()
    )
    try:
        algo.train()
    finally:
        algo.stop()
    assert (tmp_path / "first_update").read_text() == "True"


def test_two_cpu_learners_train_with_ddp(ray_local):
    algo = config(0, intensity=2.0, num_learners=2, num_cpus_per_learner=0.5).build_algo()
    try:
        results = [algo.train() for _ in range(2)]
        weights = algo.learner_group.foreach_learner(
            lambda learner: learner.module["default_policy"].unwrapped().agent.fc1.weight.detach().clone()
        )
    finally:
        algo.stop()
    learner = results[-1]["learners"]["default_policy"]
    assert learner["loss_td"] == pytest.approx(learner["loss_td"]) and learner["overall_sparsity"] == 0.5
    assert results[-1]["replay"]["num_env_steps_trained"] > 0
    first, second = [result.get() for result in weights]
    assert (first == second).all()  # DDP keeps the two learners' shared weights identical
