"""The command-line layer: one error wrapper for every command, one training parser with pymarl-style overrides.

Every command (``k24-train``, ``k24-train-mpe``, ``k24-evaluate``, ``k24-analyze``, ``k24-sweep`` and the
``examples/`` scripts that call the same functions) runs under ``run_cli``, so a user mistake ends the same way
everywhere: one line ``error: <message>`` on stderr and exit status 2.

``--K24_args.temperature_init=5.0`` sets one key of ``K24_args``; ``--env-args.map_name=3m`` one key of the env
config; ``--training.lr=1e-3`` any keyword of ``K24QMixConfig.training()``. Values are read as YAML scalars
(``5.0`` -> float, ``true`` -> bool, ``[1, 2]`` -> list). Every mistake is a one-line ``CliError``.
"""

from __future__ import annotations

import argparse
import functools
import inspect
import math
import os
import re
import sys
from dataclasses import fields
from typing import Any, Callable, ParamSpec, Sequence

import yaml

from k24_rllib.models import MASK_KINDS, MIXERS, ModelSettings
from k24_rllib.sparsity import K24Args, KaleiArgs

OVERRIDE_GROUPS = ("K24_args", "kalei_args", "env_args", "training", "learners")


class NumberLoader(yaml.SafeLoader):
    """PyYAML's safe loader that also reads ``1e-3``, ``5e-4`` and ``1e30`` as floats, as YAML 1.2 and Python do
    (YAML 1.1, which PyYAML follows, needs a dot and a signed exponent: ``1.0e-3``)."""


NumberLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def load_yaml(source: Any) -> Any:
    """YAML text or stream -> Python values, with ``NumberLoader``'s numbers."""
    return yaml.load(source, Loader=NumberLoader)  # noqa: S506 (a SafeLoader subclass)


class CliError(ValueError):
    """A user mistake on the command line; scripts print it as one line and exit with status 2."""


P = ParamSpec("P")


def run_cli(main: Callable[P, int]) -> Callable[P, int]:
    """Decorates a command's ``main``: a ``CliError`` becomes ``error: <message>`` on stderr and exit status 2.

    Only ``CliError`` (a user mistake, already phrased for the user) is caught; anything else is a bug and keeps
    its traceback. argparse's own ``--help`` and usage errors exit through ``SystemExit`` as usual.
    """

    @functools.wraps(main)
    def run(*args: P.args, **kwargs: P.kwargs) -> int:
        try:
            return main(*args, **kwargs)
        except CliError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2

    return run


def first_line(err: BaseException, limit: int = 1000) -> str:
    """The message's first line: RLlib appends advice lines ("To suppress all validation errors...")."""
    return (str(err).strip().splitlines() or [repr(err)])[0][:limit]


def build_parser(description: str, family: str, default_name: str) -> argparse.ArgumentParser:
    """The shared flags; ``family`` ("smac", "smacv2", "mpe") picks the env, ``default_name`` its map/task."""
    p = argparse.ArgumentParser(
        description=description,
        epilog="Dotted overrides: --K24_args.KEY=V, --kalei_args.KEY=V, --env-args.KEY=V, --training.KEY=V.",
    )
    name_flag = {"smac": "--map", "smacv2": "--scenario", "mpe": "--task"}[family]
    p.set_defaults(family=family)
    p.add_argument(name_flag, dest="name", default=default_name, help=f"{family} map/scenario/task name")
    p.add_argument("--backend", default="smax", choices=("smax", "sc2"), help="SMAX (JAX, default) or real SC2")
    p.add_argument("--mask", default="k24", choices=tuple(MASK_KINDS), help="K-2:4, Kaleidoscope, QMIX (none) or a "
                   "registered kind")
    p.add_argument("--mixer", default="qmix", choices=MIXERS)
    p.add_argument("--n-unit-types", type=int, default=None, help="one mask per unit type (expects N; SMACv2 "
                   "scenarios and SMAC maps with several unit types, e.g. 3s5z)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-workers", type=int, default=2, help="remote rollout workers (EnvRunners)")
    p.add_argument("--envs-per-worker", type=int, default=4, help="env copies each worker steps at once")
    p.add_argument("--stop-timesteps", type=int, default=50_000, help="training budget in env steps (t_max)")
    p.add_argument("--checkpoint-every", type=int, default=10, help="save every N iterations (0: only at end)")
    p.add_argument("--eval-every", type=int, default=10, help="greedy test episodes every N iterations (0: off)")
    p.add_argument("--eval-episodes", type=int, default=16)
    p.add_argument("--output", default=None, help="results dir (default: results/<env>_<mask>_<time>)")
    p.add_argument("--resume", action="store_true", help="continue the run saved in --output")
    p.add_argument("--address", default=None, help="Ray cluster address (e.g. auto); default: local Ray")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Known flags plus dotted overrides, collected into ``args.overrides`` = {group: {key: value}}."""
    args, rest = parser.parse_known_args(argv)
    args.overrides = parse_overrides(rest)
    return args


def parse_overrides(tokens: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``["--K24_args.div_coef=0.2", "--env-args.map_name", "8m"]`` -> {"K24_args": {"div_coef": 0.2}, ...}."""
    overrides: dict[str, dict[str, Any]] = {group: {} for group in OVERRIDE_GROUPS}
    tokens = list(tokens)
    while tokens:
        token = tokens.pop(0)
        if not token.startswith("--") or "." not in token:
            raise CliError(f"unrecognised argument {token!r}; see --help (overrides look like --K24_args.div_coef=0.2)")
        key, has_value, value = token[2:].partition("=")
        if not has_value:
            if not tokens:
                raise CliError(f"{token} needs a value, e.g. {token}=VALUE")
            value = tokens.pop(0)
        group, _, name = key.partition(".")
        group = group.replace("-", "_")
        if group not in OVERRIDE_GROUPS:
            raise CliError(f"unknown override group in {token!r}; valid: {', '.join(OVERRIDE_GROUPS)}")
        overrides[group][name] = _scalar(value)
    _check_keys(overrides)
    return overrides


def _scalar(text: str) -> Any:
    try:
        return load_yaml(text)
    except yaml.YAMLError:
        return text


def _check_keys(overrides: dict[str, dict[str, Any]]) -> None:
    from k24_rllib.algorithm.config import K24QMixConfig

    valid = {
        "K24_args": {f.name for f in fields(K24Args)},
        "kalei_args": {f.name for f in fields(KaleiArgs)},
        "training": section_keys(K24QMixConfig, "training"),
        "learners": section_keys(K24QMixConfig, "learners"),
    }
    for group, names in valid.items():
        for name in overrides[group]:
            if name not in names:
                raise CliError(f"unknown key {group}.{name}; valid: {', '.join(sorted(names))}")


def section_keys(config_cls: type, section: str) -> set[str]:
    """Keyword names accepted by ``config_cls.<section>()`` and every parent's; ``training()`` also takes the
    network's settings (``ModelSettings``) through ``**kwargs``."""
    names: set[str] = set(ModelSettings.names()) if section == "training" else set()
    for cls in config_cls.__mro__:
        method = cls.__dict__.get(section)
        if method is not None:
            names |= {n for n, p in inspect.signature(method).parameters.items() if p.kind == p.KEYWORD_ONLY}
    return names


def fragment_length(num_workers: int, envs_per_worker: int, per_iteration: int = 1000, longest: int = 64) -> int:
    """Env steps per env in one sample call: one round of every runner's call stays near ``per_iteration`` steps,
    so a run with many workers ends within about one such round of its budget (8 workers x 4 envs x 64 steps
    would sample 2,048 steps an iteration and stop a 3,000-step run at 4,115)."""
    return max(1, min(longest, math.ceil(per_iteration / (max(num_workers, 1) * envs_per_worker))))


def local_resources_error(config: Any, cpus: int, gpus: int) -> str | None:
    """Why a run on this machine's own Ray would wait forever for resources it lacks (Ray says nothing while it
    waits), or None when it fits: CPUs for EnvRunners and remote learners, GPUs for learners."""
    learners, gpu_each = config.num_learners, config.num_gpus_per_learner
    if gpu_each and max(learners, 1) * gpu_each > gpus:
        return (f"--learners.num_gpus_per_learner={gpu_each:g} with {learners} remote learners needs "
                f"{max(learners, 1) * gpu_each:g} GPUs, and torch sees {gpus} here; drop it to train on CPU")
    cpu_each = config.num_cpus_per_learner
    if cpu_each == "auto":  # RLlib's rule
        cpu_each = 0 if gpu_each else 1
    runners = config.num_env_runners * config.num_cpus_per_env_runner
    asked = runners + learners * cpu_each
    if asked > cpus:
        return (f"this run asks Ray for {asked:g} CPUs ({runners:g} for EnvRunners, {learners * cpu_each:g} for "
                f"{learners} remote learners) but this machine has {cpus}; lower --num-workers or set "
                "--learners.num_cpus_per_learner (e.g. 0.5)")
    return None


def local_cpus_per_worker(num_workers: int, cpus: int | None = None) -> float:
    """CPUs to reserve per EnvRunner so ``num_workers`` fit this machine (Ray hangs when they don't fit)."""
    cpus = cpus or os.cpu_count() or 1
    return min(1.0, round(cpus / max(num_workers, 1), 3))
