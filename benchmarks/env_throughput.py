"""Env-steps/s of the SMAX team envs through the full contract, next to SMAX's own vmapped step.

For each scenario (SMAC 3m and a SMACv2-style 5v5) and each k, one ``SmaxVectorEnv`` steps k
battles per call with random legal actions (numpy in, numpy out, legality check, autoreset);
"single" is ``SmaxTeamEnv``. "raw SMAX" is jaxmarl's own ``HeuristicEnemySMAX.step`` (with its
autoreset) vmapped over k and jitted, actions drawn on the device: the ceiling the wrapper is
measured against. Compile time (warm-up calls) is reported apart and excluded from the rates;
each rate is the best of several rounds that interleave the team env and raw SMAX.

    python benchmarks/env_throughput.py            # full run, ~4 min on 2 cores
    python benchmarks/env_throughput.py --quick    # fewer rounds, k = 1 and 8
Writes env_throughput.json and env_throughput.md to --output (default benchmarks/results/).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

import numpy as np

os.environ.setdefault("JAX_PLATFORMS", "cpu")

SCENARIOS = ("3m", "protoss_5_vs_5")
TARGET = {"scenario": "3m", "k": 8, "env_steps_per_s": 1500.0}


def _random_legal(rng: np.random.Generator, mask: np.ndarray) -> np.ndarray:
    """One uniformly random legal action per agent (mask rows always have a legal action)."""
    return (rng.random(mask.shape) * mask).argmax(axis=-1)


Stepper = Callable[[], None]


def contract_stepper(scenario: str, k: int | None, seed: int = 0) -> Stepper:
    """One call of the team env (k=None: SmaxTeamEnv) with random legal actions chosen in numpy."""
    from k24_rllib.envs.smax import SmaxTeamEnv, SmaxVectorEnv

    rng = np.random.default_rng(seed)
    env = SmaxTeamEnv(scenario) if k is None else SmaxVectorEnv(k, scenario)
    state = {"obs": env.reset(seed=seed)[0], "done": False}

    def step() -> None:
        if state["done"]:  # only the single env needs explicit resets
            state["obs"], _ = env.reset()
        obs, _, terminated, truncated, _ = env.step(_random_legal(rng, state["obs"]["action_mask"]))
        state["obs"], state["done"] = obs, k is None and (terminated or truncated)

    return step


def raw_smax_stepper(scenario: str, k: int, seed: int = 0) -> Stepper:
    """One call of jaxmarl's HeuristicEnemySMAX step (with its autoreset) vmapped over k and
    jitted, actions drawn on the device; outputs stay on the device."""
    import jax

    from k24_rllib.envs.smax import SMAX_SCENARIOS
    from k24_rllib.envs.smax_core import _make_smax

    env = _make_smax(SMAX_SCENARIOS[scenario], walls_cause_death=False)
    n_actions = env.action_spaces[env.agents[0]].n

    @jax.jit
    def step(key: Any, states: Any) -> tuple[Any, Any, Any]:
        key, act_key, step_key = jax.random.split(key, 3)
        actions = jax.random.randint(act_key, (len(env.agents), k), 0, n_actions)
        obs, states, rewards, dones, _ = jax.vmap(env.step)(
            jax.random.split(step_key, k), states, dict(zip(env.agents, actions)))
        return key, states, (obs, rewards, dones)

    key = jax.random.PRNGKey(seed)
    _, states = jax.vmap(env.reset)(jax.random.split(key, k))
    carry = {"key": key, "states": states}

    def call() -> None:
        carry["key"], carry["states"], out = step(carry["key"], carry["states"])
        jax.block_until_ready(out)

    return call


def warm_up(step: Stepper) -> float:
    """Seconds of two warm-up calls (compilation). Two: jaxmarl's SMAX state changes JAX weak
    types after its first step, so its raw step compiles twice (the team env compiles once)."""
    start = time.perf_counter()
    step()
    step()
    return time.perf_counter() - start


def best_rates(steppers: dict[str, tuple[Stepper, int]], calls: int, rounds: int) -> dict[str, float]:
    """Env-steps/s of each stepper, best of ``rounds`` interleaved rounds of ``calls`` calls.

    Interleaving and taking the best round keeps other load on a shared machine from favouring
    whichever stepper happened to run while the machine was quiet.
    """
    best = dict.fromkeys(steppers, 0.0)
    for _ in range(rounds):
        for name, (step, envs_per_call) in steppers.items():
            start = time.perf_counter()
            for _ in range(calls):
                step()
            best[name] = max(best[name], calls * envs_per_call / (time.perf_counter() - start))
    return best


def machine() -> dict[str, Any]:
    versions = {}
    for package in ("jax", "jaxmarl", "numpy", "gymnasium", "k24-rllib"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "python": platform.python_version(),
            "jax_platforms": os.environ.get("JAX_PLATFORMS"), "versions": versions}


def run(ks: tuple[int, ...], calls: int, rounds: int) -> list[dict[str, Any]]:
    rows = []
    for scenario in SCENARIOS:
        for k in (None, *ks):
            steppers = {f"team env {'single' if k is None else f'k={k}'}": contract_stepper(scenario, k)}
            if k is not None:
                steppers[f"raw SMAX k={k}"] = raw_smax_stepper(scenario, k)
            compile_s = {name: warm_up(step) for name, step in steppers.items()}
            rates = best_rates({name: (step, k or 1) for name, step in steppers.items()}, calls, rounds)
            for name, rate in rates.items():
                rows.append({"scenario": scenario, "k": k or 1, "path": name,
                             "compile_s": round(compile_s[name], 2), "env_steps_per_s": round(rate, 1)})
                print(rows[-1], flush=True)
    return rows


def markdown(rows: list[dict[str, Any]], info: dict[str, Any]) -> str:
    lines = [f"Env throughput on {info['processor']}, {info['cpu_count']} cores, "
             f"jax {info['versions']['jax']}, jaxmarl {info['versions']['jaxmarl']} (CPU).", "",
             "| scenario | path | k | env-steps/s | vs raw SMAX | compile s |",
             "| --- | --- | ---: | ---: | ---: | ---: |"]
    raw = {(r["scenario"], r["k"]): r["env_steps_per_s"] for r in rows if r["path"].startswith("raw")}
    for r in rows:
        ratio = raw.get((r["scenario"], r["k"]))
        share = f"{r['env_steps_per_s'] / ratio:.0%}" if ratio and not r["path"].startswith("raw") else ""
        lines.append(f"| {r['scenario']} | {r['path']} | {r['k']} | {r['env_steps_per_s']:,.0f} | "
                     f"{share} | {r['compile_s']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 rounds of 200 calls, k in (1, 8)")
    parser.add_argument("--calls", type=int, default=None, help="calls per round (default 300)")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 5)")
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results",
                        help="folder for env_throughput.json and env_throughput.md")
    args = parser.parse_args()
    ks = (1, 8) if args.quick else (1, 8, 32)
    calls = args.calls or (200 if args.quick else 300)
    rounds = args.rounds or (2 if args.quick else 5)
    info = machine()
    rows = run(ks, calls, rounds)
    target = next(r for r in rows if r["scenario"] == TARGET["scenario"] and r["k"] == TARGET["k"]
                  and r["path"].startswith("team env"))
    result = {"machine": info, "calls_per_round": calls, "rounds": rounds, "rows": rows, "target": TARGET,
              "target_met": target["env_steps_per_s"] >= TARGET["env_steps_per_s"]}
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "env_throughput.json").write_text(json.dumps(result, indent=2))
    (args.output / "env_throughput.md").write_text(markdown(rows, info))
    print(markdown(rows, info))
    print(f"target {TARGET}: {'met' if result['target_met'] else 'NOT met'}")


if __name__ == "__main__":
    main()
