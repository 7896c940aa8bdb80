"""Learning curves of K-2:4 vs Kaleidoscope vs QMIX: greedy test win rate / return against env steps.

Every run is one training run of the package's own CLI (``examples/train_smac.py`` / ``train_mpe.py``): its
arguments go through ``cli.build_parser`` / ``parse_args`` and ``experiment.build_config`` / ``train``, so flags
and defaults mean exactly what they mean there, and each run writes its usual run dir (result.jsonl, TensorBoard,
checkpoint) under ``--runs``. Runs go one after another, seeds outermost and masks innermost, so load from other
jobs on a shared machine spreads over the masks alike. Greedy test episodes (``--eval-every`` iterations,
``--eval-episodes`` episodes, explore=False) give the curves. The final win rate is a separate greedy evaluation
of ``--final-episodes`` episodes (default 64) of the final checkpoint, with a 95% Wilson interval.

    python benchmarks/learning.py --envs 3m --seeds 0 1 --budget 15000    # what fits a 2-core machine
    python benchmarks/learning.py --quick                                  # 3m, ~2k steps, local sampling, minutes
    python benchmarks/learning.py --envs 3s5z --masks-per unit-type        # one mask per unit type (5v5 always)
Arguments it does not know go to the training CLI for every run, e.g. ``--mixer vdn`` or ``--training.lr=1e-3``.
Resumable: every run checkpoints every ``--checkpoint-every`` iterations; a rerun reads finished runs and continues
unfinished ones from their last checkpoint (the replay buffer is not in checkpoints: it refills from fresh samples).
A run folder is read or continued only with the settings it started with: other flags or budget are refused by name.
``--report-only`` writes the results of the finished runs of a plan still in progress and lists the rest as pending.
``--continue-to N`` trains a plan's runs on past their budget to N env steps, from their checkpoints, as the CLI's
``--resume --stop-timesteps N`` does: the schedules (temperature, resets, progress) keep the budget's ``t_max``, so
this extends a look at a method that was still climbing; it is not a run planned for N from the start.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from common import Table, add_common_args, machine_info, run_meta, save_figure, set_threads, write_results
from matplotlib.figure import Figure

from k24_rllib.checkpoints import module_path
from k24_rllib.cli import CliError, build_parser, parse_args
from k24_rllib.experiment import CHECKPOINT, build_config, init_ray, prepare_output, read_rows, train

MASKS = ("k24", "kalei", "none")
THRESHOLDS = (0.5, 0.8, 0.9)
TARGET = {"env": "3m", "mask": "k24", "win_rate": 0.9, "env_steps": 500_000, "minutes": 20}
SIMILARITY_BAR = 0.5  # the guide: final pattern_max_similarity "should be < 0.5"
FINAL_EVAL_SEED = 10_000  # episode seeds distinct from training's, as examples/evaluate.py
OWNED_FLAGS = ("--mask", "--seed", "--stop-timesteps", "--output", "--resume", "--eval-every", "--eval-episodes",
               "--map", "--scenario", "--task", "--n-unit-types", "--checkpoint-every")
QUICK = {"envs": ["3m"], "seeds": [0], "budget": 2000, "eval_every": 1, "eval_episodes": 4, "final_episodes": 4,
         "num_workers": 0,
         # learning starts at 1000 of the 2000 steps, on small batches, so a quick run also exercises updates
         "overrides": ["--training.num_steps_sampled_before_learning_starts=1000",
                       "--training.train_batch_size_per_learner=256", "--training.training_intensity=8"]}
ARGV_FILE, RECORD_FILE = "benchmark_argv.json", "benchmark_run.json"  # written at a run's start / at its end
FINAL_EVAL_FILE = "final_eval.json"
FULL = {"envs": ["3m", "protoss_5_vs_5", "simple_spread"], "seeds": [0, 1, 2], "budget": 20_000, "eval_every": 3,
        "eval_episodes": 16, "final_episodes": 64, "num_workers": 2}


@dataclass(frozen=True)
class EnvSpec:
    """How the training CLI names one benchmark environment."""

    family: str
    flag: str
    per_unit_type: bool = False  # one mask per unit type unless ``--masks-per`` says otherwise

    @property
    def has_win_rate(self) -> bool:
        return self.family in ("smac", "smacv2")


ENVS = {
    "3m": EnvSpec("smac", "--map"),
    "5m_vs_6m": EnvSpec("smac", "--map"),  # the hard maps issue 9 names
    "3s5z": EnvSpec("smac", "--map"),
    "protoss_5_vs_5": EnvSpec("smacv2", "--scenario", per_unit_type=True),
    "simple_spread": EnvSpec("mpe", "--task"),
}


def unit_types(env: str) -> int:
    """How many unit types ``env``'s observations tell apart (0: one type, so masks can only be per agent)."""
    from k24_rllib.envs import NAME_KEYS, env_info_for

    spec = ENVS[env]
    return env_info_for(spec.family, **{NAME_KEYS[spec.family]: env}).n_unit_types if spec.has_win_rate else 0


def run_argv(env: str, mask: str, seed: int, run_dir: Path, args: argparse.Namespace, extra: list[str]) -> list[str]:
    """The training-CLI arguments of one run (``extra`` are the caller's pass-through flags)."""
    spec = ENVS[env]
    argv = [spec.flag, env, "--mask", mask, "--seed", str(seed), "--stop-timesteps", str(args.budget),
            "--eval-every", str(args.eval_every), "--eval-episodes", str(args.eval_episodes),
            "--checkpoint-every", str(args.checkpoint_every), "--output", str(run_dir), "--quiet"]
    if args.masks_per == "unit-type" or (args.masks_per is None and spec.per_unit_type):
        argv += ["--n-unit-types", str(unit_types(env))]
    return argv + extra


def settings_of(argv: list[str], family: str) -> dict[str, Any]:
    """A run's settings, flag -> value, as the training CLI parses its arguments (so ``--training.lr=1e-3`` and
    ``--training.lr 0.001`` are one setting). The run folder (``--output``) and ``--quiet`` are left out, so a runs
    folder that moved holds the same runs."""
    parser = build_parser("learning benchmark run", family, "")
    args = parse_args(parser, argv)
    flags = {action.dest: action.option_strings[0] for action in parser._actions if action.option_strings}
    settings = {flags.get(dest, dest): value for dest, value in vars(args).items()
                if dest not in ("output", "quiet", "overrides")}
    settings.update({f"--{group}.{key}": value
                     for group, values in args.overrides.items() for key, value in values.items()})
    return settings


def check_same_settings(run_dir: Path, argv: list[str], family: str) -> None:
    """A run folder is continued or read only by the command that started it: a rerun with other flags (or another
    budget) would otherwise mix two settings' results under one command."""
    saved = next((json.loads(path.read_text())["argv"] for path in (run_dir / ARGV_FILE, run_dir / RECORD_FILE)
                  if path.is_file()), None)
    if saved is None:  # nothing started yet (or a run folder from before its arguments were written at its start)
        return
    before, now = settings_of(saved, family), settings_of(argv, family)
    changed = [f"{flag} {before.get(flag, 'unset')} -> {now.get(flag, 'unset')}"
               for flag in sorted(before.keys() | now.keys()) if before.get(flag) != now.get(flag)]
    if changed:
        raise CliError(f"started with other settings ({'; '.join(changed)}): rerun with the flags it started with, "
                       "or give another --runs folder")


def read_results(run_dir: Path) -> list[dict[str, float]]:
    """The run's iterations, one row each: a row written again after a resume replaces the earlier one."""
    path = run_dir / "result.jsonl"
    rows = read_rows(path) if path.is_file() else []
    return list({int(row["training_iteration"]): row for row in rows}.values())


def training_seconds(rows: list[dict[str, float]]) -> float:
    """RLlib's training time summed over iterations (``time_total_s`` restarts from zero after a resume)."""
    return float(sum(row["time_this_iter_s"] for row in rows))


def finished(run_dir: Path, budget: int) -> bool:
    """Trained to ``budget`` env steps and recorded (a sitting stopped before its end leaves no record)."""
    rows = read_results(run_dir)
    return bool(rows) and rows[-1]["env_steps"] >= budget and (run_dir / RECORD_FILE).is_file()


def warm_up_env(config: Any) -> None:
    """Builds, resets and steps the run's env once in this process before timing anything.

    The local evaluation EnvRunner lives in this process and reuses SMAX's compiled step, so without this only
    the first run of each env would pay JAX's compilation (10-50 s here) inside its training time.
    """
    from k24_rllib.envs import make_env

    env = make_env(config.env, num_envs=config.num_envs_per_env_runner, **dict(config.env_config))
    obs, _ = env.reset(seed=0)
    env.step(obs["action_mask"].argmax(-1))  # a legal action for every agent
    env.close()


def train_run(
    argv: list[str], family: str, run_dir: Path, checkpoint_every: int, continue_to: int | None = None
) -> dict[str, Any]:
    """One training run through the CLI's own path, continued from its checkpoint when one exists (to
    ``continue_to`` env steps past its budget when given); records its wall time, the load around it and the git
    revision of every sitting (a long benchmark may outlive the checkout's HEAD, so the summary's own is not it)."""
    args = parse_args(build_parser("learning benchmark run", family, ""), argv)
    config = build_config(args)
    resume = (run_dir / CHECKPOINT).is_dir()
    if not resume and run_dir.is_dir() and any(run_dir.iterdir()):  # stopped before its first checkpoint
        run_dir.rename(run_dir.with_name(f"{run_dir.name}.abandoned-{time.strftime('%Y%m%d-%H%M%S')}"))
    prepare_output(args.output, resume, "")
    if not resume:
        (run_dir / ARGV_FILE).write_text(json.dumps({"argv": argv}, indent=2) + "\n")
    warm_up_env(config)
    progress = run_dir / "benchmark_sittings.json"
    sittings = json.loads(progress.read_text()) if resume and progress.is_file() else []
    git, load_start, start = machine_info()["git"], os.getloadavg()[0], time.time()
    sittings.append({"git": git, "resumed": resume, "load_1min_start": round(load_start, 2)}
                    | ({"continued_to": continue_to} if continue_to else {}))
    progress.write_text(json.dumps(sittings, indent=2) + "\n")
    (run_dir / FINAL_EVAL_FILE).unlink(missing_ok=True)  # evaluated a checkpoint that training now replaces
    train(config, run_dir, resume, checkpoint_every, quiet=True, stop=continue_to)
    sittings[-1].update(wall_s=round(time.time() - start, 1), load_1min_end=round(os.getloadavg()[0], 2))
    progress.write_text(json.dumps(sittings, indent=2) + "\n")
    record = {"argv": argv, "git": ", ".join(dict.fromkeys(s["git"] for s in sittings)),
              # a sitting killed before its end has no wall time: count them, RLlib's train_s still covers them
              "wall_s": round(sum(s.get("wall_s", 0.0) for s in sittings), 1), "sittings": sittings,
              "killed_sittings": sum("wall_s" not in s for s in sittings),
              "load_1min_start": sittings[0]["load_1min_start"], "load_1min_end": sittings[-1]["load_1min_end"]}
    continued = [s["continued_to"] for s in sittings if "continued_to" in s]
    if continued:
        record["continued_to"] = max(continued)
    (run_dir / RECORD_FILE).write_text(json.dumps(record, indent=2) + "\n")
    return record


def final_evaluation(run_dir: Path, family: str, episodes: int) -> dict[str, Any]:
    """Greedy win rate (or return) of the run's final checkpoint over ``episodes`` episodes, with a 95% Wilson
    interval; computed once and kept in ``final_eval.json`` (a rerun with another episode count redoes it)."""
    from ray.rllib.core.rl_module.rl_module import RLModule
    from scipy.stats import binomtest

    from k24_rllib.algorithm.evaluation import run_greedy_episodes
    from k24_rllib.envs import make_env

    path = run_dir / FINAL_EVAL_FILE
    if path.is_file() and json.loads(path.read_text())["episodes"] == episodes:
        return json.loads(path.read_text())
    record = json.loads((run_dir / RECORD_FILE).read_text())
    config = build_config(parse_args(build_parser("learning benchmark run", family, ""), record["argv"]))
    module = RLModule.from_checkpoint(str(run_dir / CHECKPOINT / module_path()))
    env = make_env(config.env, **dict(config.env_config))
    result = run_greedy_episodes(module, env, episodes, seed=FINAL_EVAL_SEED)
    env.close()
    final = {"episodes": episodes, "seed": FINAL_EVAL_SEED, "win_rate": result.win_rate,
             "return_mean": result.return_mean, "win_ci95": None}
    if result.win_rate is not None:
        interval = binomtest(round(result.win_rate * episodes), episodes).proportion_ci(method="wilson")
        final["win_ci95"] = [round(float(interval.low), 3), round(float(interval.high), 3)]
    path.write_text(json.dumps(final, indent=2) + "\n")
    return final


def curve(rows: list[dict[str, float]], eval_every: int) -> list[dict[str, float | None]]:
    """Greedy test points: RLlib repeats the last evaluation in later results, so keep evaluation iterations only.
    ``mask_change`` is the mean per-batch share of argmax mask entries that changed since the previous point."""
    def get(row: dict[str, float], key: str) -> float | None:
        value = row.get(key)
        return value if value is not None and np.isfinite(value) else None

    points, changes = [], []
    for row in rows:
        if (change := get(row, "learners/default_policy/mask_change")) is not None:
            changes.append(change)
        if int(row["training_iteration"]) % eval_every or get(row, "evaluation/env_runners/episode_return_mean") is None:
            continue
        points.append(
            {"env_steps": int(row["env_steps"]),
             "test_win_rate": get(row, "evaluation/env_runners/win_rate"),
             "test_return": get(row, "evaluation/env_runners/episode_return_mean"),
             "train_win_rate": get(row, "env_runners/win_rate"),
             "train_return": get(row, "env_runners/episode_return_mean"),
             "pattern_max_similarity": get(row, "learners/default_policy/pattern_max_similarity"),
             "pattern_mean_similarity": get(row, "learners/default_policy/pattern_mean_similarity"),
             "mask_change": float(np.mean(changes)) if changes else None})
        changes = []
    return points


def mask_agreement(run_dir: Path) -> float | None:
    """Diversity that K-2:4 and Kaleidoscope share: mean over mask pairs of the fraction of weight positions that
    two final binary masks keep or prune alike (1 = identical masks; lower = more diverse). None without masks."""
    from ray.rllib.core.rl_module.rl_module import RLModule

    from k24_rllib.analysis import mask_agreement as agreement_matrix

    agent = RLModule.from_checkpoint(str(run_dir / CHECKPOINT / module_path())).agent
    if agent.mask == "none":
        return None
    matrix = agreement_matrix(agent)
    n = matrix.shape[0]
    return float((matrix.sum() - matrix.trace()) / (n * (n - 1))) if n > 1 else None


def first_reaching(points: list[dict[str, Any]], threshold: float) -> int | None:
    return next((p["env_steps"] for p in points if (p["test_win_rate"] or 0.0) >= threshold), None)


def summarise_run(env: str, mask: str, seed: int, run_dir: Path, eval_every: int, final_episodes: int
                  ) -> dict[str, Any]:
    """Curve, final greedy performance, steps to each win-rate threshold, time and steps/s of one run."""
    rows = read_results(run_dir)
    record = json.loads((run_dir / RECORD_FILE).read_text())
    points = curve(rows, eval_every)
    final = final_evaluation(run_dir, ENVS[env].family, final_episodes)
    train_s = training_seconds(rows)  # RLlib's iteration times: training + evaluation, no build
    updates = [row["timers/learner_update_timer"] for row in rows if row.get("timers/learner_update_timer")]
    return {
        "env": env, "mask": mask, "seed": seed, "run_dir": str(run_dir),
        "env_steps": int(rows[-1]["env_steps"]), "iterations": len(rows),
        "final_test_win_rate": final["win_rate"], "final_test_win_ci95": final["win_ci95"],
        "final_test_return": final["return_mean"], "final_episodes": final["episodes"],
        "final_train_win_rate": rows[-1].get("env_runners/win_rate"),
        "final_pattern_max_similarity": rows[-1].get("learners/default_policy/pattern_max_similarity"),
        "final_pattern_mean_similarity": rows[-1].get("learners/default_policy/pattern_mean_similarity"),
        "mask_agreement": mask_agreement(run_dir),
        "reached": {str(t): first_reaching(points, t) for t in THRESHOLDS} if ENVS[env].has_win_rate else None,
        # a killed sitting's wall time is unknown, so the run's is too; train_s still covers every sitting
        "wall_s": None if record.get("killed_sittings") else record["wall_s"], "train_s": round(train_s, 1),
        "steps_per_s": round(rows[-1]["env_steps"] / train_s, 1),
        # RLlib's smoothed time of one learner update (one train batch), median over the run's iterations
        "update_s": round(statistics.median(updates), 3) if updates else None,
        "load_1min_start": record["load_1min_start"], "load_1min_end": record["load_1min_end"],
        "git": record.get("git"), "continued_to": record.get("continued_to"), "curve": points,
    }


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def reached_cell(steps: list[int | None]) -> str:
    """Median env steps when every seed got there; otherwise how many did (and where), never a guess."""
    hit = [s for s in steps if s is not None]
    if not hit:
        return "not reached"
    if len(hit) < len(steps):
        return f"{len(hit)}/{len(steps)} seeds (at {', '.join(f'{s:,}' for s in hit)})"
    return f"{int(statistics.median(hit)):,}"


def win_cell(run: dict[str, Any]) -> str:
    """A seed's final win rate with its 95% interval, e.g. "0.84 (0.73-0.91)"."""
    if run["final_test_win_rate"] is None:
        return "-"
    low, high = run["final_test_win_ci95"]
    return f"{run['final_test_win_rate']:.2f} ({low:.2f}-{high:.2f})"


def summary_rows(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (env, mask): medians over seeds."""
    rows = []
    for env in dict.fromkeys(r["env"] for r in runs):
        for mask in dict.fromkeys(r["mask"] for r in runs if r["env"] == env):
            group = [r for r in runs if r["env"] == env and r["mask"] == mask]
            row = {
                "env": env, "mask": mask, "seeds": len(group), "env_steps": max(r["env_steps"] for r in group),
                "final_test_win_rate": _median([r["final_test_win_rate"] for r in group]),
                "final_test_win_rates": [r["final_test_win_rate"] for r in group],
                "final_test_return": _median([r["final_test_return"] for r in group]),
                "final_train_win_rate": _median([r["final_train_win_rate"] for r in group]),
                "mask_agreement": _median([r["mask_agreement"] for r in group]),
                "pattern_max_similarity": _median([r["final_pattern_max_similarity"] for r in group]),
                "pattern_mean_similarity": _median([r["final_pattern_mean_similarity"] for r in group]),
                "wall_s": _median([r["wall_s"] for r in group]),
                "steps_per_s": _median([r["steps_per_s"] for r in group]),
                "update_s": _median([r["update_s"] for r in group]),
            }
            row["final_test_win_rates_cell"] = ", ".join(win_cell(r) for r in group)
            for t in THRESHOLDS:
                row[f"to_{int(t * 100)}"] = (reached_cell([r["reached"][str(t)] for r in group])
                                             if ENVS[env].has_win_rate else "n/a (no win rate)")
            rows.append(row)
    return rows


def findings(rows: list[dict[str, Any]], runs: list[dict[str, Any]]) -> list[str]:
    lines = []
    for env in dict.fromkeys(r["env"] for r in rows):
        group = {r["mask"]: r for r in rows if r["env"] == env}
        key, label = (("final_test_win_rate", "test win rate") if ENVS[env].has_win_rate
                      else ("final_test_return", "test return"))
        budget = max(r["env_steps"] for r in group.values())
        lines.append(f"{env}, ~{budget:,} env steps: final greedy {label} (median over seeds) " + ", ".join(
            f"{m} {'-' if r[key] is None else format(r[key], '.3g')}" for m, r in group.items()) + ".")
        if ENVS[env].has_win_rate and {"k24", "kalei", "none"} <= group.keys():
            k24 = group["k24"][key] or 0.0
            holds = k24 >= (group["kalei"][key] or 0.0) and k24 >= (group["none"][key] or 0.0)
            lines.append(
                f"{env}: 'K-2:4 final win rate >= Kaleidoscope's and >= QMIX's at the same budget' "
                f"{'holds' if holds else 'does NOT hold'} on the medians of {group['k24']['seeds']} seed(s); per seed "
                "with 95% intervals: " + "; ".join(f"{m} {r['final_test_win_rates_cell']}" for m, r in group.items())
                + ".")
        if "k24" in group and group["k24"]["pattern_max_similarity"] is not None:
            similarity = group["k24"]["pattern_max_similarity"]
            lines.append(
                f"{env}: K-2:4's final pattern_max_similarity (median over seeds) {similarity:.2f}: the guide's bar "
                f"(< {SIMILARITY_BAR}) is {'met' if similarity < SIMILARITY_BAR else 'NOT met'}.")
        if {"k24", "kalei"} <= group.keys() and None not in (group["k24"]["mask_agreement"],
                                                           group["kalei"]["mask_agreement"]):
            lines.append(
                f"{env}: final mask agreement between agents (share of weight positions kept/pruned alike; lower = "
                f"more diverse): k24 {group['k24']['mask_agreement']:.3f}, "
                f"kalei {group['kalei']['mask_agreement']:.3f}.")
        env_runs = [r for r in runs if r["env"] == env and r["reached"] is not None]
        if env_runs and not any(r["reached"]["0.9"] for r in env_runs):
            lines.append(f"{env}: no run reached 90% greedy test win rate within its {budget:,}-step budget; nothing "
                         "here is extrapolated to larger budgets.")
    for env in dict.fromkeys(r["env"] for r in rows):
        group = [r for r in rows if r["env"] == env]
        loads = [r["load_1min_end"] for r in runs if r["env"] == env]
        lines.append(
            f"{env}: full training (sampling + learner updates + periodic greedy evaluation, no startup) ran at "
            + ", ".join(f"{r['mask']} {r['steps_per_s']:.0f}" for r in group)
            + f" env-steps/s (median over seeds), 1-minute load average {min(loads):.1f}-{max(loads):.1f} on "
            f"{os.cpu_count()} cores (shared machine: other jobs slow every rate).")
    for env in dict.fromkeys(r["env"] for r in rows):
        group = {r["mask"]: r for r in rows if r["env"] == env}
        if {"k24", "kalei"} <= group.keys() and group["k24"]["update_s"] and group["kalei"]["update_s"]:
            lines.append(
                f"{env}: one learner update in the RLlib learner took " + ", ".join(
                    f"{m} {r['update_s']:.2f} s" for m, r in group.items() if r["update_s"])
                + f" (median over seeds); K-2:4 / Kaleidoscope = "
                f"{group['k24']['update_s'] / group['kalei']['update_s']:.2f}x (the guide claims 0.9-1.0x).")
    target = [r for r in runs if r["env"] == TARGET["env"] and r["mask"] == TARGET["mask"]]
    if target:
        steps = [r["reached"][str(TARGET["win_rate"])] for r in target]
        budget = max(r["env_steps"] for r in target)
        lines.append(
            f"Target: {TARGET['mask']} reaches {TARGET['win_rate']:.0%} greedy test win on {TARGET['env']} within "
            f"{TARGET['env_steps']:,} env steps (median of 3 seeds). Here, at {budget:,} steps and {len(target)} "
            f"seed(s): {reached_cell(steps)}.")
    return lines


def continued_finding(runs: list[dict[str, Any]], budget: int) -> list[str]:
    """Says which runs went past the plan's budget, so their curves are not read as runs planned that long."""
    continued = [f"{r['env']} {r['mask']} seed {r['seed']}" for r in runs if r.get("continued_to")]
    if not continued:
        return []
    return [f"Continued past the budget of {budget:,} env steps from their checkpoints ({', '.join(continued)}): "
            f"their schedules (temperature, resets, progress) kept t_max = {budget:,}."]


def plot_median_curve(ax: Any, curves: list[list[dict[str, Any]]], key: str, color: str | None, label: str) -> None:
    """Thin line per seed, bold median on the longest seed's env steps."""
    curves = [[p for p in c if p[key] is not None] for c in curves]
    curves = [c for c in curves if c]
    for points in curves:
        ax.plot([p["env_steps"] for p in points], [p[key] for p in points], color=color, alpha=0.3, linewidth=0.8)
    if curves:
        grid = np.array([p["env_steps"] for p in max(curves, key=len)])
        values = np.array([np.interp(grid, [p["env_steps"] for p in c], [p[key] for p in c]) for c in curves])
        ax.plot(grid, np.median(values, axis=0), color=color, linewidth=2, label=f"{label} (median of {len(curves)})")


def plot(runs: list[dict[str, Any]]) -> Figure:
    """Per env: greedy test win rate (or return) vs env steps and, below, K-2:4's pattern_max_similarity."""
    envs = list(dict.fromkeys(r["env"] for r in runs))
    fig = Figure(figsize=(5 * len(envs), 7))
    colors = {"k24": "tab:red", "kalei": "tab:blue", "none": "tab:gray"}
    for pos, env in enumerate(envs):
        ax = fig.add_subplot(2, len(envs), pos + 1)
        key = "test_win_rate" if ENVS[env].has_win_rate else "test_return"
        for mask in dict.fromkeys(r["mask"] for r in runs if r["env"] == env):
            curves = [r["curve"] for r in runs if r["env"] == env and r["mask"] == mask]
            plot_median_curve(ax, curves, key, colors.get(mask), mask)
        if key == "test_win_rate":
            ax.axhline(TARGET["win_rate"], color="black", linestyle=":", linewidth=0.8)
            ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("env steps")
        ax.set_ylabel(f"greedy {key.replace('_', ' ')}")
        ax.set_title(env, fontsize=9)
        ax.legend(fontsize=8)
        ax = fig.add_subplot(2, len(envs), len(envs) + pos + 1)
        curves = [r["curve"] for r in runs if r["env"] == env and r["mask"] == "k24"]
        plot_median_curve(ax, curves, "pattern_max_similarity", colors["k24"], "k24 max")
        plot_median_curve(ax, curves, "pattern_mean_similarity", "tab:orange", "k24 mean")
        ax.axhline(SIMILARITY_BAR, color="black", linestyle=":", linewidth=0.8)
        ax.axhline(1 / 6, color="gray", linestyle="--", linewidth=0.6)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("env steps")
        ax.set_ylabel("pattern similarity (1/6 = uniform)")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def parse_cli(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    """The benchmark's flags, and the rest for the training CLI (the flags this script sets are refused there)."""
    # no abbreviations: "--seed 3" must reach the refusal below, not become "--seeds 3"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    add_common_args(parser, f"{QUICK['envs']}, {QUICK['budget']} steps, 1 seed, local sampling (a few minutes)")
    parser.add_argument("--mask", nargs="+", choices=MASKS, default=list(MASKS))
    parser.add_argument("--envs", nargs="+", choices=tuple(ENVS), default=None, help=f"default {FULL['envs']}")
    parser.add_argument("--seeds", nargs="+", type=int, default=None, help=f"default {FULL['seeds']}")
    parser.add_argument("--budget", type=int, default=None, help=f"env steps per run (default {FULL['budget']:,})")
    parser.add_argument("--eval-every", type=int, default=None, help="greedy evaluation every N iterations")
    parser.add_argument("--eval-episodes", type=int, default=None, help="greedy episodes per evaluation")
    parser.add_argument("--final-episodes", type=int, default=None,
                        help=f"greedy episodes of the final checkpoint (default {FULL['final_episodes']})")
    parser.add_argument("--num-workers", type=int, default=None, help="remote EnvRunners per run (CLI default 2)")
    parser.add_argument("--runs", type=Path, default=None, help="folder of the run dirs (default OUTPUT/learning_runs)")
    parser.add_argument("--checkpoint-every", type=int, default=10, help="iterations between a run's checkpoints")
    parser.add_argument("--masks-per", choices=("agent", "unit-type"), default=None,
                        help="one mask per agent or per unit type (default: per unit type on protoss_5_vs_5 only)")
    parser.add_argument("--report-only", action="store_true",
                        help="summarise the finished runs of the plan and list the rest as pending; train nothing")
    parser.add_argument("--continue-to", type=int, default=None, metavar="N",
                        help="train the runs on past --budget to N env steps from their checkpoints (schedules keep "
                             "the budget's t_max)")
    args, extra = parser.parse_known_args(argv)
    owned = [token for token in extra if token.split("=")[0] in OWNED_FLAGS]
    if owned:
        parser.error(f"{', '.join(owned)}: set by the benchmark itself (use --mask/--seeds/--budget/--envs)")
    mode = QUICK if args.quick else FULL
    for name in ("envs", "seeds", "budget", "eval_every", "eval_episodes", "final_episodes", "num_workers"):
        if getattr(args, name) is None:
            setattr(args, name, mode[name])
    single_type = [env for env in args.envs if args.masks_per == "unit-type" and not unit_types(env)]
    if single_type:
        parser.error(f"--masks-per unit-type: {', '.join(single_type)} has one unit type (no unit-type bits in "
                     "its observations); drop it from --envs or use --masks-per agent")
    if args.continue_to is not None and args.continue_to <= args.budget:
        parser.error(f"--continue-to {args.continue_to} must be above --budget {args.budget}")
    args.runs = args.runs or args.output / "learning_runs"
    quick_overrides = QUICK["overrides"] if args.quick else []
    extra = ["--num-workers", str(args.num_workers), *quick_overrides, *extra]
    return args, extra


def main(argv: list[str] | None = None) -> dict[str, Path]:
    import ray

    args, extra = parse_cli(argv)
    set_threads(args.threads)
    if not ray.is_initialized():  # tests pass their own 2-CPU Ray
        init_ray(None)
    runs, pending = [], []
    for env in args.envs:
        for seed in args.seeds:
            for mask in args.mask:
                run_dir = args.runs / f"{env}_{mask}_seed{seed}"
                run_args = run_argv(env, mask, seed, run_dir, args, extra)
                try:
                    check_same_settings(run_dir, run_args, ENVS[env].family)
                    stops = [None] + ([args.continue_to] if args.continue_to else [])  # None: the budget
                    todo = [stop for stop in stops if not finished(run_dir, stop or args.budget)]
                    if todo and args.report_only:
                        pending.append(run_dir.name)
                        continue
                    for continue_to in todo:
                        print(f"training {run_dir.name}{f' on to {continue_to:,}' if continue_to else ''} ...",
                              flush=True)
                        train_run(run_args, ENVS[env].family, run_dir, args.checkpoint_every, continue_to)
                except CliError as err:
                    raise SystemExit(f"error: {run_dir.name}: {err}") from err
                runs.append(summarise_run(env, mask, seed, run_dir, args.eval_every, args.final_episodes))
                print({k: v for k, v in runs[-1].items() if k != "curve"}, flush=True)

    rows = summary_rows(runs)
    columns = {
        "env": "env", "mask": "mask", "seeds": "seeds", "env_steps": "env steps",
        "final_test_win_rate": "final test win (median)", "final_test_win_rates_cell": "per seed (95% CI)",
        "final_test_return": "final test return", "final_train_win_rate": "train win (last 100 ep.)",
        "mask_agreement": "mask agreement", "pattern_max_similarity": "pattern max sim.",
        "pattern_mean_similarity": "pattern mean sim.",
        "to_50": "steps to 50% win", "to_80": "steps to 80% win", "to_90": "steps to 90% win",
        "wall_s": "wall s / run", "steps_per_s": "env-steps/s", "update_s": "s / learner update",
    }
    run_columns = {"env": "env", "mask": "mask", "seed": "seed", "env_steps": "env steps",
                   "final_test_win_rate": "final test win", "final_test_return": "final test return",
                   "final_pattern_max_similarity": "pattern max sim.",
                   "wall_s": "wall s", "train_s": "train s", "steps_per_s": "env-steps/s", "update_s": "s / update",
                   "load_1min_end": "load avg (end)", "git": "git (trained)"}
    note = (f"Greedy test = {args.eval_episodes} explore=False episodes every {args.eval_every} iterations (the "
            f"curves); final = {args.final_episodes} greedy episodes of the final checkpoint, 95% Wilson interval per "
            "seed; medians over seeds. Pattern similarity = K-2:4's pattern_max/mean_similarity at the last "
            "iteration (chance two agents pick the same 2:4 pattern; 1/6 = uniform, the guide's bar is < 0.5). 'steps to X% win' = first evaluation at or above X "
            "(median when every seed got there). Mask agreement = mean over agent (or unit-type) pairs of the share "
            "of weight positions their final binary masks keep or prune alike (diversity: lower = more diverse). "
            "env-steps/s = env steps / RLlib's training time (sampling, updates "
            "and evaluation; startup excluded); wall s includes building the algorithm and the final checkpoint.")
    figure = save_figure(plot(runs), args.output, "learning.png")
    paths = write_results(
        args.output,
        "learning",
        title="Learning: K-2:4 vs Kaleidoscope vs QMIX, greedy test performance vs env steps (CPU)",
        meta=run_meta(args, __file__, argv),
        tables=[Table("rows", "Final performance and time per env and mask", rows, columns, note),
                Table("run_rows", "Every run", [{k: v for k, v in r.items() if k != "curve"} for r in runs],
                      run_columns)],
        findings=findings(rows, runs) + continued_finding(runs, args.budget) + (
            [f"Pending (not finished; a rerun without --report-only continues them): {', '.join(pending)}."]
            if pending else []),
        figures=[figure],
        data={"runs": runs, "pending": pending, "target": TARGET, "train_cli_args": extra, "runs_dir": str(args.runs)},
    )
    print(paths["md"].read_text())
    return paths | {"png": figure}


if __name__ == "__main__":
    main()
