"""Whole-episode replay: stitching RLlib's episode chunks, padding, capacity, sampling and its saved state."""

from __future__ import annotations

import numpy as np
import pytest
from ray.rllib.core.columns import Columns
from ray.rllib.env.single_agent_episode import SingleAgentEpisode

from k24_rllib.algorithm.episode_buffer import TeamEpisodeBuffer
from k24_rllib.envs import EnvInfo, team_spaces

N_AGENTS, N_ACTIONS, OBS_DIM, STATE_DIM = 2, 4, 3, 5
OBS_SPACE, ACT_SPACE = team_spaces(EnvInfo(N_AGENTS, N_ACTIONS, OBS_DIM, STATE_DIM, 50))


def team_obs(t: int) -> dict[str, np.ndarray]:
    """An observation that encodes its timestep, so stitching errors show."""
    return {
        "obs": np.full((N_AGENTS, OBS_DIM), t, dtype=np.float32),
        "state": np.full(STATE_DIM, t, dtype=np.float32),
        "action_mask": np.ones((N_AGENTS, N_ACTIONS), dtype=np.float32),
    }


def episode_chunks(length: int, cuts: list[int], terminated: bool = True) -> list[SingleAgentEpisode]:
    """One episode of ``length`` steps as the EnvRunner hands it over: cut after each step in ``cuts``."""
    episode = SingleAgentEpisode(observation_space=OBS_SPACE, action_space=ACT_SPACE)
    episode.add_env_reset(observation=team_obs(0))
    chunks = []
    for t in range(1, length + 1):
        done = t == length
        episode.add_env_step(team_obs(t), np.full(N_AGENTS, t % N_ACTIONS), float(t),
                             terminated=done and terminated, truncated=done and not terminated)
        if t in cuts or done:
            chunks.append(episode.to_numpy())
            if not done:
                episode = episode.cut(len_lookback_buffer=1)
    return chunks


def test_chunks_of_one_episode_are_stitched_into_the_whole_episode():
    buffer = TeamEpisodeBuffer(capacity=1000)
    chunks = episode_chunks(7, cuts=[2, 5])
    assert buffer.add(chunks[:2]) == 0 and buffer.get_num_episodes() == 0  # unfinished: held back
    assert buffer.add(chunks[2:]) == 1 and len(buffer) == 7
    batch, steps = buffer.sample(7)
    assert steps == 7
    assert batch[Columns.OBS]["obs"][0, :, 0, 0].tolist() == list(range(8))  # o_0 .. o_7, nothing twice
    assert batch[Columns.REWARDS][0].tolist() == [float(t) for t in range(1, 8)]
    assert batch[Columns.ACTIONS][0, :, 0].tolist() == [t % N_ACTIONS for t in range(1, 8)]
    assert batch[Columns.TERMINATEDS][0].tolist() == [0.0] * 6 + [1.0]


def test_a_batch_is_padded_to_its_longest_episode_and_marks_real_steps():
    buffer = TeamEpisodeBuffer(capacity=1000, seed=0)
    for length, terminated in [(3, True), (6, False), (2, True)]:
        buffer.add(episode_chunks(length, cuts=[], terminated=terminated))
    batch, steps = buffer.sample(1000)
    lengths = batch[Columns.LOSS_MASK].sum(axis=1)
    assert steps == 11 and sorted(lengths.tolist()) == [2, 3, 6]
    assert batch[Columns.LOSS_MASK].shape == (3, 6) and batch[Columns.OBS]["state"].shape == (3, 7, STATE_DIM)
    truncated_row = int(np.argmax(lengths))
    assert batch[Columns.TERMINATEDS][truncated_row].sum() == 0  # a time limit is not a termination
    short_row = int(np.argmin(lengths))
    assert batch[Columns.OBS]["obs"][short_row, 3:].sum() == 0  # beyond o_L: zero padding
    assert batch[Columns.OBS]["obs"][short_row, 2, 0, 0] == 2  # o_L, the bootstrap observation, is kept


def test_samples_about_the_asked_timesteps_and_keeps_to_the_capacity():
    buffer = TeamEpisodeBuffer(capacity=100, seed=1)
    for _ in range(30):
        buffer.add(episode_chunks(10, cuts=[4]))
    assert len(buffer) == 100 and buffer.get_num_episodes() == 10  # oldest episodes went first
    _, steps = buffer.sample(40)
    assert steps == 40  # 4 episodes of 10
    with pytest.raises(ValueError, match="capacity"):
        TeamEpisodeBuffer(capacity=0)
    with pytest.raises(ValueError, match="empty"):
        TeamEpisodeBuffer().sample(10)


def test_state_round_trip_keeps_episodes_open_chunks_and_sampling():
    buffer = TeamEpisodeBuffer(capacity=1000, seed=2)
    for length in (3, 4, 5):
        buffer.add(episode_chunks(length, cuts=[]))
    open_chunks = episode_chunks(6, cuts=[2])
    buffer.add(open_chunks[:1])
    restored = TeamEpisodeBuffer(capacity=1000, seed=99)
    restored.set_state(buffer.get_state())
    assert len(restored) == 12 and restored.get_num_episodes() == 3
    first, _ = buffer.sample(8)
    second, _ = restored.sample(8)
    np.testing.assert_array_equal(first[Columns.REWARDS], second[Columns.REWARDS])
    assert restored.add(open_chunks[1:]) == 1 and len(restored) == 18  # the open episode completes
