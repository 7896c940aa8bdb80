"""Epsilon-greedy exploration as a function of the env-step counter."""

from __future__ import annotations

import numpy as np


def epsilon_at(schedule: list[tuple[int, float]] | float, t_env: int) -> float:
    """Piecewise-linear epsilon from DQN's ``epsilon`` setting ([[t0, eps0], [t1, eps1], ...] or a float); held
    at the ends (np.interp), as pymarl's linear decay is."""
    if isinstance(schedule, (int, float)):
        return float(schedule)
    steps, values = zip(*schedule)
    return float(np.interp(t_env, steps, values))
