"""Every environment presented as one "team" gymnasium env (see ``team.py`` and docs/environments.md).

Backends import their optional dependencies (jax/jaxmarl, mpe2, SMAC) only when an env is built.
"""

from .registry import ENV_FAMILIES, NAME_KEYS, available_maps, env_info_for, make_env
from .team import EnvInfo, TeamEnv, team_spaces

__all__ = ["ENV_FAMILIES", "NAME_KEYS", "EnvInfo", "TeamEnv", "available_maps", "env_info_for", "make_env",
           "team_spaces"]
