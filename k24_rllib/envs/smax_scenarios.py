"""SMAC maps and SMACv2-style scenarios as SMAX can model them, and their team-env layout.

Pure Python (no jax), so names and ``EnvInfo`` can be listed and computed without the SMAX extra.
Episode limits are SMAC's (``smac_maps.py``) and SMACv2's (200 for the ``10gen_*`` maps).
"""

from __future__ import annotations

from dataclasses import dataclass

from .team import EnvInfo

# SMAX's unit type ids (jaxmarl SMAX `unit_type_names`).
UNIT_TYPES = ("marine", "marauder", "stalker", "zealot", "zergling", "hydralisk")
MARINE, MARAUDER, STALKER, ZEALOT, ZERGLING, HYDRALISK = range(len(UNIT_TYPES))

# SMAX observation blocks: 7 features per other unit and 4 own features, each followed by a
# one-hot over all SMAX unit types; the team env keeps only the bits of types that can occur.
UNIT_FEATURES = 7
OWN_FEATURES = 4
STATE_FEATURES = 4  # health, x, y, weapon cooldown per unit in the global state
SMAC_NON_ATTACK_ACTIONS = 6  # no-op, stop, move north/south/east/west


@dataclass(frozen=True)
class SmaxScenario:
    """One battle: fixed unit types (SMAC maps) or types drawn per episode (SMACv2 races).

    Attributes:
        name: the map or scenario name users pass.
        n_allies, n_enemies: team sizes.
        episode_limit: steps before truncation.
        unit_types: fixed types, allies then enemies (empty when drawn per episode).
        race_types, race_weights: SMACv2-style draw; allies draw i.i.d., enemies mirror them and
            draw any extra enemies the same way.
        smacv2_positions: SMACv2's surround-or-reflect start positions instead of two clusters.
    """

    name: str
    n_allies: int
    n_enemies: int
    episode_limit: int
    unit_types: tuple[int, ...] = ()
    race_types: tuple[int, ...] = ()
    race_weights: tuple[float, ...] = ()
    smacv2_positions: bool = False

    @property
    def type_bits(self) -> tuple[int, ...]:
        """SMAX type ids that get a one-hot bit: all types that can occur, none if only one can."""
        present = sorted(set(self.race_types or self.unit_types))
        return tuple(present) if len(present) > 1 else ()

    @property
    def n_actions(self) -> int:
        return SMAC_NON_ATTACK_ACTIONS + self.n_enemies

    def env_info(self, episode_limit: int | None = None) -> EnvInfo:
        """The team-env layout; ``episode_limit`` overrides the map's limit."""
        bits = len(self.type_bits)
        n_units = self.n_allies + self.n_enemies
        obs_dim = (n_units - 1) * (UNIT_FEATURES + bits) + OWN_FEATURES + bits
        return EnvInfo(
            n_agents=self.n_allies,
            n_actions=self.n_actions,
            obs_dim=obs_dim,
            state_dim=n_units * (STATE_FEATURES + bits) + self.n_allies * self.n_actions,
            episode_limit=episode_limit or self.episode_limit,
            n_unit_types=bits,
            unit_type_slice=(obs_dim - bits, obs_dim) if bits else None,
            noop_action=0,
        )


def _smac_map(name: str, allies: dict[int, int], enemies: dict[int, int], limit: int) -> SmaxScenario:
    """A SMAC map from unit counts per type, e.g. ``{STALKER: 2, ZEALOT: 3}``."""
    def expand(team: dict[int, int]) -> tuple[int, ...]:
        return tuple(t for t, count in team.items() for _ in range(count))

    ally_types, enemy_types = expand(allies), expand(enemies)
    return SmaxScenario(name, len(ally_types), len(enemy_types), limit, ally_types + enemy_types)


SMAC_MAPS: dict[str, SmaxScenario] = {s.name: s for s in (
    _smac_map("3m", {MARINE: 3}, {MARINE: 3}, 60),
    _smac_map("8m", {MARINE: 8}, {MARINE: 8}, 120),
    _smac_map("25m", {MARINE: 25}, {MARINE: 25}, 150),
    _smac_map("5m_vs_6m", {MARINE: 5}, {MARINE: 6}, 70),
    _smac_map("8m_vs_9m", {MARINE: 8}, {MARINE: 9}, 120),
    _smac_map("10m_vs_11m", {MARINE: 10}, {MARINE: 11}, 150),
    _smac_map("27m_vs_30m", {MARINE: 27}, {MARINE: 30}, 180),
    _smac_map("2s3z", {STALKER: 2, ZEALOT: 3}, {STALKER: 2, ZEALOT: 3}, 120),
    _smac_map("3s5z", {STALKER: 3, ZEALOT: 5}, {STALKER: 3, ZEALOT: 5}, 150),
    _smac_map("3s5z_vs_3s6z", {STALKER: 3, ZEALOT: 5}, {STALKER: 3, ZEALOT: 6}, 170),
    _smac_map("3s_vs_3z", {STALKER: 3}, {ZEALOT: 3}, 150),
    _smac_map("3s_vs_4z", {STALKER: 3}, {ZEALOT: 4}, 200),
    _smac_map("3s_vs_5z", {STALKER: 3}, {ZEALOT: 5}, 250),
    _smac_map("2m_vs_1z", {MARINE: 2}, {ZEALOT: 1}, 150),
    _smac_map("6h_vs_8z", {HYDRALISK: 6}, {ZEALOT: 8}, 150),
)}

# SMACv2 draws stalker/zealot/colossus, marine/marauder/medivac, zergling/hydralisk/baneling with
# weights .45/.45/.1; SMAX has no colossus, medivac or baneling, so the two others are 50/50.
SMACV2_RACES: dict[str, tuple[int, int]] = {
    "protoss": (STALKER, ZEALOT),
    "terran": (MARINE, MARAUDER),
    "zerg": (ZERGLING, HYDRALISK),
}
SMACV2_SIZES = ((5, 5), (10, 10), (20, 20), (5, 6), (10, 11), (20, 23))
SMACV2_EPISODE_LIMIT = 200

SMACV2_SCENARIOS: dict[str, SmaxScenario] = {
    f"{race}_{n}_vs_{m}": SmaxScenario(f"{race}_{n}_vs_{m}", n, m, SMACV2_EPISODE_LIMIT,
                                       race_types=types, race_weights=(0.5, 0.5),
                                       smacv2_positions=True)
    for race, types in SMACV2_RACES.items() for n, m in SMACV2_SIZES
}


def lookup(table: dict[str, SmaxScenario], name: str, what: str) -> SmaxScenario:
    """``table[name]`` or a ValueError that lists the valid names."""
    try:
        return table[name]
    except KeyError:
        raise ValueError(f"unknown {what} {name!r}; valid: {', '.join(table)}") from None
