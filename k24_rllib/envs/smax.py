"""SMAC maps and SMACv2-style scenarios on JaxMARL's SMAX, as team envs (single and vectorised).

Both classes drive the same jitted core (``smax_core``): ``SmaxTeamEnv`` is one env,
``SmaxVectorEnv`` steps k copies in one vmapped call so an RLlib EnvRunner samples many episodes
per call. jax is imported only when an env is built.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from .smax_scenarios import SMAC_MAPS, SMACV2_SCENARIOS, SmaxScenario, lookup
from .team import EnvInfo, IllegalActionPolicy, TeamEnv, enforce_legal, team_spaces

SMAX_SCENARIOS: dict[str, SmaxScenario] = {**SMAC_MAPS, **SMACV2_SCENARIOS}


def _core(map_name: str, reward_scale: bool, reward_scale_rate: float, walls_cause_death: bool,
          episode_limit: int | None) -> tuple[Any, EnvInfo]:
    """The cached jitted core for these settings (imports jax on first use) and the env's info."""
    scenario = lookup(SMAX_SCENARIOS, map_name, "SMAX map or scenario")
    from .smax_core import SmacReward, get_core  # noqa: PLC0415 - jax is optional

    reward = SmacReward(scale=reward_scale, scale_rate=reward_scale_rate)
    return get_core(scenario, reward, walls_cause_death), scenario.env_info(episode_limit)


def _to_numpy(out: Any) -> dict[str, np.ndarray]:
    """Device outputs as a dict of writable numpy copies.

    ``np.array`` per array costs a few us on CPU; ``jax.device_get`` costs ~40 us per array.
    """
    return {key: np.array(value) for key, value in out._asdict().items()}


def _observation(out: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {"obs": out["obs"], "state": out["state"], "action_mask": out["action_mask"]}


def _infos(out: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: out[k] for k in ("battle_won", "dead_allies", "dead_enemies")}


class SmaxTeamEnv(TeamEnv):
    """One SMAX battle as a team env (SMAC semantics: see docs/environments.md).

    Args:
        map_name: a SMAC map ("3m", "2s3z", ...) or SMACv2-style scenario ("protoss_5_vs_5").
        reward_scale: scale rewards so that a won battle sums to ``reward_scale_rate`` (SMAC).
        reward_scale_rate: the scaled return of a won battle (SMAC: 20).
        seed: seed of the first ``reset()`` called without one.
        episode_limit: steps before truncation; default the map's SMAC/SMACv2 limit.
        walls_cause_death: SMAX kills units touching the map edge; SMAC does not (default False).
        on_illegal_action: "raise" (default) or "replace" with the no-op/stop action.
    """

    def __init__(self, map_name: str = "3m", reward_scale: bool = True, seed: int | None = None, *,
                 reward_scale_rate: float = 20.0, episode_limit: int | None = None,
                 walls_cause_death: bool = False,
                 on_illegal_action: IllegalActionPolicy = "raise") -> None:
        self._core, info = _core(map_name, reward_scale, reward_scale_rate, walls_cause_death,
                                 episode_limit)
        super().__init__(info, on_illegal_action)
        self.map_name = map_name
        self._seed = seed
        self._carry: Any = None
        self._mask: np.ndarray | None = None
        self._no_reset = np.zeros(1, dtype=bool)

    def reset(self, *, seed: int | None = None, options: dict | None = None
              ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        if seed is None and self._carry is None:
            seed = self._seed if self._seed is not None else int(self.np_random.integers(2**31))
        rngs = self._core.keys([seed]) if seed is not None else self._carry.rng
        self._carry, out = self._core.reset(rngs, np.full(1, self.env_info.episode_limit, np.int32))
        return self._emit(out)[0], {}

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        if self._mask is None:
            raise RuntimeError("call reset() before step()")
        actions = self._legal(action, self._mask)
        self._carry, out = self._core.step(self._carry, actions[None].astype(np.int32), self._no_reset)
        obs, out = self._emit(out)
        info = {k: v.item() for k, v in _infos(out).items()}
        return obs, float(out["reward"]), bool(out["terminated"]), bool(out["truncated"]), info

    def _emit(self, out: Any) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Unbatched observation dict and the numpy outputs; remembers the mask for the next step."""
        arrays = {k: v[0] for k, v in _to_numpy(out).items()}
        self._mask = arrays["action_mask"]
        return _observation(arrays), arrays


class SmaxVectorEnv(gym.vector.VectorEnv):
    """k SMAX battles stepped in one jitted, vmapped call; numpy in and out.

    Autoreset is gymnasium's NEXT_STEP mode (what RLlib 2.60's SingleAgentEnvRunner expects):
    the step after an episode ends ignores that env's action and returns the first observation
    of its next episode with reward 0, no termination and no info (``_battle_won`` False).
    Sub-env i seeded with ``seed + i`` reproduces ``SmaxTeamEnv`` reset with that seed.
    Arguments are those of ``SmaxTeamEnv``.
    """

    def __init__(self, num_envs: int, map_name: str = "3m", reward_scale: bool = True,
                 seed: int | None = None, *, reward_scale_rate: float = 20.0,
                 episode_limit: int | None = None, walls_cause_death: bool = False,
                 on_illegal_action: IllegalActionPolicy = "raise") -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self._core, self.env_info = _core(map_name, reward_scale, reward_scale_rate,
                                          walls_cause_death, episode_limit)
        self.num_envs = num_envs
        self.map_name = map_name
        self.on_illegal_action: IllegalActionPolicy = on_illegal_action
        self.single_observation_space, self.single_action_space = team_spaces(self.env_info)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, num_envs)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, num_envs)
        self.metadata = {"autoreset_mode": gym.vector.AutoresetMode.NEXT_STEP}
        self._seed = seed
        self._carry: Any = None
        self._mask: np.ndarray | None = None
        self._needs_reset = np.zeros(num_envs, dtype=bool)

    def reset(self, *, seed: int | list[int] | None = None, options: dict | None = None
              ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        if seed is None and self._carry is None:
            seed = self._seed
        if seed is None and self._carry is not None:
            rngs = self._carry.rng
        else:
            rngs = self._core.keys(self._seeds(seed))
        limits = np.full(self.num_envs, self.env_info.episode_limit, np.int32)
        self._carry, out = self._core.reset(rngs, limits)
        self._needs_reset[:] = False
        return self._emit(out)[0], {}

    def step(self, actions: Any) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray,
                                          dict[str, Any]]:
        if self._mask is None:
            raise RuntimeError("call reset() before step()")
        actions = np.asarray(actions).reshape(self.num_envs, self.env_info.n_agents)
        # Envs about to autoreset ignore their action; check only the others.
        mask = np.where(self._needs_reset[:, None, None], 1.0, self._mask)
        actions = enforce_legal(actions, mask, self.on_illegal_action, self.env_info.noop_action)
        resetting = self._needs_reset.copy()
        self._carry, out = self._core.step(self._carry, actions.astype(np.int32), resetting)
        obs, out = self._emit(out)
        self._needs_reset = out["terminated"] | out["truncated"]
        infos: dict[str, Any] = {}
        for key, value in _infos(out).items():
            infos[key], infos[f"_{key}"] = value, ~resetting
        return obs, out["reward"], out["terminated"], out["truncated"], infos

    def _seeds(self, seed: int | list[int] | None) -> list[int]:
        """Per-env seeds: ``seed + i`` for an int (gymnasium's convention), fresh ones for None."""
        if seed is None:
            return np.random.default_rng().integers(2**31, size=self.num_envs).tolist()
        if isinstance(seed, int):
            return [seed + i for i in range(self.num_envs)]
        if len(seed) != self.num_envs:
            raise ValueError(f"got {len(seed)} seeds for {self.num_envs} envs")
        return list(seed)

    def _emit(self, out: Any) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        arrays = _to_numpy(out)
        self._mask = arrays["action_mask"]
        return _observation(arrays), arrays
