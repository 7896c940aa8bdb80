"""Shared SMAX envs (each scenario and batch size compiles once, ~10 s) and scripted policies."""

from __future__ import annotations

from typing import Callable

import numpy as np
import pytest

Policy = Callable[[np.ndarray], np.ndarray]

STOP, MOVE_EAST, FIRST_ATTACK = 1, 4, 6  # SMAC action layout


def _focus_fire(mask: np.ndarray) -> np.ndarray:
    """Every living unit attacks the lowest-index enemy it can, else walks east toward the enemy."""
    attacks = mask[..., FIRST_ATTACK:] > 0
    actions = np.where(attacks.any(-1), FIRST_ATTACK + attacks.argmax(-1), MOVE_EAST)
    return np.where(mask[..., 0] > 0, 0, actions)


def _hold(mask: np.ndarray) -> np.ndarray:
    """Living units stop, dead ones no-op: nothing happens for the first few steps."""
    return np.where(mask[..., 0] > 0, 0, STOP)


@pytest.fixture(scope="session")
def focus_fire() -> Policy:
    return _focus_fire


@pytest.fixture(scope="session")
def hold() -> Policy:
    return _hold


@pytest.fixture(scope="session")
def smax_3m():
    pytest.importorskip("jaxmarl")
    from k24_rllib.envs.smax import SmaxTeamEnv

    return SmaxTeamEnv("3m")


@pytest.fixture(scope="session")
def smax_3m_vec():
    pytest.importorskip("jaxmarl")
    from k24_rllib.envs.smax import SmaxVectorEnv

    return SmaxVectorEnv(4, "3m")


@pytest.fixture(scope="session")
def smax_protoss():
    pytest.importorskip("jaxmarl")
    from k24_rllib.envs.smax import SmaxTeamEnv

    return SmaxTeamEnv("protoss_5_vs_5")
