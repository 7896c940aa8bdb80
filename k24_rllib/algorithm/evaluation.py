"""Greedy evaluation of a trained team policy, outside RLlib's sampling loop.

Used by ``examples/evaluate.py`` on a restored algorithm: deterministic argmax masks and argmax actions, so
the same observation always gives the same action.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import tree
from ray.rllib.core.columns import Columns


@dataclass(frozen=True)
class EvaluationResult:
    episodes: int
    return_mean: float
    win_rate: float | None
    length_mean: float


def greedy_actions(module: Any, obs: dict[str, np.ndarray], state: dict[str, torch.Tensor]) -> tuple[np.ndarray, Any]:
    """One greedy step of the team module for one env: (actions [n_agents], next recurrent state)."""
    batch = {
        Columns.OBS: tree.map_structure(lambda x: torch.tensor(np.asarray(x))[None, None], obs),
        Columns.STATE_IN: tree.map_structure(lambda s: s[None], state),
    }
    out = module.forward_inference(batch)
    return out[Columns.ACTIONS][0, 0].numpy(), tree.map_structure(lambda s: s[0], out[Columns.STATE_OUT])


def run_greedy_episodes(module: Any, env: Any, episodes: int, seed: int = 0) -> EvaluationResult:
    """Plays ``episodes`` greedy episodes; the win rate is None for envs without ``battle_won``."""
    returns, lengths, wins = [], [], []
    for episode in range(episodes):
        obs, info = env.reset(seed=seed + episode)
        state = module.get_initial_state()
        total, steps, done = 0.0, 0, False
        while not done:
            actions, state = greedy_actions(module, obs, state)
            obs, reward, terminated, truncated, info = env.step(actions)
            total, steps, done = total + float(reward), steps + 1, terminated or truncated
        returns.append(total)
        lengths.append(steps)
        if "battle_won" in info:
            wins.append(float(info["battle_won"]))
    return EvaluationResult(
        episodes=episodes,
        return_mean=float(np.mean(returns)),
        win_rate=float(np.mean(wins)) if wins else None,
        length_mean=float(np.mean(lengths)),
    )
