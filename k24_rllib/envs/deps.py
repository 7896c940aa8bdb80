"""Lazy imports of optional backends, failing with an error that says what to install.

``import k24_rllib.envs`` must work without jax, mpe2 or StarCraft II; each backend imports its
dependency only when an env of that backend is built.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

SMAX_INSTALL = 'pip install "k24-rllib[smax]"'
MPE_INSTALL = 'pip install "k24-rllib[mpe]"'
SC2_INSTALL = (
    "install oxwhirl's SMAC from its git repository (pip install "
    "git+https://github.com/oxwhirl/smac.git, or smacv2 from "
    "git+https://github.com/oxwhirl/smacv2.git) plus the StarCraft II game, and set SC2PATH to it. "
    "PyPI's `smac` is an unrelated hyperparameter optimiser. The default backend='smax' "
    f"needs neither StarCraft II nor SMAC: {SMAX_INSTALL}"
)


class MissingDependencyError(ImportError):
    """An optional dependency of one env backend is not installed; the message says how to get it."""


def import_optional(module: str, install: str) -> ModuleType:
    """Import ``module`` or raise MissingDependencyError carrying the ``install`` instruction."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingDependencyError(f"`{module}` is needed for this environment but could not be "
                                     f"imported ({err}); {install}") from err


def import_jax() -> ModuleType:
    """Import jax on the CPU unless the user chose otherwise.

    ``JAX_PLATFORMS=cpu`` is set (if unset) before the first jax import so that JAX never
    preallocates a GPU that torch needs; SMAX is fast enough on CPU.
    """
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    return import_optional("jax", SMAX_INSTALL)
