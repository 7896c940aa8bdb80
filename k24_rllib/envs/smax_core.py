"""The jitted SMAX step behind the SMAX team envs: int actions in, stacked arrays out, k envs at once.

Everything JAX lives here. One ``SmaxCore`` per (scenario, settings) and process is cached, so
import and compile are paid once; each batch size k compiles once more on first use.
Actions follow SMAC's layout (0 no-op, 1 stop, 2-5 move N/S/E/W, 6+ attack enemy i) and are
translated to SMAX's (0-3 move N/E/S/W, 4 stop, 5+ attack) inside the jitted call.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from .deps import SMAX_INSTALL, import_jax, import_optional
from .smax_scenarios import SmaxScenario

jax = import_jax()
jnp = jax.numpy
_smax = import_optional("jaxmarl.environments.smax", SMAX_INSTALL)

# SMAC action -> SMAX action: no-op and stop -> stop; N, S, E, W -> 0, 2, 1, 3; attacks shift by one.
_SMAC_MOVES_IN_SMAX = np.array([0, 2, 1, 3])
_SMAX_STOP = 4


@dataclass(frozen=True)
class SmacReward:
    """SMAC's default reward: damage + ``death_value`` per kill + ``win`` for a won battle.

    With ``scale`` the sum is divided by its maximum (enemy health + kills + win) and multiplied
    by ``scale_rate``, so a won battle sums to ``scale_rate`` (20), as in SMAC.
    """

    scale: bool = True
    scale_rate: float = 20.0
    death_value: float = 10.0
    win: float = 200.0


class Carry(NamedTuple):
    """Per-env state kept on the device between calls."""

    env_state: Any  # jaxmarl HeuristicEnemySMAX state
    rng: Any  # PRNG key for the next step or unseeded reset
    last_actions: Any  # int32 (n_allies,), SMAC layout, -1 before the first step; for the state
    episode_limit: Any  # int32: a traced value, so every limit shares one compiled step


class Out(NamedTuple):
    """What one call returns per env (leading axis k)."""

    obs: Any  # float32 (n_allies, obs_dim)
    state: Any  # float32 (state_dim,)
    action_mask: Any  # float32 (n_allies, n_actions)
    reward: Any  # float32 ()
    terminated: Any  # bool: a team is wiped out
    truncated: Any  # bool: episode limit reached, no team wiped out
    battle_won: Any  # bool: all enemies dead, an ally alive (SMAC's rule)
    dead_allies: Any  # int32
    dead_enemies: Any  # int32


class SmaxCore:
    """Jitted ``reset(rngs, episode_limits)`` and ``step(carry, actions, needs_reset)`` over k envs."""

    def __init__(self, scenario: SmaxScenario, reward: SmacReward, walls_cause_death: bool) -> None:
        self.scenario = scenario
        self.env = _make_smax(scenario, walls_cause_death)
        self._reward = reward
        self._obs_columns = jnp.asarray(_kept_obs_columns(scenario, self.env))
        self._type_bits = jnp.asarray(scenario.type_bits, dtype=jnp.int32)
        self._smac_to_smax = jnp.asarray(np.concatenate([
            [_SMAX_STOP, _SMAX_STOP], _SMAC_MOVES_IN_SMAX,
            self.env.num_movement_actions + np.arange(scenario.n_enemies)]), dtype=jnp.int32)
        self.reset = jax.jit(jax.vmap(self._reset_one))
        self.step = jax.jit(self._step_batch)

    def keys(self, seeds: list[int]) -> Any:
        """PRNG keys, one per env, from integer seeds."""
        return jnp.stack([jax.random.PRNGKey(int(s)) for s in seeds])

    def _reset_one(self, rng: Any, episode_limit: Any) -> tuple[Carry, Out]:
        rng, key = jax.random.split(rng)
        obs, env_state = self.env.reset(key)
        no_action = jnp.full(self.scenario.n_allies, -1, dtype=jnp.int32)  # one-hot of -1 is zeros
        carry = _strong(Carry(env_state, rng, no_action, episode_limit))
        return carry, self._observe(carry, obs, jnp.float32(0.0))

    def _step_one(self, carry: Carry, actions: Any) -> tuple[Carry, Out]:
        rng, key = jax.random.split(carry.rng)
        smax_actions = self._smac_to_smax[actions]
        before = carry.env_state.state
        obs, env_state, _, _, _ = self.env.step_env(
            key, carry.env_state, {a: smax_actions[i] for i, a in enumerate(self.env.agents)})
        new = _strong(Carry(env_state, rng, actions.astype(jnp.int32), carry.episode_limit))
        return new, self._observe(new, obs, self._smac_reward(before, env_state.state))

    def _step_batch(self, carry: Carry, actions: Any, needs_reset: Any) -> tuple[Carry, Out]:
        """Step all k envs; those flagged in ``needs_reset`` start a new episode instead.

        The reset runs (under ``lax.cond``) only when some env needs it, from the env's own rng,
        exactly as an unseeded ``reset()`` of a single env would.
        """
        stepped = jax.vmap(self._step_one)(carry, actions)

        def with_resets() -> tuple[Carry, Out]:
            fresh = jax.vmap(self._reset_one)(carry.rng, carry.episode_limit)
            return jax.tree.map(lambda f, s: jnp.where(_expand(needs_reset, f), f, s), fresh, stepped)

        return jax.lax.cond(jnp.any(needs_reset), with_resets, lambda: stepped)

    def _observe(self, carry: Carry, smax_obs: dict, reward: Any) -> Out:
        s = carry.env_state.state
        n = self.scenario.n_allies
        dead_allies = jnp.sum(~s.unit_alive[:n])
        dead_enemies = jnp.sum(~s.unit_alive[n:])
        allies_dead = dead_allies == n
        enemies_dead = dead_enemies == self.scenario.n_enemies
        ended = allies_dead | enemies_dead
        obs = jnp.stack([smax_obs[a] for a in self.env.agents])[:, self._obs_columns]
        return Out(
            obs=obs.astype(jnp.float32),
            state=self._global_state(carry),
            action_mask=self._action_mask(carry.env_state),
            reward=reward.astype(jnp.float32),
            terminated=ended,
            truncated=(s.step >= carry.episode_limit) & ~ended,
            battle_won=enemies_dead & ~allies_dead,
            dead_allies=dead_allies.astype(jnp.int32),
            dead_enemies=dead_enemies.astype(jnp.int32),
        )

    def _action_mask(self, env_state: Any) -> Any:
        """SMAC-layout mask: dead units only no-op; living ones stop, move, attack in range."""
        avail = self.env.get_avail_actions(env_state)
        smax_mask = jnp.stack([avail[a] for a in self.env.agents]).astype(jnp.float32)
        alive = env_state.state.unit_alive[: self.scenario.n_allies, None].astype(jnp.float32)
        moves = smax_mask[:, _SMAC_MOVES_IN_SMAX]
        attacks = smax_mask[:, self.env.num_movement_actions:]
        return jnp.concatenate([1.0 - alive, alive, moves, attacks], axis=1)

    def _global_state(self, carry: Carry) -> Any:
        """Per unit (allies, then enemies): health, x, y, cooldown, type bits, zero when dead;
        then each ally's last action one-hot, zeros at the start (SMAC's ``state_last_action``)."""
        s, env = carry.env_state.state, self.env
        types = s.unit_types
        feats = jnp.concatenate([
            (s.unit_health / env.unit_type_health[types])[:, None],
            s.unit_positions / jnp.array([env.map_width, env.map_height]),
            jnp.clip(s.unit_weapon_cooldowns / env.unit_type_weapon_cooldowns[types], 0.0, 1.0)[:, None],
            (types[:, None] == self._type_bits[None, :]).astype(jnp.float32),
        ], axis=1) * s.unit_alive[:, None]
        last = jax.nn.one_hot(carry.last_actions, self.scenario.n_actions)
        return jnp.concatenate([feats.reshape(-1), last.reshape(-1)]).astype(jnp.float32)

    def _smac_reward(self, before: Any, after: Any) -> Any:
        """SMAC's reward for one step (reward_only_positive): damage dealt, kills and the win."""
        n, cfg = self.scenario.n_allies, self._reward
        damage = jnp.sum(before.unit_health[n:] - after.unit_health[n:])
        kills = jnp.sum(before.unit_alive[n:] & ~after.unit_alive[n:])
        won = ~jnp.any(after.unit_alive[n:]) & jnp.any(after.unit_alive[:n])
        reward = damage + cfg.death_value * kills + cfg.win * won
        if cfg.scale:
            max_health = jnp.sum(self.env.unit_type_health[after.unit_types[n:]])
            max_reward = max_health + cfg.death_value * self.scenario.n_enemies + cfg.win
            reward = reward / max_reward * cfg.scale_rate
        return reward


@functools.lru_cache(maxsize=None)
def get_core(scenario: SmaxScenario, reward: SmacReward, walls_cause_death: bool) -> SmaxCore:
    """The process-wide core for these settings (jit caches live on it)."""
    return SmaxCore(scenario, reward, walls_cause_death)


def _strong(carry: Carry) -> Carry:
    """Drop JAX weak types, so reset and step produce identical carry types (no recompiles)."""
    return jax.tree.map(lambda x: jnp.asarray(x, dtype=x.dtype), carry)


def _expand(mask: Any, like: Any) -> Any:
    """``mask`` (k,) reshaped to broadcast against ``like`` (k, ...)."""
    return mask.reshape(mask.shape + (1,) * (like.ndim - 1))


def _make_smax(scenario: SmaxScenario, walls_cause_death: bool) -> Any:
    """jaxmarl's SMAX against its heuristic enemy, with SMACv2-style unit draws where asked.

    SMAX's own ``max_steps``/``done`` are unused: the episode limit lives in the carry.
    """
    n_units = scenario.n_allies + scenario.n_enemies
    generated = bool(scenario.race_types)
    fixed = scenario.unit_types or (0,) * n_units
    env = _smax.HeuristicEnemySMAX(
        scenario=_smax.Scenario(jnp.asarray(fixed, dtype=jnp.uint8), scenario.n_allies,
                                scenario.n_enemies, scenario.smacv2_positions, generated),
        walls_cause_death=walls_cause_death,
    )
    if generated:
        # SMAX's own draw is uniform over all six types; SMACv2 draws within one race.
        env._env.unit_type_generator = _RaceUnitTypes(scenario)
    return env


class _RaceUnitTypes:
    """SMACv2-style unit types: allies drawn from the race's weights, enemies mirror them."""

    def __init__(self, scenario: SmaxScenario) -> None:
        self._scenario = scenario
        self._types = jnp.asarray(scenario.race_types, dtype=jnp.uint8)
        self._logits = jnp.log(jnp.asarray(scenario.race_weights))

    def generate(self, key: Any) -> Any:
        n, m = self._scenario.n_allies, self._scenario.n_enemies
        draws = jax.random.categorical(key, self._logits, shape=(max(n, m),))
        allies = self._types[draws[:n]]
        extra = self._types[draws[n:m]] if m > n else jnp.zeros((0,), dtype=jnp.uint8)
        enemies = jnp.concatenate([allies[:m], extra])
        return jnp.concatenate([allies, enemies])


def _kept_obs_columns(scenario: SmaxScenario, env: Any) -> np.ndarray:
    """Columns of SMAX's unit-list observation that the team env keeps (drops unused type bits)."""
    keep = list(scenario.type_bits)
    unit_block = len(env.unit_features)
    own_block = len(env.own_features)
    base_unit = unit_block - env.unit_type_bits
    base_own = own_block - env.unit_type_bits
    n_other = scenario.n_allies + scenario.n_enemies - 1
    columns = [j * unit_block + c for j in range(n_other)
               for c in [*range(base_unit), *(base_unit + t for t in keep)]]
    own_start = n_other * unit_block
    columns += [own_start + c for c in [*range(base_own), *(base_own + t for t in keep)]]
    return np.asarray(columns)
