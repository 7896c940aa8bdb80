"""K24QMixConfig: RLlib's DQN config plus the value-decomposition and mask settings, validated."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

from ray.rllib.algorithms.algorithm_config import NotProvided
from ray.rllib.algorithms.dqn import DQNConfig
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

from k24_rllib.algorithm.episode_buffer import TeamEpisodeBuffer
from k24_rllib.models import ModelSettings


class K24QMixConfig(DQNConfig):
    """Settings for K24QMix (K-2:4 masks), Kaleidoscope (``mask="kalei"``) and plain QMIX (``mask="none"``).

    Replay: whole episodes (``TeamEpisodeBuffer``, pymarl's EpisodeBatch idea), unrolled from a zero GRU state;
    each update samples about ``train_batch_size_per_learner`` env steps of episodes. ``training_intensity`` is
    trained env steps per sampled env step, and it is the replay ratio that runs (``result["replay"]``).

    Defaults follow pymarl2's QMIX ("nq"): TD(lambda=0.6), double Q, Adam, grad clip 10, epsilon 1.0 -> 0.05 over
    100k env steps, hypernet embed 32 / 64, hard target update every 4000 env steps; the learning rate is 5e-4
    (pymarl's; pymarl2's config uses 1e-3).
    """

    def __init__(self, algo_class: type | None = None) -> None:
        from k24_rllib.algorithm.algorithm import K24QMix

        super().__init__(algo_class=algo_class or K24QMix)
        for name, value in ModelSettings().to_dict().items():  # mask, mixer, hidden_dim, K24_args, ...
            setattr(self, name, value)
        self.temperature_schedule: Callable[[float], float] | None = None
        self.td_lambda = 0.6
        self.t_max = 1_000_000
        self.mixed_precision = False
        self.torch_num_threads: int | None = 1
        self.max_skipped_updates = 10
        self.torch_skip_nan_gradients = True  # the learner skips non-finite updates itself; no second check

        # DQN settings with pymarl2-like values (see the class docstring).
        self.double_q = True
        self.lr = 5e-4
        self.grad_clip = 10.0
        self.grad_clip_by = "global_norm"
        self.gamma = 0.99
        self.epsilon = [(0, 1.0), (100_000, 0.05)]
        self.target_network_update_freq = 4000
        self.tau = 1.0
        self.n_step = 1
        self.dueling = False
        self.train_batch_size_per_learner = 1024
        self.training_intensity = 32.0
        self.num_steps_sampled_before_learning_starts = 2000
        self.replay_buffer_config = {"type": TeamEpisodeBuffer, "capacity": 200_000}
        self.rollout_fragment_length = 64
        self.callbacks_class = _default_callbacks()
        self.min_sample_timesteps_per_iteration = 1000
        # RLlib ends each iteration by merging the remote EnvRunners' connector states, a blocking call that
        # queues behind the sample running in the background, so every iteration would end waiting for it.
        # These connectors keep no state (no observation filters); a user who adds one turns the merge back on.
        self.merge_env_runner_states = False
        self.broadcast_env_runner_states = False
        self._model_config = {"max_seq_len": 64}

    def training(
        self,
        *,
        temperature_schedule: Callable[[float], float] | None = NotProvided,
        td_lambda: float | None = NotProvided,
        t_max: int | None = NotProvided,
        mixed_precision: bool | None = NotProvided,
        torch_num_threads: int | None = NotProvided,
        max_skipped_updates: int | None = NotProvided,
        **kwargs: Any,
    ) -> "K24QMixConfig":
        """DQN's ``training()`` plus the network's settings (every field of ``ModelSettings``: ``mask``,
        ``mixer``, ``hidden_dim``, ``K24_args``, ...; documented there) and:

        Args:
            temperature_schedule: optional callable replacing the built-in schedule's shape: it receives the
                annealing fraction in [0, 1] (0 at ``anneal_start``, 1 at ``anneal_end``) and returns tau.
            td_lambda: TD(lambda); 0 gives 1-step targets.
            t_max: the training budget in env steps; progress = t_env / t_max drives temperature and resets.
            mixed_precision: autocast the learner's forward to bf16 on CUDA (ignored on CPU).
            torch_num_threads: intra-op threads of a CPU learner; 1 by default: on 2 cores shared with the
                rollout workers a second thread made a 3m update 9% faster and training no faster (BENCHMARKS.md,
                "Two learner threads do not help"). None leaves torch's default.
            max_skipped_updates: updates with a non-finite loss or gradient are skipped (and counted as
                ``num_skipped_updates``); this many in a row stop training with a one-line error.
        """
        model = {name: kwargs.pop(name) for name in ModelSettings.names() if name in kwargs}
        super().training(**kwargs)
        for name, value in {
            **model,
            "temperature_schedule": temperature_schedule,
            "td_lambda": td_lambda,
            "t_max": t_max,
            "mixed_precision": mixed_precision,
            "torch_num_threads": torch_num_threads,
            "max_skipped_updates": max_skipped_updates,
        }.items():
            if value is not NotProvided:
                setattr(self, name, value)
        return self

    def environment(self, env: Any = NotProvided, **kwargs: Any) -> "K24QMixConfig":
        """RLlib's ``environment()``; for this package's env families it also reads the episode limit and
        unit-type layout, so sequences fit the episodes and per-type masks find their bits."""
        super().environment(env, **kwargs)
        if not isinstance(self.env, str):
            return self
        from k24_rllib.envs import ENV_FAMILIES, env_info_for

        if self.env in ENV_FAMILIES:
            info = env_info_for(self.env, **dict(self.env_config))
            self._model_config = {**self._model_config, "max_seq_len": info.episode_limit + 1}
            if info.unit_type_slice is not None:
                self.n_unit_types = info.n_unit_types
                self.unit_type_slice = tuple(info.unit_type_slice)
        return self

    def validate(self) -> None:
        super().validate()
        ModelSettings.from_mapping(vars(self))
        if not 0.0 <= self.td_lambda <= 1.0:
            self._value_error(f"td_lambda={self.td_lambda!r} is invalid: must be in [0, 1]")
        for name in ("t_max", "max_skipped_updates"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) <= 0:
                self._value_error(f"{name}={getattr(self, name)!r} is invalid: must be a positive integer")

    def get_default_rl_module_spec(self) -> RLModuleSpec:
        from k24_rllib.algorithm.rl_module import K24QMixModule

        settings = ModelSettings.from_mapping(vars(self))
        if not settings.per_unit_type:  # the module takes masks per unit type exactly when it gets their bits
            settings = dataclasses.replace(settings, n_unit_types=0, unit_type_slice=None)
        return RLModuleSpec(module_class=K24QMixModule, model_config={**self.model_config, **settings.to_dict()})

    def get_default_learner_class(self) -> type:
        from k24_rllib.algorithm.learner import K24QMixLearner

        return K24QMixLearner


def _default_callbacks() -> type:
    from k24_rllib.algorithm.callbacks import K24Callbacks

    return K24Callbacks
