"""Sampling throughput (env-steps/s, no learning) against the number of EnvRunners and envs per runner.

Each setting builds the K24QMix algorithm exactly as ``examples/train_smac.py --num-workers R
--envs-per-worker E`` would (``experiment.build_config``: fractional ``num_cpus_per_env_runner`` so 8 runners fit
on 2 cores), then times only sampling: every runner calls ``sample(num_timesteps=N / R)`` with the exploring K-2:4
module at once (``foreach_env_runner``), no replay, no learner update, no weight sync. Startup (building the
algorithm and the first sample, where each runner process imports JAX and compiles the SMAX step) is reported
apart and excluded from the rates. ``R = 0`` samples on the driver's local EnvRunner.

    python benchmarks/rollout_scaling.py            # runners 0 1 2 4 8 x envs 1 4 16 on SMAX 3m: ~40 min on
                                                    # 2 busy cores (8 runners take 4-6 min just to start)
    python benchmarks/rollout_scaling.py --quick    # runners 0 1 x envs 1 4, one short round (for tests)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

from common import DEFAULT_OUTPUT, Table, add_common_args, run_meta, save_figure, set_threads, write_results
from matplotlib.figure import Figure

from k24_rllib.cli import build_parser, parse_args
from k24_rllib.experiment import build_config

RUNNERS = (0, 1, 2, 4, 8)
ENVS = (1, 4, 16)
QUICK = {"runners": (0, 1), "envs": (1, 4), "steps": 128, "rounds": 1}
FULL = {"steps": 4096, "rounds": 3}


def setting_config(map_name: str, runners: int, envs: int) -> Any:
    """The config the training CLI builds for ``--num-workers runners --envs-per-worker envs`` (no evaluation)."""
    argv = ["--map", map_name, "--num-workers", str(runners), "--envs-per-worker", str(envs), "--eval-every", "0"]
    return build_config(parse_args(build_parser("rollout scaling", "smac", map_name), argv))


def sample_all(algo: Any, runners: int, steps: int) -> int:
    """Every EnvRunner samples ``steps`` env steps at once (the driver's local one when there are none)."""
    counts = algo.env_runner_group.foreach_env_runner(
        lambda runner: sum(episode.env_steps() for episode in runner.sample(num_timesteps=steps)),
        local_env_runner=runners == 0,
    )
    return int(sum(counts))


def measure_setting(map_name: str, runners: int, envs: int, steps: int, rounds: int) -> dict[str, Any]:
    """Startup (build, first sample) and sampling rates of one (runners, envs per runner) setting.

    ``steps`` env steps per round are split evenly over the runners, so every setting times the same work.
    """
    config = setting_config(map_name, runners, envs)
    per_runner = max(steps // max(runners, 1), envs)
    start = time.perf_counter()
    algo = config.build_algo()
    build_s = time.perf_counter() - start
    try:
        start = time.perf_counter()
        sample_all(algo, runners, envs)  # env reset + JAX compile in each runner, first module forward
        first_sample_s = time.perf_counter() - start
        rates, sampled = [], 0
        for _ in range(rounds):
            start = time.perf_counter()
            count = sample_all(algo, runners, per_runner)
            rates.append(count / (time.perf_counter() - start))
            sampled += count
    finally:
        algo.stop()
    median = statistics.median(rates)
    return {
        "runners": runners,
        "envs_per_runner": envs,
        "cpus_per_runner": config.num_cpus_per_env_runner,
        "build_s": round(build_s, 2),
        "first_sample_s": round(first_sample_s, 2),
        "startup_s": round(build_s + first_sample_s, 2),
        "steps_per_runner_per_round": per_runner,
        "rounds": rounds,
        "env_steps_timed": sampled,
        "steps_per_s": round(median, 1),
        "steps_per_s_best": round(max(rates), 1),
        "steps_per_s_per_runner": round(median / max(runners, 1), 1),
        "load_1min": round(os.getloadavg()[0], 2),
    }


def add_speedups(rows: list[dict[str, Any]]) -> None:
    """Each rate against the local runner (R = 0) with the same envs per runner."""
    local = {r["envs_per_runner"]: r["steps_per_s"] for r in rows if r["runners"] == 0}
    for row in rows:
        base = local.get(row["envs_per_runner"])
        row["vs_local"] = round(row["steps_per_s"] / base, 2) if base else None


def learner_ceiling(config: Any, training_cost: Path) -> dict[str, Any] | None:
    """Env steps/s one CPU learner can keep up with at the default replay ratio, from training_cost.json.

    DQN-style training does ``training_intensity`` trained timesteps per sampled one, so sampling faster than
    train_batch / (intensity x update time) only fills the replay buffer. None when that file is missing.
    """
    if not training_cost.is_file():
        return None
    rows = json.loads(training_cost.read_text())["rows"]
    row = next((r for r in rows if r["device"] == "CPU" and r["mask"] == "k24" and r["hidden_dim"] == 64), None)
    if row is None:
        return None
    shapes = json.loads(training_cost.read_text())["shapes"]
    batch = config.train_batch_size_per_learner
    update_s = row["update_ms"] / 1000 * batch / shapes["valid_steps"]  # scaled to the batch's env steps
    return {
        "update_s_per_batch": round(update_s, 3),
        "train_batch_timesteps": batch,
        "training_intensity": config.training_intensity,
        "env_steps_per_s": round(batch / (config.training_intensity * update_s), 1),
        "source": "benchmarks/results/training_cost.json (CPU, k24, hidden 64, scaled to the train batch)",
    }


def findings(rows: list[dict[str, Any]], ceiling: dict[str, Any] | None, cores: int) -> list[str]:
    """What the numbers say about this machine and about a cluster."""
    best = max(rows, key=lambda r: r["steps_per_s"])
    lines = [
        f"Best sampling rate here: {best['steps_per_s']:,.0f} env-steps/s with {best['runners']} runner(s) x "
        f"{best['envs_per_runner']} envs (startup {best['startup_s']:.0f} s, load average {best['load_1min']}).",
    ]
    for envs in sorted({r["envs_per_runner"] for r in rows}):
        line = sorted((r for r in rows if r["envs_per_runner"] == envs), key=lambda r: r["runners"])
        lines.append(
            f"{envs} env(s) per runner: "
            + ", ".join(f"R={r['runners']}: {r['steps_per_s']:,.0f}/s (startup {r['startup_s']:.0f} s)" for r in line)
            + "."
        )
    within = [r for r in rows if r["runners"] <= cores]
    beyond = [r for r in rows if r["runners"] > cores]
    if within and beyond:
        top_in, top_out = (max(group, key=lambda r: r["steps_per_s"]) for group in (within, beyond))
        slowest = max(beyond, key=lambda r: r["startup_s"])
        lines.append(
            f"{cores} cores: more than {cores} runners share the same cores (fractional CPUs); their best rate was "
            f"{top_out['steps_per_s']:,.0f} env-steps/s (R={top_out['runners']}) against {top_in['steps_per_s']:,.0f} "
            f"with at most {cores} (R={top_in['runners']}), {top_out['steps_per_s'] / top_in['steps_per_s']:.2f}x, "
            f"while startup grew to {slowest['startup_s']:.0f} s (R={slowest['runners']})."
        )
    envs = sorted({r["envs_per_runner"] for r in rows})
    if len(envs) > 1:
        by = {(r["runners"], r["envs_per_runner"]): r["steps_per_s"] for r in rows}
        gains = [by[(n, envs[-1])] / by[(n, envs[0])] for n in sorted({r["runners"] for r in rows})
                 if (n, envs[0]) in by and (n, envs[-1]) in by]
        lines.append(
            f"{envs[-1]} envs per runner instead of {envs[0]} (one vmapped SMAX call and one batched forward per "
            f"step for all of them) changed the rate {min(gains):.1f}-{max(gains):.1f}x across runner counts."
        )
    per_runner = max((r for r in rows if r["runners"] == 1), key=lambda r: r["steps_per_s"], default=None)
    if per_runner:
        lines.append(
            f"Cluster (an inference, not measured): with a core per runner, sampling should grow roughly linearly "
            f"from one runner's {per_runner['steps_per_s']:,.0f} env-steps/s ({per_runner['envs_per_runner']} envs, "
            "measured here on a core shared with the driver) until the network or the single learner limits it."
        )
    if ceiling:
        lines.append(
            f"The learner, not sampling, bounds training: at training_intensity {ceiling['training_intensity']:g} "
            f"and ~{ceiling['update_s_per_batch']:.2f} s per {ceiling['train_batch_timesteps']}-timestep CPU update, "
            f"one CPU learner keeps up with ~{ceiling['env_steps_per_s']:,.0f} env-steps/s (projection from "
            "training_cost.json); faster sampling needs a GPU learner, more learners or a lower replay ratio."
        )
    return lines


def plot(rows: list[dict[str, Any]]) -> Figure:
    """Steps/s and startup time against runners, one line per envs-per-runner."""
    fig = Figure(figsize=(10, 4))
    runners = sorted({r["runners"] for r in rows})
    for pos, (key, label) in enumerate([("steps_per_s", "env-steps/s (sampling only)"), ("startup_s", "startup s")]):
        ax = fig.add_subplot(1, 2, pos + 1)
        for envs in sorted({r["envs_per_runner"] for r in rows}):
            line = sorted((r for r in rows if r["envs_per_runner"] == envs), key=lambda r: r["runners"])
            ax.plot([runners.index(r["runners"]) for r in line], [r[key] for r in line], marker="o",
                    label=f"{envs} env(s)/runner")
        ax.set_xticks(range(len(runners)), [str(r) for r in runners])
        ax.set_xlabel("remote EnvRunners (0 = local)")
        ax.set_ylabel(label)
        ax.set_title(f"SMAX 3m, {label}", fontsize=9)
        ax.legend(fontsize=8)
    return fig


def parse_cli(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser, f"runners {QUICK['runners']} x envs {QUICK['envs']}, one round of {QUICK['steps']} steps")
    parser.add_argument("--map", default="3m", help="SMAX map (default 3m)")
    parser.add_argument("--runners", type=int, nargs="+", default=None, help=f"EnvRunner counts (default {RUNNERS})")
    parser.add_argument("--envs", type=int, nargs="+", default=None, help=f"envs per runner (default {ENVS})")
    parser.add_argument("--steps", type=int, default=None,
                        help=f"env steps per round, split over the runners ({FULL['steps']})")
    parser.add_argument("--rounds", type=int, default=None, help=f"timed rounds per setting ({FULL['rounds']})")
    parser.add_argument("--num-cpus", type=int, default=None, help="CPUs for ray.init (default: all cores)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Path]:
    import ray

    args = parse_cli(argv)
    set_threads(args.threads)
    runners = tuple(args.runners or (QUICK["runners"] if args.quick else RUNNERS))
    envs = tuple(args.envs or (QUICK["envs"] if args.quick else ENVS))
    steps = args.steps or (QUICK if args.quick else FULL)["steps"]
    rounds = args.rounds or (QUICK if args.quick else FULL)["rounds"]
    cores = args.num_cpus or os.cpu_count() or 1
    if not ray.is_initialized():  # tests pass their own 2-CPU Ray
        ray.init(address="local", num_cpus=cores, include_dashboard=False, log_to_driver=False)

    rows = []
    for n_envs in envs:
        for n_runners in runners:
            rows.append(measure_setting(args.map, n_runners, n_envs, steps, rounds))
            print(rows[-1], flush=True)
    add_speedups(rows)
    ceiling = learner_ceiling(setting_config(args.map, 0, 1), DEFAULT_OUTPUT / "training_cost.json")

    columns = {
        "runners": "runners",
        "envs_per_runner": "envs/runner",
        "cpus_per_runner": "CPUs/runner",
        "steps_per_s": "env-steps/s (median)",
        "steps_per_s_best": "best round",
        "steps_per_s_per_runner": "per runner",
        "vs_local": "vs R=0",
        "build_s": "build s",
        "first_sample_s": "first sample s",
        "startup_s": "startup s",
        "load_1min": "load avg",
    }
    note = (
        f"SMAX {args.map}, K-2:4 module exploring; each round the runners sample {steps} env steps together; median of "
        f"{rounds} round(s). Ray: {cores} CPUs. Startup = build_algo + first sample (JAX import/compile per runner), "
        "excluded from the rates. 'load avg' is the 1-minute load average after the setting: other jobs share "
        "this machine, so rates are noisy."
    )
    figure = save_figure(plot(rows), args.output, "rollout_scaling.png")
    paths = write_results(
        args.output,
        "rollout_scaling",
        title=f"Rollout scaling: sampling env-steps/s vs EnvRunners and envs per runner (SMAX {args.map}, CPU)",
        meta=run_meta(args, __file__, argv),
        tables=[Table("rows", "Sampling throughput per setting", rows, columns, note)],
        findings=findings(rows, ceiling, cores),
        figures=[figure],
        data={"ray_num_cpus": cores, "learner_ceiling": ceiling},
    )
    print(paths["md"].read_text())
    return paths | {"png": figure}


if __name__ == "__main__":
    main()
