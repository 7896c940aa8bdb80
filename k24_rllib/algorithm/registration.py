"""Registers K24QMix and the env families with Ray Tune, so both work by name in configs and YAML."""

from __future__ import annotations

from typing import Any

from ray import tune

from k24_rllib.algorithm.algorithm import K24QMix

ALGORITHM_NAMES = ("K24QMix", "k24_nq")


def make_registered_env(family: str, env_config: dict[str, Any]) -> Any:
    """Tune's env creator: RLlib passes ``num_envs`` when it wants one vectorised env object."""
    from k24_rllib.envs import make_env

    return make_env(family, **dict(env_config))


def register_all() -> None:
    """Idempotent: Tune's registry simply overwrites an existing name."""
    from functools import partial

    from k24_rllib.envs import ENV_FAMILIES

    for name in ALGORITHM_NAMES:
        tune.register_trainable(name, K24QMix)
    for family in ENV_FAMILIES:
        tune.register_env(family, partial(make_registered_env, family))
