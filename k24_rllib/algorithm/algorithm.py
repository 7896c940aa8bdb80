"""K24QMix: value decomposition with K-2:4 masks, on DQN's algorithm with a training step of its own."""

from __future__ import annotations

from typing import Any

from ray.rllib.algorithms.dqn import DQN
from ray.rllib.core import COMPONENT_LEARNER, COMPONENT_RL_MODULE, DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch
from ray.rllib.utils.from_config import from_config
from ray.rllib.utils.metrics import (
    ENV_RUNNER_RESULTS,
    ENV_RUNNER_SAMPLING_TIMER,
    LEARNER_RESULTS,
    LEARNER_UPDATE_TIMER,
    NUM_AGENT_STEPS_SAMPLED_LIFETIME,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
    REPLAY_BUFFER_ADD_DATA_TIMER,
    REPLAY_BUFFER_RESULTS,
    REPLAY_BUFFER_SAMPLE_TIMER,
    SYNCH_WORKER_WEIGHTS_TIMER,
    TIMERS,
    WEIGHTS_SEQ_NO,
)

from k24_rllib.algorithm.config import K24QMixConfig
from k24_rllib.models import first_non_finite

SAMPLE_TAG = "k24_sample"
WEIGHTS_TAG = "set_state"  # the tag RLlib's EnvRunnerGroup.sync_weights gives its pushes
REPLAY = "replay"  # result["replay"]: env steps sampled and trained, and the replay ratio that ran


def _sample_with_metrics(runner: Any) -> tuple[list[Any], dict[str, Any]]:
    """What one remote sampling request returns: episode chunks and the runner's metrics."""
    return runner.sample(), runner.get_metrics()


class K24QMix(DQN):
    """Each step (``training_step``):

    1. collect the episode chunks the EnvRunners sampled (remote runners: the sample started in the previous
       step; without remote runners the local one samples now);
    2. start the next remote sample at once, so it runs while step 3 trains; it acts with the weights of the
       previous step's end, one step behind the learner, as in asynchronous DQN;
    3. store finished episodes in the whole-episode replay (``TeamEpisodeBuffer``) and update on whole-episode
       batches until the trained env steps reach ``training_intensity`` times the sampled ones (the replay ratio
       that runs is the one configured; ``result["replay"]`` reports it);
    4. push the new weights (with epsilon and temperature, module buffers) to every runner, none skipped
       (``_push_weights``); a runner takes them when its running sample ends, before the next one.
    """

    @classmethod
    def get_default_config(cls) -> K24QMixConfig:
        return K24QMixConfig()

    def _create_local_replay_buffer_if_necessary(self, config: Any) -> Any:
        """The ``replay_buffer_config`` type as a class (what ``from_dict`` and Tune turn an import path into):
        RLlib 2.60's own builder only handles type names here."""
        settings = dict(config["replay_buffer_config"])
        return from_config(settings.pop("type"), settings)

    def setup(self, config: Any) -> None:
        super().setup(config)
        self._train_credit = 0.0  # env steps the learner may still train on (training_intensity x sampled)

    def training_step(self) -> None:
        episodes = self._collect_samples()
        samples_all_in = not self.env_runner_group.num_in_flight_async_reqs(tag=SAMPLE_TAG)
        self._start_remote_sample()
        with self.metrics.log_time((TIMERS, REPLAY_BUFFER_ADD_DATA_TIMER)):
            self.local_replay_buffer.add(episodes)
        sampled = sum(len(e) for e in episodes)
        t_env = int(self.metrics.peek((ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME), default=0))
        if t_env >= self.config.num_steps_sampled_before_learning_starts and len(self.local_replay_buffer):
            self._train_credit += self.config.training_intensity * sampled
        trained = self._train(t_env)
        if trained:
            with self.metrics.log_time((TIMERS, SYNCH_WORKER_WEIGHTS_TIMER)):
                self._push_weights(samples_all_in=samples_all_in)
        for what, steps in (("sampled", sampled), ("trained", trained)):
            self.metrics.log_value((REPLAY, f"num_env_steps_{what}"), steps, reduce="sum")
            self.metrics.log_value((REPLAY, f"num_env_steps_{what}_lifetime"), steps, reduce="lifetime_sum")

    def _collect_samples(self) -> list[Any]:
        """Episode chunks from the background sample (remote runners) or a fresh local one."""
        with self.metrics.log_time((TIMERS, ENV_RUNNER_SAMPLING_TIMER)):
            if not self.env_runner_group.num_remote_env_runners():
                episodes, metrics = _sample_with_metrics(self.env_runner)
                results = [(episodes, metrics)]
            else:
                if not self.env_runner_group.num_in_flight_async_reqs(tag=SAMPLE_TAG):
                    self._start_remote_sample()
                results = [
                    result
                    for _, result in self.env_runner_group.fetch_ready_async_reqs(
                        tags=SAMPLE_TAG, timeout_seconds=self.config.sample_timeout_s
                    )
                ]
        self.metrics.aggregate([metrics for _, metrics in results], key=ENV_RUNNER_RESULTS)
        return [episode for episodes, _ in results for episode in episodes]

    def _start_remote_sample(self) -> None:
        """Asks every idle healthy remote EnvRunner for its next sample (it runs while the learner trains)."""
        if self.env_runner_group.num_remote_env_runners():
            self.env_runner_group.foreach_env_runner_async(_sample_with_metrics, tag=SAMPLE_TAG)

    def _push_weights(self, samples_all_in: bool) -> None:
        """RLlib's ``sync_weights`` drops the push to a runner that has not yet acknowledged the previous one
        (one request in flight per tag), and a loaded runner can be that slow, then acting on weights several
        steps old. The previous push was queued right behind the sample collected at the start of this step, so
        when every sample came in, wait for those pushes first; a runner whose sample outlived
        ``sample_timeout_s`` still has it queued, and only then is its push left out."""
        self.env_runner_group.fetch_ready_async_reqs(
            tags=WEIGHTS_TAG, timeout_seconds=self.config.sample_timeout_s if samples_all_in else 0.0
        )
        self.env_runner_group.sync_weights(from_worker_or_learner_group=self.learner_group, inference_only=True)

    def _train(self, t_env: int) -> int:
        """Updates while the replay-ratio credit lasts; returns the env steps trained on."""
        trained = 0
        batch_size = self.config.train_batch_size_per_learner
        n_learners = max(1, self.config.num_learners)
        while self._train_credit >= batch_size * n_learners:
            with self.metrics.log_time((TIMERS, REPLAY_BUFFER_SAMPLE_TIMER)):
                shards = [self.local_replay_buffer.sample(batch_size) for _ in range(n_learners)]
            steps = sum(n for _, n in shards)
            padded = sum(b[Columns.LOSS_MASK].size for b, _ in shards)  # B x T per batch, padding included
            self.metrics.log_value((REPLAY, "num_padded_steps_trained"), padded, reduce="sum")
            batches = [MultiAgentBatch({DEFAULT_MODULE_ID: SampleBatch(b)}, env_steps=n) for b, n in shards]
            timesteps = {
                NUM_ENV_STEPS_SAMPLED_LIFETIME: t_env,
                NUM_AGENT_STEPS_SAMPLED_LIFETIME: self.metrics.peek(
                    (ENV_RUNNER_RESULTS, NUM_AGENT_STEPS_SAMPLED_LIFETIME), default={}
                ),
            }
            with self.metrics.log_time((TIMERS, LEARNER_UPDATE_TIMER)):
                if self.config.num_learners > 0:
                    results = self.learner_group.update(batches=batches, timesteps=timesteps)
                else:
                    results = self.learner_group.update(batch=batches[0], timesteps=timesteps)
            for learner_results in results:  # one by one: the latest-item statistics take one source each
                self.metrics.aggregate([learner_results], key=LEARNER_RESULTS)
            self._train_credit -= steps
            trained += steps
        self.metrics.log_dict(self.local_replay_buffer.get_metrics(), key=REPLAY_BUFFER_RESULTS, window=1)
        return trained

    def step(self) -> dict[str, Any]:
        """RLlib's iteration, plus the replay ratio that ran: ``result["replay"]["replay_ratio"]`` (this
        iteration's trained / sampled env steps) and ``replay_ratio_lifetime`` (the whole run's); and
        ``learner_batch_real_share``, the share of this iteration's padded learner batches that is real steps."""
        result = super().step()
        replay = result.get(REPLAY)
        if replay:
            if replay.get("num_padded_steps_trained"):
                replay["learner_batch_real_share"] = replay["num_env_steps_trained"] / replay["num_padded_steps_trained"]
            for suffix in ("", "_lifetime"):
                sampled = replay.get(f"num_env_steps_sampled{suffix}", 0)
                trained = replay.get(f"num_env_steps_trained{suffix}", 0)
                replay[f"replay_ratio{suffix}"] = trained / sampled if sampled else 0.0
        return result

    def restore_from_path(self, path: Any, *args: Any, **kwargs: Any) -> None:
        """RLlib's restore, refusing weights or buffers that hold NaN/inf, plus one more weight sync: RLlib 2.60
        can leave a remote EnvRunner on its initial weights after a restore, and here the weights carry the
        masks, epsilon and temperature."""
        super().restore_from_path(path, *args, **kwargs)
        bad = first_non_finite(self.learner_group.get_weights().get(DEFAULT_MODULE_ID, {}))
        if bad is not None:
            raise ValueError(f"checkpoint {path}: tensor {bad} holds NaN/inf; refusing to restore it")
        if self.env_runner_group is None or not self.env_runner_group.num_remote_env_runners():
            return
        # RLlib's own sync is fire-and-forget and de-duplicated by tag, so push the state and wait for it.
        learner_state = self.learner_group.get_state(
            components=f"{COMPONENT_LEARNER}/{COMPONENT_RL_MODULE}", inference_only=True
        )[COMPONENT_LEARNER]
        state = {key: learner_state[key] for key in (COMPONENT_RL_MODULE, WEIGHTS_SEQ_NO) if key in learner_state}
        self.env_runner_group.foreach_env_runner(lambda runner: runner.set_state(state), local_env_runner=False)
