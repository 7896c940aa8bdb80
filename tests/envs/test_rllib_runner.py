"""SmaxVectorEnv inside RLlib 2.60's SingleAgentEnvRunner, built the way RLlib builds it
(``gym_env_vectorize_mode="vector_entry_point"``): the autoreset mode and infos fit RLlib."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("jaxmarl")
pytest.importorskip("ray.rllib")


def test_env_runner_samples_whole_smac_episodes():
    from ray import tune
    from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
    from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner

    from k24_rllib.envs import make_env
    from k24_rllib.envs.smax import SmaxVectorEnv

    tune.register_env("k24-test-smac", lambda cfg: make_env("smac", **cfg))
    # RLlib's random actions ignore masks, so illegal ones are replaced rather than rejected.
    config = (AlgorithmConfig()
              .environment("k24-test-smac", env_config={"map_name": "3m", "on_illegal_action": "replace"})
              .env_runners(num_envs_per_env_runner=4, gym_env_vectorize_mode="vector_entry_point"))
    runner = SingleAgentEnvRunner(config=config)
    assert isinstance(runner.env.unwrapped, SmaxVectorEnv) and runner.env.num_envs == 4
    episodes = runner.sample(num_timesteps=240, random_actions=True)
    done = [e for e in episodes if e.is_done]
    assert len(done) >= 4
    for episode in done:
        assert 1 <= len(episode) <= 60
        assert episode.is_terminated != episode.is_truncated
        last = episode.get_infos(-1)
        assert bool(last["battle_won"]) == (last["dead_enemies"] == 3 and last["dead_allies"] < 3)
        if last["battle_won"]:
            np.testing.assert_allclose(episode.get_return(), 20.0, rtol=1e-4)
    runner.stop()
