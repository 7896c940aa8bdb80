"""Episode-side metrics that only the EnvRunners see (the battle outcome)."""

from __future__ import annotations

from typing import Any

from ray.rllib.callbacks.callbacks import RLlibCallback

WIN_RATE = "win_rate"


class K24Callbacks(RLlibCallback):
    """Logs ``win_rate`` (mean of ``info["battle_won"]`` at episode end) for combat envs.

    It lands in ``result["env_runners"]["win_rate"]`` for training episodes and in
    ``result["evaluation"]["env_runners"]["win_rate"]`` for the greedy test episodes.
    """

    def on_episode_end(self, *, episode: Any, metrics_logger: Any = None, **kwargs: Any) -> None:
        info = episode.get_infos(-1)
        if metrics_logger is not None and isinstance(info, dict) and "battle_won" in info:
            metrics_logger.log_value(WIN_RATE, float(info["battle_won"]), window=100)
