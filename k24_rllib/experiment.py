"""From parsed CLI arguments to a finished run: config, Ray, training loop, logs and checkpoints.

A run directory holds ``checkpoint/`` (the latest RLlib checkpoint, replaced atomically), ``tensorboard/``
(event files) and ``result.jsonl`` (one flattened result per iteration). An existing run directory is only ever
continued (``--resume``), never overwritten.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
import traceback
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from k24_rllib.cli import (
    CliError,
    build_parser,
    first_line,
    fragment_length,
    local_cpus_per_worker,
    local_resources_error,
    parse_args,
    run_cli,
)
from k24_rllib.envs import NAME_KEYS

CHECKPOINT = "checkpoint"


def build_config(args: argparse.Namespace) -> Any:
    """The K24QMixConfig that the command line describes (validated)."""
    from k24_rllib import K24QMixConfig

    overrides = args.overrides
    env_config = {NAME_KEYS[args.family]: args.name, **overrides["env_args"]}
    if args.family in ("smac", "smacv2"):
        env_config.setdefault("backend", args.backend)
    smax = env_config.get("backend") == "smax"
    cpus = 1.0 if args.address else local_cpus_per_worker(args.num_workers)
    try:
        config = (
            K24QMixConfig()
            .environment(args.family, env_config=env_config)
            .env_runners(
                num_env_runners=args.num_workers,
                num_envs_per_env_runner=args.envs_per_worker,
                num_cpus_per_env_runner=cpus,
                rollout_fragment_length=fragment_length(args.num_workers, args.envs_per_worker),
                gym_env_vectorize_mode="vector_entry_point" if smax else "sync",
            )
            .training(
                mask=args.mask,
                mixer=args.mixer,
                t_max=args.stop_timesteps,
                masks_per="unit_type" if args.n_unit_types else "agent",
                K24_args=overrides["K24_args"],
                kalei_args=overrides["kalei_args"],
                **overrides["training"],
            )
            .learners(**overrides["learners"])
            .evaluation(
                evaluation_interval=args.eval_every or None,
                evaluation_duration=args.eval_episodes,
                evaluation_duration_unit="episodes",
                evaluation_num_env_runners=0,
                evaluation_config=K24QMixConfig.overrides(explore=False),
            )
            .debugging(seed=args.seed)
        )
        if args.n_unit_types and config.n_unit_types != args.n_unit_types:
            raise CliError(
                f"--n-unit-types {args.n_unit_types} does not match {args.family} {args.name!r}, "
                f"which has {config.n_unit_types} unit types"
            )
        config.validate()
        if not args.address and (too_big := local_resources_error(config, os.cpu_count() or 1,
                                                                  torch.cuda.device_count())):
            raise CliError(too_big)
    except (ValueError, TypeError, ImportError) as err:
        raise CliError(first_line(err)) from err
    return config


def prepare_output(output: str | None, resume: bool, default_name: str) -> Path:
    """The run directory: new and empty, or (with ``resume``) an existing one holding a checkpoint."""
    path = Path(output) if output else Path("results") / f"{default_name}_{time.strftime('%Y%m%d-%H%M%S')}"
    if resume:
        if not (path / CHECKPOINT).is_dir():
            raise CliError(f"--resume: no checkpoint in {path}; train without --resume first")
    elif path.exists() and any(path.iterdir()):
        raise CliError(f"{path} already holds results; pass --resume to continue it, or choose another --output")
    path.mkdir(parents=True, exist_ok=True)
    return path


def init_ray(address: str | None) -> None:
    """Starts a Ray of this machine's own or, with ``address``, joins a cluster; a Ray this process already runs is
    used as it is. Without ``address`` it never joins a head that ``ray start`` left running (``ray.init()``'s
    default would, and that head's life and CPUs would then be this run's)."""
    import ray

    if ray.is_initialized():
        return
    if not address:
        ray.init(address="local", include_dashboard=False, log_to_driver=False)
        return
    try:
        ray.init(address=address)
    except (ConnectionError, RuntimeError) as err:
        if "InvalidAuthToken" in "".join(traceback.format_exception(err)):  # Ray wraps it in a ConnectionError
            raise CliError(f"the Ray cluster at {address} refused this client's token: with an explicit address, "
                           "set RAY_AUTH_MODE=token and put the head's token in ~/.ray/auth_token (or use --address "
                           "auto on a cluster node)") from err
        raise CliError(f"could not join a Ray cluster at {address} ({first_line(err)}); start one with "
                       "`ray start --head` or check the address") from err


def train(
    config: Any, run_dir: Path, resume: bool, checkpoint_every: int, quiet: bool = False, stop: int | None = None
) -> dict[str, Any]:
    """Trains until ``stop`` env steps (default ``t_max``), logging every iteration; returns the last result.

    A resumed run given a larger ``stop`` trains on to it; its schedules keep the saved ``t_max`` (temperature
    annealing, resets and progress are not re-stretched).
    """
    from tensorboardX import SummaryWriter
    from tqdm import tqdm

    algo = restore(run_dir / CHECKPOINT) if resume else config.build_algo()
    earlier_s = drop_rows_after(run_dir, algo.iteration) if resume else 0.0
    t_max = stop or algo.config.t_max
    steps, iteration, started = env_steps(algo), 0, time.time()
    # on resume, hide what an earlier sitting logged after its last checkpoint: those steps are trained again
    writer = SummaryWriter(str(run_dir / "tensorboard"), purge_step=steps + 1 if resume else None)
    result: dict[str, Any] = {}
    first_steps = steps
    with tqdm(total=t_max, initial=steps, disable=quiet, unit="step", dynamic_ncols=True) as bar:
        while steps < t_max:
            result = _train_iteration(algo, run_dir)
            iteration += 1
            new_steps = env_steps(algo)
            bar.update(new_steps - steps)
            steps = new_steps
            summary = summarise(result, (steps - first_steps) / max(time.time() - started, 1e-9))
            bar.set_postfix({k: v for k, v in summary.items() if k != "env_steps"}, refresh=False)
            result["time_total_s"] = result.get("time_total_s", 0.0) + earlier_s  # RLlib's restarts on restore
            log_result(writer, run_dir, result, steps)
            if checkpoint_every and iteration % checkpoint_every == 0:
                save_checkpoint(algo, run_dir)
    save_checkpoint(algo, run_dir)
    writer.close()
    algo.stop()
    return result


def _train_iteration(algo: Any, run_dir: Path) -> dict[str, Any]:
    """``algo.train()``; a run stopped by non-finite losses ends in a one-line error naming its last checkpoint."""
    from k24_rllib.algorithm.learner import NonFiniteTrainingError

    try:
        return algo.train()
    except NonFiniteTrainingError as err:
        last = run_dir / CHECKPOINT
        algo.stop()
        saved = f"last good checkpoint: {last}" if last.is_dir() else "no checkpoint was saved"
        raise CliError(f"{first_line(err)}; {saved}") from err


def env_steps(algo: Any) -> int:
    from ray.rllib.utils.metrics import ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME

    return int(algo.metrics.peek((ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME), default=0))


def summarise(result: dict[str, Any], steps_per_s: float) -> dict[str, Any]:
    """The numbers the progress bar shows."""
    runners = result.get("env_runners", {})
    learner = result.get("learners", {}).get("default_policy", {})
    test = result.get("evaluation", {}).get("env_runners", {})
    summary = {
        "return": runners.get("episode_return_mean"),
        "win": runners.get("win_rate"),
        "test_win": test.get("win_rate"),
        "temp": learner.get("temperature"),
        "steps/s": steps_per_s,
    }
    return {k: round(float(v), 3) for k, v in summary.items() if v is not None and np.isfinite(float(v))}


def finite_numbers(result: dict[str, Any]) -> dict[str, float]:
    """Nested result dict -> {"a/b/c": number} (what TensorBoard and result.jsonl hold), flattened by Tune's own
    ``flatten_dict`` so a run's keys are a sweep trial's; booleans, non-numbers and NaN/inf are dropped."""
    from ray.tune.utils import flatten_dict

    numbers = {
        key: float(value)
        for key, value in flatten_dict(result, delimiter="/").items()
        if isinstance(value, (int, float, np.number)) and not isinstance(value, bool)
    }
    return {key: value for key, value in numbers.items() if np.isfinite(value)}


def log_result(writer: Any, run_dir: Path, result: dict[str, Any], steps: int) -> None:
    """One row in ``result.jsonl`` and TensorBoard, finite values only.

    RLlib reports NaN for metrics with nothing to reduce this iteration (evaluation between evaluations, build-time
    counters), so a "nan" in the results would mean nothing; a non-finite loss is counted instead, as
    ``num_skipped_updates``, and stops the run when it repeats.
    """
    flat = finite_numbers(result)
    for key, value in flat.items():
        writer.add_scalar(key, value, global_step=steps)
    writer.flush()
    with open(run_dir / "result.jsonl", "a") as f:
        f.write(json.dumps({"env_steps": steps, **flat}) + "\n")


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a ``result.jsonl``; a last line that does not parse is a row a crash cut off mid-write (rows
    are appended while training runs) and is left out. Any other line that does not parse is an error."""
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    rows = []
    for number, line in enumerate(lines, start=1):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as err:
            if number < len(lines):
                raise ValueError(f"{path}: line {number} is not a JSON row ({err}); remove or fix it") from None
    return rows


def drop_rows_after(run_dir: Path, iteration: int) -> float:
    """Keeps the ``result.jsonl`` rows up to the checkpoint's ``iteration``: later ones (logged before a crash
    stopped the run ahead of its next checkpoint) are trained again after the resume, and must not count twice.
    Returns the kept rows' ``time_total_s``, the training time the resumed run continues from."""
    path = run_dir / "result.jsonl"
    if not path.is_file():
        return 0.0
    kept = [row for row in read_rows(path) if row["training_iteration"] <= iteration]
    path.write_text("".join(json.dumps(row) + "\n" for row in kept))
    return float(kept[-1].get("time_total_s", 0.0)) if kept else 0.0


def save_checkpoint(algo: Any, run_dir: Path) -> Path:
    """Writes the new checkpoint beside the old one, then swaps, so a crash never leaves no checkpoint."""
    final, fresh, old = run_dir / CHECKPOINT, run_dir / f"{CHECKPOINT}.new", run_dir / f"{CHECKPOINT}.old"
    shutil.rmtree(fresh, ignore_errors=True)
    algo.save_to_path(str(fresh.resolve()))
    if final.exists():
        final.rename(old)
    fresh.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def check_checkpoint(path: str | Path) -> Path:
    """Fails fast (before Ray starts) on a path that cannot be a checkpoint; ``~`` is expanded."""
    path = Path(path).expanduser()
    if not path.exists():
        raise CliError(f"checkpoint {path} does not exist")
    if not (path / "rllib_checkpoint.json").is_file():
        raise CliError(f"{path} is not an RLlib checkpoint (no rllib_checkpoint.json); pass the checkpoint dir")
    return path


def restore(path: str | Path) -> Any:
    """``Algorithm.from_checkpoint`` with one-line errors for a missing or unreadable checkpoint."""
    from ray.rllib.algorithms.algorithm import Algorithm

    path = check_checkpoint(path)
    try:
        return Algorithm.from_checkpoint(str(path.resolve()))
    except Exception as err:  # noqa: BLE001 - any failure inside Ray means an unreadable checkpoint
        raise CliError(f"checkpoint {path} could not be restored ({type(err).__name__}: {first_line(err, 600)}); "
                       "it may be corrupt or from another k24-rllib/Ray version") from err


@run_cli
def main(family: str, default_name: str, description: str, argv: Sequence[str] | None = None) -> int:
    """Every training command: parse, validate, prepare the run dir, train, say where it went."""
    parser = build_parser(description, family, default_name)
    args = parse_args(parser, argv)
    args.family = family_of(args.family, args.name)
    stop = None
    if args.resume:
        refuse_fixed_flags(args, parser)
        config = None
        stop = args.stop_timesteps if args.stop_timesteps != parser.get_default("stop_timesteps") else None
    else:
        config = build_config(args)
    run_dir = prepare_output(args.output, args.resume, f"{args.family}_{args.name}_{args.mask}")
    init_ray(args.address)
    train(config, run_dir, args.resume, args.checkpoint_every, args.quiet, stop=stop)
    print(final_message(run_dir))
    return 0


def train_smac(argv: Sequence[str] | None = None) -> int:
    """``k24-train`` and ``examples/train_smac.py``: SMAC maps (SMAX or real SC2) and SMACv2 scenarios, 3m default."""
    return main("smac", "3m", "Train K24QMix on a SMAC map (SMAX by default; --backend sc2 for real StarCraft II) "
                "or a SMACv2 scenario.", argv)


def train_mpe(argv: Sequence[str] | None = None) -> int:
    """``k24-train-mpe`` and ``examples/train_mpe.py``: MPE tasks, simple_spread by default."""
    return main("mpe", "simple_spread", "Train K24QMix on an MPE task (mpe2; simple_spread by default).", argv)


# Flags a resumed run may take: the rest are settings saved in its checkpoint.
RESUMABLE_FLAGS = ("stop_timesteps", "checkpoint_every", "output", "resume", "address", "quiet")


def refuse_fixed_flags(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """--resume continues a run with the settings in its checkpoint: a flag that would change them is an error."""
    changed = [
        action.option_strings[0]
        for action in parser._actions
        if action.dest not in RESUMABLE_FLAGS + ("help",) and action.option_strings
        and getattr(args, action.dest) != action.default
    ]
    changed += [f"--{group}.{key}" for group, values in args.overrides.items() for key in values]
    if changed:
        raise CliError(
            f"--resume continues the saved run with its own settings; {', '.join(changed)} cannot change "
            "(drop them, or start a new run with another --output); --stop-timesteps may extend the budget"
        )


def family_of(family: str, name: str) -> str:
    """SMAC maps and SMACv2 scenarios share ``--map``: a SMACv2 scenario name selects the "smacv2" family."""
    from k24_rllib.envs import available_maps

    if family == "smac" and name not in available_maps("smac") and name in available_maps("smacv2"):
        return "smacv2"
    return family


def final_message(run_dir: Path) -> str:
    return (
        f"results: {run_dir}/result.jsonl | TensorBoard: tensorboard --logdir {run_dir}/tensorboard | "
        f"checkpoint: {run_dir}/{CHECKPOINT}"
    )
