"""``make_env(family, **config)``: every env family by name, single or vectorised.

RLlib calls the registered creator with ``env_config | {"num_envs": N}`` when it wants one
vectorised env object (``gym_env_vectorize_mode="vector_entry_point"``); the SMAX backend then
returns one vmapped ``SmaxVectorEnv``, the others a gymnasium ``SyncVectorEnv``.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable

import gymnasium as gym

from .smax_scenarios import SMAC_MAPS, SMACV2_SCENARIOS, lookup
from .team import EnvInfo, TeamEnv

ENV_FAMILIES = ("smac", "smacv2", "mpe", "pettingzoo", "coordination", "two_step")
BACKENDS = ("smax", "sc2")
NAME_KEYS = {"smac": "map_name", "smacv2": "scenario", "mpe": "task"}  # the config key naming the map
_DEFAULT_NAMES = {"smac": "3m", "smacv2": "protoss_5_vs_5", "mpe": "simple_spread"}


def make_env(family: str, num_envs: int | None = None, **config: Any) -> TeamEnv | gym.vector.VectorEnv:
    """Build a team env of ``family``; with ``num_envs`` a VectorEnv of that many copies.

    Families: "smac" (``map_name``, ``backend="smax"|"sc2"``), "smacv2" (``scenario`` such as
    "protoss_5_vs_5", ``backend``), "mpe" (``task``, plus mpe2 kwargs), "pettingzoo"
    (``env_factory``: a callable returning a PettingZoo ParallelEnv). Other keys go to the env.
    """
    _check_family(family)
    backend = config.pop("backend", "smax")
    if family in ("smac", "smacv2") and backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; valid: {', '.join(BACKENDS)}")
    if family in ("smac", "smacv2") and backend == "smax":
        name = _name(family, config)
        lookup(_smax_names(family), name, f"{family} name")
        if num_envs is None:
            from .smax import SmaxTeamEnv  # noqa: PLC0415 - keeps jax optional

            return SmaxTeamEnv(name, **config)
        from .smax import SmaxVectorEnv  # noqa: PLC0415

        return SmaxVectorEnv(num_envs, name, **config)
    single = _single_env_factory(family, backend, config)
    if num_envs is None:
        return single()
    return gym.vector.SyncVectorEnv([single] * num_envs)


def env_info_for(family: str, **config: Any) -> EnvInfo:
    """The ``EnvInfo`` of the env ``make_env`` would build; without building it for SMAX."""
    _check_family(family)
    if family in ("smac", "smacv2") and config.get("backend", "smax") == "smax":
        scenario = lookup(_smax_names(family), _name(family, dict(config)), f"{family} name")
        return scenario.env_info(config.get("episode_limit"))
    env = make_env(family, **config)
    try:
        return env.env_info
    finally:
        env.close()


def available_maps(family: str, backend: str = "smax") -> tuple[str, ...]:
    """Map, scenario or task names of ``family`` (empty for "pettingzoo", which takes a factory)."""
    _check_family(family)
    if family in ("smac", "smacv2"):
        if backend == "smax":
            return tuple(_smax_names(family))
        if backend == "sc2":
            from .sc2 import SC2_MAPS, SMACV2_SC2_SCENARIOS  # noqa: PLC0415

            return SC2_MAPS if family == "smac" else SMACV2_SC2_SCENARIOS
        raise ValueError(f"unknown backend {backend!r}; valid: {', '.join(BACKENDS)}")
    if family == "mpe":
        from .mpe import MPE_TASKS  # noqa: PLC0415

        return tuple(MPE_TASKS)
    return ()


def _check_family(family: str) -> None:
    if family not in ENV_FAMILIES:
        raise ValueError(f"unknown env family {family!r}; valid: {', '.join(ENV_FAMILIES)}")


def _name(family: str, config: dict[str, Any]) -> str:
    """Pop the family's name key (map_name / scenario / task) from ``config``, with its default.

    Another family's name key is refused: SMAX would otherwise build the default map and say nothing."""
    key = NAME_KEYS[family]
    for other in set(NAME_KEYS.values()) - {key}:
        if other in config:
            raise ValueError(f"{family} envs are named by {key}=..., not {other}={config[other]!r}: "
                             f"pass {key}={config[other]!r}")
    return config.pop(key, _DEFAULT_NAMES[family])


def _smax_names(family: str) -> dict:
    return SMAC_MAPS if family == "smac" else SMACV2_SCENARIOS


def _single_env_factory(family: str, backend: str, config: dict[str, Any]) -> Callable[[], TeamEnv]:
    """A zero-argument constructor of one non-SMAX team env (validates names eagerly)."""
    if family == "smac":
        from .sc2 import Sc2TeamEnv  # noqa: PLC0415

        return partial(Sc2TeamEnv, map_name=_name(family, config), **config)
    if family == "smacv2":
        from .sc2 import Sc2TeamEnv, smacv2_capability_config  # noqa: PLC0415

        map_name, capability = smacv2_capability_config(_name(family, config))
        return partial(Sc2TeamEnv, map_name=map_name, capability_config=capability, **config)
    if family == "mpe":
        from .mpe import MpeTeamEnv  # noqa: PLC0415

        return partial(MpeTeamEnv, task=_name(family, config), **config)
    if family == "coordination":
        from .coordination import DistinctActionsEnv  # noqa: PLC0415

        return partial(DistinctActionsEnv, **config)
    if family == "two_step":
        from .coordination import TwoStepGameEnv  # noqa: PLC0415

        return partial(TwoStepGameEnv, **config)
    from .parallel import ParallelTeamEnv  # noqa: PLC0415

    if "env_factory" not in config:
        raise ValueError("family 'pettingzoo' needs env_factory=<callable returning a ParallelEnv>")
    return partial(ParallelTeamEnv, **config)
