"""Temperature schedules: env step -> Gumbel-softmax temperature tau.

A shape maps the annealing fraction f in [0, 1] (0 at ``anneal_start``, 1 at ``anneal_end``) to tau. Progress is
t_env / t_max, computed here once (the public attempt scaled it twice and never finished annealing).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from k24_rllib.sparsity.args import K24Args


def progress(t_env: int, t_max: int) -> float:
    """Fraction of training done, clamped to [0, 1]."""
    if t_max <= 0:
        raise ValueError(f"t_max must be > 0, got {t_max}")
    return min(max(t_env / t_max, 0.0), 1.0)


def linear_temperature(fraction: float, t_init: float, t_min: float) -> float:
    """Straight line from t_init (fraction 0) to t_min (fraction 1)."""
    return (1.0 - fraction) * t_init + fraction * t_min  # exact at both ends


def cosine_temperature(fraction: float, t_init: float, t_min: float) -> float:
    """Half cosine from t_init to t_min: slow at both ends."""
    return t_min + 0.5 * (t_init - t_min) * (1.0 + math.cos(math.pi * fraction))


SHAPES: dict[str, Callable[[float, float, float], float]] = {
    "linear": linear_temperature,
    "cosine": cosine_temperature,
}


def make_temperature_schedule(
    args: K24Args, t_max: int, custom: Callable[[float], float] | None = None
) -> Callable[[int], float]:
    """Return ``tau(t_env)``.

    The annealing window is [anneal_start, anneal_end] in progress units; ``anneal_end_step`` (env steps), when
    set, replaces anneal_end. Before the window tau = temperature_init, after it temperature_min. ``custom``,
    when given, replaces the shape: it receives the annealing fraction in [0, 1] and returns tau.
    """
    start = args.anneal_start
    end = args.anneal_end if args.anneal_end_step is None else args.anneal_end_step / t_max
    if end < start:
        raise ValueError(
            f"K24_args.anneal_end_step={args.anneal_end_step} is invalid: it falls before anneal_start "
            f"({start} * t_max = {start * t_max:g})"
        )
    shape = SHAPES[args.schedule]

    def tau(t_env: int) -> float:
        p = progress(t_env, t_max)
        if end == start:
            fraction = 1.0 if p >= end else 0.0
        else:
            fraction = min(max((p - start) / (end - start), 0.0), 1.0)
        if custom is not None:
            return float(custom(fraction))
        return shape(fraction, args.temperature_init, args.temperature_min)

    return tau


def pruned_scale(tau: float, t_init: float, t_min: float) -> float:
    """Share of each pruned weight kept at temperature ``tau`` (``K24_args.fade_pruned``): 1 at ``t_init``, 0 at
    ``t_min``, linear in tau between, so it fades with the temperature's own shape; 0 when the two are equal."""
    if t_init <= t_min:
        return 0.0
    return min(max((tau - t_min) / (t_init - t_min), 0.0), 1.0)
