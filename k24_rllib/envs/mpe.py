"""Cooperative MPE tasks from ``mpe2`` as team envs (through the generic PettingZoo adapter)."""

from __future__ import annotations

from typing import Any

from .deps import MPE_INSTALL, import_optional
from .parallel import ParallelTeamEnv
from .team import IllegalActionPolicy

# The cooperative, discrete-action MPE tasks used in EPyMARL-style benchmarks.
MPE_TASKS = {
    "simple_spread": "mpe2.simple_spread_v3",
    "simple_reference": "mpe2.simple_reference_v3",
    "simple_speaker_listener": "mpe2.simple_speaker_listener_v4",
}


class MpeTeamEnv(ParallelTeamEnv):
    """An mpe2 task with discrete actions; ``kwargs`` go to its ``parallel_env`` (e.g. N, max_cycles).

    simple_speaker_listener's agents differ in sizes (speaker: 3 obs / 3 actions, listener: 11 / 5)
    and are padded by the adapter. The team reward is the sum of the agents' rewards.
    """

    def __init__(self, task: str = "simple_spread", on_illegal_action: IllegalActionPolicy = "raise",
                 **kwargs: Any) -> None:
        if task not in MPE_TASKS:
            raise ValueError(f"unknown mpe task {task!r}; valid: {', '.join(MPE_TASKS)}")
        if kwargs.pop("continuous_actions", False):
            raise ValueError("team envs need discrete actions: continuous_actions must be False")
        module = import_optional(MPE_TASKS[task], MPE_INSTALL)
        self.task = task
        super().__init__(lambda: module.parallel_env(continuous_actions=False, **kwargs),
                         on_illegal_action=on_illegal_action)
