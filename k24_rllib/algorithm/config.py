"""K24QMixConfig: RLlib's DQN config plus the value-decomposition and mask settings, validated."""

from __future__ import annotations

from typing import Any, Callable

from ray.rllib.algorithms.algorithm_config import NotProvided
from ray.rllib.algorithms.dqn import DQNConfig
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

from k24_rllib.algorithm.episode_buffer import TeamEpisodeBuffer
from k24_rllib.models import MASK_KINDS, MIXERS
from k24_rllib.sparsity import K24Args, KaleiArgs

MASKS_PER = ("agent", "unit_type")


class K24QMixConfig(DQNConfig):
    """Settings for K24QMix (K-2:4 masks), Kaleidoscope (``mask="kalei"``) and plain QMIX (``mask="none"``).

    Replay: whole episodes (``TeamEpisodeBuffer``, pymarl's EpisodeBatch idea), unrolled from a zero GRU state;
    each update samples about ``train_batch_size_per_learner`` env steps of episodes. ``training_intensity`` is
    trained env steps per sampled env step, and it is the replay ratio that runs (``result["replay"]``).

    Defaults follow pymarl2's QMIX ("nq"): TD(lambda=0.6), double Q, Adam lr 5e-4, grad clip 10, epsilon 1.0 ->
    0.05 over 100k env steps, hypernet embed 32 / 64, hard target update every 4000 env steps.
    """

    def __init__(self, algo_class: type | None = None) -> None:
        from k24_rllib.algorithm.algorithm import K24QMix

        super().__init__(algo_class=algo_class or K24QMix)
        self.mask = "k24"
        self.mixer = "qmix"
        self.hidden_dim = 64
        self.mixer_embed_dim = 32
        self.hypernet_dim = 64
        self.obs_agent_id = True
        self.masks_per = "agent"
        self.n_unit_types = 0
        self.unit_type_slice: tuple[int, int] | None = None
        self.K24_args: dict[str, Any] = {}
        self.kalei_args: dict[str, Any] = {}
        self.temperature_schedule: Callable[[float], float] | None = None
        self.td_lambda = 0.6
        self.t_max = 1_000_000
        self.mixed_precision = False
        self.torch_num_threads: int | None = 1
        self.max_skipped_updates = 10

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
        self._model_config = {"max_seq_len": 64}

    def training(
        self,
        *,
        mask: str | None = NotProvided,
        mixer: str | None = NotProvided,
        hidden_dim: int | None = NotProvided,
        mixer_embed_dim: int | None = NotProvided,
        hypernet_dim: int | None = NotProvided,
        obs_agent_id: bool | None = NotProvided,
        masks_per: str | None = NotProvided,
        n_unit_types: int | None = NotProvided,
        unit_type_slice: tuple[int, int] | None = NotProvided,
        K24_args: dict[str, Any] | None = NotProvided,
        kalei_args: dict[str, Any] | None = NotProvided,
        temperature_schedule: Callable[[float], float] | None = NotProvided,
        td_lambda: float | None = NotProvided,
        t_max: int | None = NotProvided,
        mixed_precision: bool | None = NotProvided,
        torch_num_threads: int | None = NotProvided,
        max_skipped_updates: int | None = NotProvided,
        **kwargs: Any,
    ) -> "K24QMixConfig":
        """DQN's ``training()`` plus:

        Args:
            mask: "k24" (learnable 2:4 patterns), "kalei" (Kaleidoscope soft thresholds) or "none" (shared QMIX).
            mixer: "qmix" (monotonic hypernetwork mixer) or "vdn" (sum).
            hidden_dim: width of the agent network (GRU and fc layers).
            mixer_embed_dim, hypernet_dim: QMIX mixer sizes (pymarl: 32 and 64).
            obs_agent_id: append a one-hot agent id to every agent's observation (pymarl's default).
            masks_per: one mask per "agent", or per "unit_type" (SMACv2; needs the env's unit-type bits).
            n_unit_types, unit_type_slice: unit-type count and the slice of each observation holding the one-hot
                type; filled from the env family by ``environment()`` when it knows them.
            K24_args, kalei_args: mask settings (see ``K24Args`` / ``KaleiArgs``; unknown keys are rejected).
            temperature_schedule: optional callable progress -> temperature replacing the built-in schedule.
            td_lambda: TD(lambda); 0 gives 1-step targets.
            t_max: the training budget in env steps; progress = t_env / t_max drives temperature and resets.
            mixed_precision: autocast the learner's forward to bf16 on CUDA (ignored on CPU).
            torch_num_threads: intra-op threads of a CPU learner; 1 by default because the sequence unroll is
                made of many tiny ops, where thread hand-offs cost more than they save (measured ~10x on 2 cores
                shared with rollout workers). None leaves torch's default.
            max_skipped_updates: updates with a non-finite loss or gradient are skipped (and counted as
                ``num_skipped_updates``); this many in a row stop training with a one-line error.
        """
        super().training(**kwargs)
        for name, value in {
            "mask": mask,
            "mixer": mixer,
            "hidden_dim": hidden_dim,
            "mixer_embed_dim": mixer_embed_dim,
            "hypernet_dim": hypernet_dim,
            "obs_agent_id": obs_agent_id,
            "masks_per": masks_per,
            "n_unit_types": n_unit_types,
            "unit_type_slice": unit_type_slice,
            "K24_args": K24_args,
            "kalei_args": kalei_args,
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
        self._check_choice("mask", tuple(MASK_KINDS))
        self._check_choice("mixer", MIXERS)
        self._check_choice("masks_per", MASKS_PER)
        K24Args.from_dict(self.K24_args)
        KaleiArgs.from_dict(self.kalei_args)
        if not 0.0 <= self.td_lambda <= 1.0:
            self._value_error(f"td_lambda={self.td_lambda!r} is invalid: must be in [0, 1]")
        for name in ("t_max", "hidden_dim", "mixer_embed_dim", "hypernet_dim", "max_skipped_updates"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) <= 0:
                self._value_error(f"{name}={getattr(self, name)!r} is invalid: must be a positive integer")
        if self.masks_per == "unit_type" and (self.unit_type_slice is None or self.n_unit_types < 1):
            self._value_error(
                "masks_per='unit_type' needs the env's unit-type bits: use a SMACv2 scenario "
                "(env 'smacv2') or set n_unit_types and unit_type_slice in training()"
            )

    def _check_choice(self, name: str, valid: tuple[str, ...]) -> None:
        if getattr(self, name) not in valid:
            self._value_error(f"{name}={getattr(self, name)!r} is invalid: choose one of {', '.join(valid)}")

    def get_default_rl_module_spec(self) -> RLModuleSpec:
        from k24_rllib.algorithm.rl_module import K24QMixModule

        per_type = self.masks_per == "unit_type"
        return RLModuleSpec(
            module_class=K24QMixModule,
            model_config={
                **self.model_config,
                "mask": self.mask,
                "mixer": self.mixer,
                "hidden_dim": self.hidden_dim,
                "mixer_embed_dim": self.mixer_embed_dim,
                "hypernet_dim": self.hypernet_dim,
                "obs_agent_id": self.obs_agent_id,
                "K24_args": dict(self.K24_args),
                "kalei_args": dict(self.kalei_args),
                "unit_type_slice": self.unit_type_slice if per_type else None,
                "n_unit_types": self.n_unit_types if per_type else 0,
            },
        )

    def get_default_learner_class(self) -> type:
        from k24_rllib.algorithm.learner import K24QMixLearner

        return K24QMixLearner


def _default_callbacks() -> type:
    from k24_rllib.algorithm.callbacks import K24Callbacks

    return K24Callbacks
