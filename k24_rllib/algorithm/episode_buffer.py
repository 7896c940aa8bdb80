"""Whole-episode replay, pymarl's EpisodeBatch idea on RLlib's replay-buffer extension point.

EnvRunners hand over episode chunks (an episode longer than a rollout fragment arrives in pieces with the same
id); chunks are stitched, and an episode is stored once it is done, as numpy arrays. A sample is a set of whole
episodes, zero-padded only to the longest of them, ready to be a learner batch: no sequence slicing, no
stored GRU state (every episode unrolls from a zero state, as in pymarl), no per-update connector pipeline.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
import tree
from ray.rllib.core.columns import Columns
from ray.rllib.utils.replay_buffers.episode_replay_buffer import EpisodeReplayBuffer

EpisodeArrays = dict[str, Any]


class TeamEpisodeBuffer(EpisodeReplayBuffer):
    """FIFO store of finished team episodes, at most ``capacity`` env steps in all.

    An ``EpisodeReplayBuffer`` (RLlib's replay extension point, and what DQN's config accepts) whose items are
    whole episodes as arrays. RLlib builds it from ``replay_buffer_config={"type": TeamEpisodeBuffer,
    "capacity": N}`` (the default); its state is saved in checkpoints with ``store_buffer_in_checkpoints=True``.
    """

    def __init__(self, capacity: int = 200_000, seed: int | None = None, **kwargs: Any) -> None:
        if capacity < 1:
            raise ValueError(f"replay_buffer_config.capacity={capacity!r} is invalid: must be >= 1 env step")
        super().__init__(capacity=int(capacity), **kwargs)
        self.episodes: deque[EpisodeArrays] = deque()
        self._open: dict[str, list[EpisodeArrays]] = {}  # chunks of unfinished episodes, by episode id
        self.rng = np.random.default_rng(seed)

    def get_num_timesteps(self, module_id: str | None = None) -> int:
        return self._num_timesteps

    def add(self, chunks: list[Any]) -> int:
        """Adds RLlib episode chunks (``SingleAgentEpisode``); returns how many episodes were completed."""
        done = 0
        for chunk in chunks:
            self._num_timesteps_added += len(chunk)
            self._open.setdefault(chunk.id_, []).append(chunk_arrays(chunk))
            if chunk.is_done:
                self._store(stitch(self._open.pop(chunk.id_)))
                done += 1
        return done

    def _store(self, episode: EpisodeArrays) -> None:
        if episode["length"] == 0:
            return
        self.episodes.append(episode)
        self._num_timesteps += episode["length"]
        while self._num_timesteps > self.capacity and len(self.episodes) > 1:
            self._num_timesteps -= self.episodes.popleft()["length"]
            self._num_episodes_evicted += 1

    def sample(self, num_timesteps: int, **_: Any) -> tuple[dict[str, Any], int]:
        """Uniformly drawn whole episodes, about ``num_timesteps`` env steps in all (at least one episode).

        Returns (batch, valid timesteps). The batch holds OBS (a dict of [B, T + 1, ...] arrays: every step's
        observation and the one after the last), ACTIONS [B, T, n], REWARDS, TERMINATEDS and LOSS_MASK [B, T].
        """
        if not self.episodes:
            raise ValueError("the replay buffer is empty: sample from it only after episodes were added")
        mean_len = self._num_timesteps / len(self.episodes)
        k = int(np.clip(round(num_timesteps / mean_len), 1, len(self.episodes)))
        picked = [self.episodes[i] for i in self.rng.choice(len(self.episodes), size=k, replace=False)]
        steps = sum(e["length"] for e in picked)
        self.sampled_timesteps += steps
        return pad_episodes(picked), steps

    def get_state(self) -> dict[str, Any]:
        return {
            "episodes": list(self.episodes),
            "open": self._open,
            "rng": self.rng.bit_generator.state,
            "counters": (self._num_episodes_evicted, self._num_timesteps_added, self.sampled_timesteps),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        self.episodes = deque(state["episodes"])
        self._num_timesteps = sum(e["length"] for e in self.episodes)
        self._open = dict(state["open"])
        self.rng.bit_generator.state = state["rng"]
        self._num_episodes_evicted, self._num_timesteps_added, self.sampled_timesteps = state["counters"]

    def get_metrics(self) -> dict[str, float]:
        return {"num_episodes": float(len(self.episodes)), "num_env_steps": float(self._num_timesteps)}


def chunk_arrays(chunk: Any) -> EpisodeArrays:
    """One episode chunk as arrays: observations [L + 1] (both ends), actions / rewards [L], terminated flag."""
    return {
        "obs": tree.map_structure(np.asarray, chunk.get_observations()),
        "actions": np.asarray(chunk.get_actions()),
        "rewards": np.asarray(chunk.get_rewards(), dtype=np.float32),
        "terminated": bool(chunk.is_terminated),
        "length": len(chunk),
    }


def stitch(chunks: list[EpisodeArrays]) -> EpisodeArrays:
    """Joins consecutive chunks of one episode (each chunk's first observation is its predecessor's last)."""
    if len(chunks) == 1:
        return chunks[0]
    obs = [c["obs"] if i == 0 else tree.map_structure(lambda x: x[1:], c["obs"]) for i, c in enumerate(chunks)]
    return {
        "obs": tree.map_structure(lambda *xs: np.concatenate(xs), *obs),
        "actions": np.concatenate([c["actions"] for c in chunks]),
        "rewards": np.concatenate([c["rewards"] for c in chunks]),
        "terminated": chunks[-1]["terminated"],
        "length": sum(c["length"] for c in chunks),
    }


def pad_episodes(episodes: list[EpisodeArrays]) -> dict[str, Any]:
    """Stacks episodes, right-padded with zeros to the longest one; LOSS_MASK marks the real steps."""
    lengths = np.array([e["length"] for e in episodes])
    t = int(lengths.max())

    def stack(arrays: list[np.ndarray], steps: int) -> np.ndarray:
        out = np.zeros((len(arrays), steps, *arrays[0].shape[1:]), dtype=arrays[0].dtype)
        for i, a in enumerate(arrays):
            out[i, : len(a)] = a
        return out

    terminated = np.zeros((len(episodes), t), dtype=np.float32)
    terminated[np.arange(len(episodes)), lengths - 1] = [float(e["terminated"]) for e in episodes]
    return {
        Columns.OBS: tree.map_structure(lambda *xs: stack(list(xs), t + 1), *[e["obs"] for e in episodes]),
        Columns.ACTIONS: stack([e["actions"] for e in episodes], t),
        Columns.REWARDS: stack([e["rewards"] for e in episodes], t),
        Columns.TERMINATEDS: terminated,
        Columns.LOSS_MASK: np.arange(t)[None, :] < lengths[:, None],
    }
