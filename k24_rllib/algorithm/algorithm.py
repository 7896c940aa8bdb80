"""K24QMix: value decomposition with K-2:4 masks, running DQN's new-stack training step."""

from __future__ import annotations

from typing import Any

from ray.rllib.algorithms.dqn import DQN
from ray.rllib.core import COMPONENT_LEARNER, COMPONENT_RL_MODULE
from ray.rllib.utils.metrics import WEIGHTS_SEQ_NO

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
        if self.env_runner_group is None or not self.env_runner_group.num_remote_env_runners():
            return
        # RLlib's own sync is fire-and-forget and de-duplicated by tag, so push the state and wait for it.
        learner_state = self.learner_group.get_state(
            components=f"{COMPONENT_LEARNER}/{COMPONENT_RL_MODULE}", inference_only=True
        )[COMPONENT_LEARNER]
        state = {key: learner_state[key] for key in (COMPONENT_RL_MODULE, WEIGHTS_SEQ_NO) if key in learner_state}
        self.env_runner_group.foreach_env_runner(lambda runner: runner.set_state(state), local_env_runner=False)
