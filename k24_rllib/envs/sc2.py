"""Real StarCraft II through oxwhirl's SMAC (``StarCraft2Env``) or SMACv2 (capability wrapper).

Both packages come from their git repositories and need the StarCraft II game with ``SC2PATH``;
they are imported only when an env is built. Only their documented API is used:
``get_env_info()``, ``reset()``, ``step(actions) -> (reward, terminated, info)``, ``get_obs()``,
``get_state()``, ``get_avail_actions()``, ``close()`` and the ``unit_type_bits`` attribute.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .deps import SC2_INSTALL, import_optional
from .smax_scenarios import SMACV2_RACES, SMACV2_SIZES
from .team import EnvInfo, IllegalActionPolicy, TeamEnv

# SMAC's map registry (smac/env/starcraft2/maps/smac_maps.py).
SC2_MAPS = (
    "3m", "8m", "25m", "5m_vs_6m", "8m_vs_9m", "10m_vs_11m", "27m_vs_30m", "MMM", "MMM2", "2s3z",
    "3s5z", "3s5z_vs_3s6z", "3s_vs_3z", "3s_vs_4z", "3s_vs_5z", "1c3s5z", "2m_vs_1z", "corridor",
    "6h_vs_8z", "2s_vs_1sc", "so_many_baneling", "bane_vs_bane", "2c_vs_64zg",
)
# SMACv2's unit draws per race: (unit types, weights, the type never drawn for a whole team).
_SMACV2_TEAMS = {
    "protoss": (["stalker", "zealot", "colossus"], [0.45, 0.45, 0.1], ["colossus"]),
    "terran": (["marine", "marauder", "medivac"], [0.45, 0.45, 0.1], ["medivac"]),
    "zerg": (["zergling", "hydralisk", "baneling"], [0.45, 0.45, 0.1], ["baneling"]),
}
SMACV2_SC2_SCENARIOS = tuple(f"{race}_{n}_vs_{m}" for race in SMACV2_RACES for n, m in SMACV2_SIZES)


def smacv2_capability_config(scenario: str) -> tuple[str, dict[str, Any]]:
    """SMACv2's map name and published capability config for e.g. "protoss_5_vs_5"."""
    if scenario not in SMACV2_SC2_SCENARIOS:
        raise ValueError(f"unknown smacv2 scenario {scenario!r}; valid: {', '.join(SMACV2_SC2_SCENARIOS)}")
    race, n, _, m = scenario.split("_")
    unit_types, weights, exceptions = _SMACV2_TEAMS[race]
    return f"10gen_{race}", {
        "n_units": int(n),
        "n_enemies": int(m),
        "team_gen": {"dist_type": "weighted_teams", "unit_types": unit_types, "weights": weights,
                     "exception_unit_types": exceptions, "observe": True},
        "start_positions": {"dist_type": "surrounded_and_reflect", "p": 0.5, "n_enemies": int(m),
                            "map_x": 32, "map_y": 32},
    }


class Sc2TeamEnv(TeamEnv):
    """A SMAC / SMACv2 StarCraft II battle as a team env.

    Args:
        map_name: a SMAC map, or SMACv2's "10gen_<race>" with ``capability_config``.
        capability_config: SMACv2 capability config; given, SMACv2's wrapper is used, else SMAC.
        seed: SMAC's game seed. A running StarCraft II cannot be reseeded, so ``reset(seed=...)``
            does not change it.
        unit_type_slice: where the own unit-type one-hot sits in the observation; default SMAC's
            layout (the last ``unit_type_bits`` own features, before an optional timestep feature).
        on_illegal_action: "raise" (default) or "replace" with the no-op/stop action.
        **smac_kwargs: passed to ``StarCraft2Env`` (e.g. ``difficulty``, ``reward_scale_rate``).
    """

    def __init__(self, map_name: str = "3m", capability_config: dict | None = None,
                 seed: int | None = None, unit_type_slice: tuple[int, int] | None = None,
                 on_illegal_action: IllegalActionPolicy = "raise", **smac_kwargs: Any) -> None:
        if capability_config is None:
            if map_name not in SC2_MAPS:
                raise ValueError(f"unknown SMAC map {map_name!r}; valid: {', '.join(SC2_MAPS)}")
            module = import_optional("smac.env", SC2_INSTALL)
            self.env = module.StarCraft2Env(map_name=map_name, seed=seed, **smac_kwargs)
        else:
            module = import_optional("smacv2.env", SC2_INSTALL)
            self.env = module.StarCraftCapabilityEnvWrapper(
                capability_config=capability_config, map_name=map_name, seed=seed, **smac_kwargs)
        self.map_name = map_name
        super().__init__(self._env_info(unit_type_slice), on_illegal_action)
        self._mask: np.ndarray | None = None
        self._t = 0

    def _env_info(self, unit_type_slice: tuple[int, int] | None) -> EnvInfo:
        info = self.env.get_env_info()
        obs_dim = int(info["obs_shape"])
        bits = int(getattr(self.env, "unit_type_bits", 0))
        if bits and unit_type_slice is None:
            end = obs_dim - int(bool(getattr(self.env, "obs_timestep_number", False)))
            unit_type_slice = (end - bits, end)
        return EnvInfo(n_agents=int(info["n_agents"]), n_actions=int(info["n_actions"]),
                       obs_dim=obs_dim, state_dim=int(info["state_shape"]),
                       episode_limit=int(info["episode_limit"]), n_unit_types=bits,
                       unit_type_slice=unit_type_slice if bits else None, noop_action=0)

    def reset(self, *, seed: int | None = None, options: dict | None = None
              ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        self.env.reset()
        self._t = 0
        return self._observation(), {}

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        if self._mask is None:
            raise RuntimeError("call reset() before step()")
        actions = self._legal(action, self._mask)
        reward, ended, smac_info = self.env.step(actions.tolist())
        self._t += 1
        info = {**smac_info, "battle_won": bool(smac_info.get("battle_won", False))}
        all_dead = smac_info.get("dead_allies", 0) == self.env_info.n_agents
        # SMAC ends a timed-out episode with terminated=True; the contract calls that truncation.
        timed_out = bool(ended) and not info["battle_won"] and not all_dead and (
            bool(smac_info.get("episode_limit")) or self._t >= self.env_info.episode_limit)
        return self._observation(), float(reward), bool(ended) and not timed_out, timed_out, info

    def close(self) -> None:
        self.env.close()

    def _observation(self) -> dict[str, np.ndarray]:
        self._mask = np.asarray(self.env.get_avail_actions(), np.float32)
        return {"obs": np.asarray(self.env.get_obs(), np.float32),
                "state": np.asarray(self.env.get_state(), np.float32),
                "action_mask": self._mask}
