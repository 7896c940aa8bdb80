"""make_env / env_info_for / available_maps, name errors, and the missing-dependency errors."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from k24_rllib.envs import ENV_FAMILIES, available_maps, env_info_for, make_env
from k24_rllib.envs.deps import MissingDependencyError

SMAC_MAPS_ASKED = ("3m", "8m", "2s3z", "3s5z", "5m_vs_6m", "10m_vs_11m", "3s_vs_5z", "6h_vs_8z",
                   "27m_vs_30m")


def test_families_and_names():
    assert {"smac", "smacv2", "mpe", "pettingzoo"} <= set(ENV_FAMILIES)
    assert set(SMAC_MAPS_ASKED) <= set(available_maps("smac"))
    v2 = available_maps("smacv2")
    for race in ("protoss", "terran", "zerg"):
        assert f"{race}_5_vs_5" in v2 and f"{race}_10_vs_10" in v2
    assert available_maps("pettingzoo") == ()
    assert "MMM" in available_maps("smac", backend="sc2")


@pytest.mark.parametrize("call, listed", [
    (lambda: make_env("starcraft"), "smac, smacv2, mpe, pettingzoo"),
    (lambda: make_env("smac", map_name="4m"), "3m, 8m"),
    (lambda: make_env("smacv2", scenario="protoss_7_vs_7"), "protoss_5_vs_5"),
    (lambda: make_env("smac", backend="pysc2"), "smax, sc2"),
    (lambda: env_info_for("smac", map_name="MMM"), "3s5z"),
    (lambda: available_maps("smac", backend="pysc2"), "smax, sc2"),
])
def test_unknown_names_list_valid_ones(call, listed):
    with pytest.raises(ValueError, match=listed):
        call()


@pytest.mark.parametrize("call, message", [
    (lambda: env_info_for("smac", scenario="3s5z"), "smac envs are named by map_name=..., not scenario='3s5z'"),
    (lambda: make_env("smacv2", map_name="3m"), "smacv2 envs are named by scenario=..., not map_name='3m'"),
    (lambda: make_env("mpe", map_name="3m"), "mpe envs are named by task=..., not map_name='3m'"),
])
def test_another_familys_name_key_is_refused(call, message):
    """Without this check SMAX ignored the wrong key and described (or built) the default map."""
    with pytest.raises(ValueError, match=re.escape(message)):
        call()


@pytest.mark.parametrize("family, name, expected", [
    ("smac", "3m", (3, 9, 39, 51, 60, 0)),
    ("smac", "2s3z", (5, 11, 4 + 2 + 9 * 9, 10 * 6 + 5 * 11, 120, 2)),
    ("smac", "6h_vs_8z", (6, 14, 4 + 2 + 13 * 9, 14 * 6 + 6 * 14, 150, 2)),
    ("smacv2", "terran_10_vs_10", (10, 16, 4 + 2 + 19 * 9, 20 * 6 + 10 * 16, 200, 2)),
])
def test_smax_env_info_without_building(family, name, expected):
    key = "map_name" if family == "smac" else "scenario"
    info = env_info_for(family, **{key: name})
    assert (info.n_agents, info.n_actions, info.obs_dim, info.state_dim, info.episode_limit,
            info.n_unit_types) == expected
    assert env_info_for(family, **{key: name, "episode_limit": 10}).episode_limit == 10


def test_smax_env_info_matches_built_env(smax_3m, smax_protoss):
    assert env_info_for("smac", map_name="3m") == smax_3m.env_info
    assert env_info_for("smacv2", scenario="protoss_5_vs_5") == smax_protoss.env_info


def test_make_env_smax_single_and_vector(smax_3m_vec):
    from k24_rllib.envs.smax import SmaxTeamEnv, SmaxVectorEnv

    assert isinstance(make_env("smac", map_name="3m"), SmaxTeamEnv)
    vector = make_env("smac", num_envs=4, map_name="3m", seed=1)
    assert isinstance(vector, SmaxVectorEnv) and vector.num_envs == 4


def test_missing_jax_names_the_smax_extra(monkeypatch):
    monkeypatch.delitem(sys.modules, "k24_rllib.envs.smax_core", raising=False)
    monkeypatch.setitem(sys.modules, "jax", None)
    with pytest.raises(MissingDependencyError, match=r'pip install "k24-rllib\[smax\]"'):
        make_env("smac", map_name="3m")


def test_missing_mpe2_names_the_mpe_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpe2.simple_spread_v3", None)
    with pytest.raises(MissingDependencyError, match=r'pip install "k24-rllib\[mpe\]"'):
        make_env("mpe")


def test_missing_smac_explains_real_sc2_and_smax(monkeypatch):
    monkeypatch.setitem(sys.modules, "smac.env", None)
    with pytest.raises(ImportError) as err:
        make_env("smac", map_name="3m", backend="sc2")
    message = str(err.value)
    for needed in ("git+https://github.com/oxwhirl/smac.git", "StarCraft II", "SC2PATH",
                   "backend='smax'", "unrelated"):
        assert needed in message


def test_envs_import_without_optional_packages():
    blocked = "import sys; [sys.modules.__setitem__(m, None) for m in ('jax', 'jaxmarl', 'mpe2', 'smac')]"
    code = (f"{blocked}; import k24_rllib.envs as e; "
            "print(e.env_info_for('smac', map_name='3m').obs_dim)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "39"
