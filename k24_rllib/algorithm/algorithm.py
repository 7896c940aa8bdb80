"""K24QMix: value decomposition with K-2:4 masks, running DQN's new-stack training step."""

from __future__ import annotations

from typing import Any

from ray.rllib.algorithms.dqn import DQN

from k24_rllib.algorithm.config import K24QMixConfig


class K24QMix(DQN):
    """Each iteration (DQN's ``training_step``): sample team episodes on the EnvRunners, add them to the
    episode replay buffer, sample sequences, update the agent network and mixer (TD(lambda) + diversity),
    step the mask schedules, sync the target networks when due, and broadcast weights — with epsilon and
    temperature as module buffers — to every EnvRunner.
    """

    @classmethod
    def get_default_config(cls) -> K24QMixConfig:
        return K24QMixConfig()

    def restore_from_path(self, path: Any, *args: Any, **kwargs: Any) -> None:
        """RLlib's restore, plus one more weight sync: RLlib 2.60 can leave a remote EnvRunner on its initial
        weights after a restore, and here the weights carry the masks, epsilon and temperature."""
        super().restore_from_path(path, *args, **kwargs)
        if self.env_runner_group is not None:
            self.env_runner_group.sync_weights(from_worker_or_learner_group=self.learner_group, inference_only=True)
