"""Ray Tune sweeps from YAML: one file names the env, the K24QMix settings and the grid.

A file's sections mirror ``K24QMixConfig``'s builder methods (``env_runners:`` becomes
``config.env_runners(**section)``), so every key means what RLlib's and this package's docs say it means.
``{grid_search: [a, b]}`` may stand in place of any value. ``Sweep.param_space()`` is a plain RLlib config dict
(``K24QMixConfig(...).to_dict()`` with ``tune.grid_search`` at the keys each grid changes), so the same file runs
from ``k24-sweep`` (``examples/sweep.py``) or from a few lines of ``tune.run`` / ``tune.Tuner``.

Loading builds and validates the config of every grid point and checks that Tune's own resolution of the
param space reproduces them, so a typo or a bad value fails before Ray starts. Existing results are never
overwritten: ``run_sweep`` refuses a ``storage_path/<name>`` that already exists.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import itertools
import os
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Iterator, Mapping, NoReturn, Sequence

import ray
import yaml
from ray import tune
from ray.tune.search.variant_generator import generate_variants

from k24_rllib.algorithm import K24QMix, K24QMixConfig
from k24_rllib.cli import CliError, first_line, load_yaml, run_cli, section_keys
from k24_rllib.experiment import init_ray

KeyPath = tuple[str, ...]

GRID = "grid_search"
ENV_STEPS = "env_runners/num_env_steps_sampled_lifetime"
SECTIONS = ("env_runners", "learners", "training", "evaluation", "reporting", "debugging")
TOP_LEVEL = (
    "name", "stop", "num_samples", "max_concurrent_trials", "checkpoint_frequency", "env", "env_config", *SECTIONS
)


@dataclass(frozen=True)
class _Placement:
    """Where one YAML grid lands in the config dict."""

    leaf: KeyPath  # the grid's place in the YAML spec, e.g. ("training", "K24_args", "div_coef")
    at: KeyPath  # the config-dict key that holds Tune's grid_search
    options: list[Any]  # the YAML values
    values: list[Any]  # what each option puts at ``at``
    derived: frozenset[KeyPath]  # other keys an option changes (e.g. max_seq_len from the map): tune.sample_from


@dataclass(frozen=True)
class Sweep:
    """One validated sweep: Tune's settings plus the config spec, whose grids are ``{"grid_search": [...]}``."""

    name: str
    stop: dict[str, float]
    spec: dict[str, Any]  # "env", "env_config" and the SECTIONS, as written in the file
    num_samples: int = 1
    max_concurrent_trials: int | None = None
    checkpoint_frequency: int = 0
    source: str = "<sweep>"  # the file, for messages
    _grid: dict[KeyPath, list[Any]] = field(init=False, repr=False, compare=False)
    _placements: list[_Placement] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Validates everything up front (Ray must not start on a sweep that fails at trial 37)."""
        if not isinstance(self.name, str) or not self.name or "/" in self.name:
            self._fail(f"name={self.name!r} is invalid: must be a non-empty string without '/'")
        stop_ok = isinstance(self.stop, Mapping) and bool(self.stop) and all(
            isinstance(k, str) and _is_number(v) for k, v in self.stop.items()
        )
        if not stop_ok:
            self._fail(f"stop={self.stop!r} is invalid: must map result keys to numbers, e.g. {{{ENV_STEPS}: 50000}}")
        for key, minimum in (("num_samples", 1), ("checkpoint_frequency", 0)):
            if not _is_int(getattr(self, key)) or getattr(self, key) < minimum:
                self._fail(f"{key}={getattr(self, key)!r} is invalid: must be an integer >= {minimum}")
        mct = self.max_concurrent_trials
        if mct is not None and (not _is_int(mct) or mct < 1):
            self._fail(f"max_concurrent_trials={mct!r} is invalid: must be a positive integer (or omitted)")
        if not isinstance(self.spec.get("env"), (str, dict)):
            self._fail("env is missing: name an env family (smac, smacv2, mpe, coordination, ...)")
        try:
            object.__setattr__(self, "_grid", dict(_grid_leaves(self.spec)))
        except CliError as err:
            self._fail(str(err))
        object.__setattr__(self, "_placements", self._place_grids())
        self._check_tune_reproduces(self.param_space())

    @property
    def grid(self) -> dict[KeyPath, list[Any]]:
        """Every grid in the spec: its path -> its values."""
        return self._grid

    def points(self) -> list[dict[KeyPath, Any]]:
        """The Cartesian product of all grids (what Tune runs, ``num_samples`` times each)."""
        grid = self.grid
        return [dict(zip(grid, combo)) for combo in itertools.product(*grid.values())]

    def config(self, point: Mapping[KeyPath, Any] | None = None) -> K24QMixConfig:
        """The validated ``K24QMixConfig`` of one grid point; grids not in ``point`` take their first value."""
        values = {leaf: options[0] for leaf, options in self.grid.items()} | dict(point or {})
        spec = _substitute(self.spec, values)
        try:
            config = K24QMixConfig().environment(spec["env"], env_config=spec.get("env_config", {}))
            for section in SECTIONS:
                if section in spec:
                    config = getattr(config, section)(**spec[section])
            config.validate()
        except (ValueError, TypeError, ImportError) as err:
            where = ", ".join(f"{_dotted(leaf)}={value!r}" for leaf, value in (point or {}).items())
            first = first_line(err)
            self._fail(f"{where + ': ' if where else ''}{first}")
        return config

    def param_space(self) -> dict[str, Any]:
        """The RLlib config dict with ``tune.grid_search`` where the grids land; for Tuner and tune.run alike."""
        space = self.config().to_dict()
        for p in self._placements:
            _set(space, p.at, tune.grid_search(copy.deepcopy(p.values)))
            for path in p.derived:
                _set(space, path, tune.sample_from(partial(_derived_value, self, path)))
        return space

    def _place_grids(self) -> list[_Placement]:
        """Finds, per grid, the config-dict keys its values change (names differ: ``lambda`` vs ``lambda_``,
        ``replay_buffer_config`` merges defaults, a map changes ``max_seq_len``) by building one config per value."""
        base = self.config().to_dict()
        placements: list[_Placement] = []
        for leaf, options in self.grid.items():
            if len(options) == 1:  # a trimmed list: the base config already holds its only value
                continue
            dicts = [self.config({leaf: option}).to_dict() for option in options]
            changed = set().union(*(_changed(base, d) for d in dicts))
            if not changed:
                self._fail(f"the grid over {_dotted(leaf)} changes nothing in the config (repeated values?)")
            at = _common_prefix(changed) or _dict_path(leaf)
            derived = frozenset(path for path in changed if path[: len(at)] != at)
            if len(derived) == len(changed):
                self._fail(f"cannot tell where the grid over {_dotted(leaf)} lands in the config ({changed})")
            for other in placements:
                if _overlaps(at, other.at) or at in other.derived or other.at in derived:
                    self._fail(f"the grids over {_dotted(leaf)} and {_dotted(other.leaf)} set the same key "
                               f"{'.'.join(at)}; merge them into one grid_search")
            placements.append(_Placement(leaf, at, list(options), [_get(d, at) for d in dicts], derived))
        return placements

    def _check_tune_reproduces(self, space: dict[str, Any]) -> None:
        """Tune's resolution of ``space`` must give exactly the configs built point by point (it does not where
        one grid's effect depends on another's value; such a sweep must be split)."""
        expected = [self.config(point).to_dict() for point in self.points()]
        resolved = [spec["config"] for _, spec in generate_variants({"config": space})]
        if len(resolved) != len(expected) or any(config not in resolved for config in expected):
            self._fail("Tune's grid does not reproduce every grid point (grids whose effects depend on each "
                       "other); split the sweep into several files")

    def _fail(self, message: str) -> NoReturn:
        raise CliError(f"{self.source}: {message}")


def load_sweep(path: str | Path) -> Sweep:
    """Reads and validates a sweep YAML; every mistake is a one-line ``CliError`` (a ValueError) naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CliError(f"sweep file {path} does not exist")
    try:
        with path.open() as stream:  # a stream, so YAML's message names the file
            raw = load_yaml(stream)
    except yaml.YAMLError as err:
        raise CliError(f"{path}: invalid YAML: {' '.join(str(err).split())}") from err
    if not isinstance(raw, dict):
        raise CliError(f"{path}: expected a mapping with keys {', '.join(TOP_LEVEL)}")
    _check_keys(path, "", raw, TOP_LEVEL)
    for section in SECTIONS:
        if section in raw:
            if not isinstance(raw[section], dict) or GRID in raw[section]:
                raise CliError(f"{path}: {section} must be a mapping of {section}() keywords")
            _check_keys(path, f"{section}.", raw[section], section_keys(K24QMixConfig, section))
    spec = {key: raw[key] for key in ("env", "env_config", *SECTIONS) if key in raw}
    stop = raw.get("stop")
    if isinstance(stop, dict) and _is_number(stop.get(ENV_STEPS)) and "t_max" not in spec.get("training", {}):
        # The schedules' progress is t_env / t_max: by default they run over the whole budget.
        spec["training"] = {**spec.get("training", {}), "t_max": int(stop[ENV_STEPS])}
    return Sweep(
        name=raw.get("name", path.stem),
        stop=stop,
        spec=spec,
        num_samples=raw.get("num_samples", 1),
        max_concurrent_trials=raw.get("max_concurrent_trials"),
        checkpoint_frequency=raw.get("checkpoint_frequency", 0),
        source=str(path),
    )


def run_sweep(sweep: Sweep, storage_path: str | Path, *, address: str | None = None) -> tune.ResultGrid:
    """Runs the grid with ``tune.Tuner("K24QMix")`` and returns its ResultGrid.

    Each trial writes ``storage_path/<name>/<trial>/`` with result.json, progress.csv, params.json, TensorBoard
    events (Tune's TBXLoggerCallback) and checkpoints. Ray is started (or joined at ``address``) if it is not
    running. Without an address, a trial larger than the Ray cluster is refused: Tune would wait for it forever.
    """
    storage = Path(storage_path).resolve()
    if (storage / sweep.name).exists():
        raise CliError(f"{storage / sweep.name} already exists and is never overwritten; "
                       f"choose another --output or change name in {sweep.source}")
    if not ray.is_initialized():
        init_ray(address)
    if address is None:
        _check_trials_fit(sweep)
    tuner = tune.Tuner(
        "K24QMix",
        param_space=sweep.param_space(),
        tune_config=tune.TuneConfig(num_samples=sweep.num_samples, max_concurrent_trials=sweep.max_concurrent_trials),
        run_config=tune.RunConfig(
            name=sweep.name,
            storage_path=str(storage),
            stop=dict(sweep.stop),
            checkpoint_config=tune.CheckpointConfig(
                checkpoint_frequency=sweep.checkpoint_frequency, checkpoint_at_end=True
            ),
        ),
    )
    return tuner.fit()


@run_cli
def main(argv: Sequence[str] | None = None) -> int:
    """``k24-sweep`` and ``examples/sweep.py``: load, run, say where the results are."""
    parser = argparse.ArgumentParser(description="Run a Ray Tune grid of K24QMix from a YAML file.")
    parser.add_argument("yaml", help="sweep file, e.g. tune_configs/compare_3m.yaml")
    parser.add_argument("--output", default="results", help="storage dir; trials go to OUTPUT/<name>/")
    parser.add_argument("--num-samples", type=int, default=None, help="runs per grid point (overrides the file)")
    parser.add_argument("--address", default=None, help="Ray cluster address (e.g. auto); default: local Ray")
    args = parser.parse_args(argv)
    sweep = load_sweep(args.yaml)
    if args.num_samples is not None:
        sweep = dataclasses.replace(sweep, num_samples=args.num_samples)
    results = run_sweep(sweep, args.output, address=args.address)
    where = Path(args.output).resolve() / sweep.name
    print(f"trials: {len(results)}, failed: {results.num_errors} | results: {where}/<trial>/result.json | "
          f"TensorBoard: tensorboard --logdir {where}")
    return 1 if results.num_errors else 0


def _check_trials_fit(sweep: Sweep) -> None:
    have = ray.cluster_resources().get("CPU", 0.0)
    for point in sweep.points():
        need = K24QMix.default_resource_request(sweep.config(point).to_dict()).required_resources.get("CPU", 0.0)
        if need > have:
            raise CliError(
                f"{sweep.source}: a trial needs {need:g} CPUs (1 for the algorithm + env runners x "
                f"num_cpus_per_env_runner) but Ray has {have:g}; lower env_runners.num_cpus_per_env_runner "
                "or num_env_runners"
            )


def _check_keys(path: Path, prefix: str, mapping: Mapping[str, Any], valid: Sequence[str] | set[str]) -> None:
    for key in mapping:
        if key not in valid:
            raise CliError(f"{path}: unknown key {prefix}{key}; valid: {', '.join(sorted(valid))}")


def _is_grid(node: Any) -> bool:
    """``{grid_search: [...]}``; any other dict holding ``grid_search`` is a mistake worth a clear error."""
    if not isinstance(node, dict) or GRID not in node:
        return False
    if len(node) != 1 or not isinstance(node[GRID], list) or not node[GRID]:
        raise CliError(f"write a grid as {{grid_search: [value, ...]}} with nothing beside it, not {node!r}")
    return True


def _grid_leaves(node: Any, path: KeyPath = ()) -> Iterator[tuple[KeyPath, list[Any]]]:
    if _is_grid(node):
        yield path, node[GRID]
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _grid_leaves(value, (*path, key))
    elif isinstance(node, list) and any(_is_grid(item) for item in node):
        raise CliError(f"grid_search inside the list {_dotted(path)} is not supported; grid the whole list")


def _substitute(node: Any, values: Mapping[KeyPath, Any], path: KeyPath = ()) -> Any:
    """A deep copy of ``node`` with the grid at each path in ``values`` replaced by that value."""
    if path in values:
        return copy.deepcopy(values[path])
    if isinstance(node, dict):
        return {key: _substitute(value, values, (*path, key)) for key, value in node.items()}
    return copy.deepcopy(node)


def _changed(a: Any, b: Any, path: KeyPath = ()) -> set[KeyPath]:
    """The deepest keys at which two config dicts differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        return set().union(*(_changed(a.get(k, _MISSING), b.get(k, _MISSING), (*path, k)) for k in a | b))
    return set() if a == b else {path}


_MISSING = object()


def _common_prefix(paths: set[KeyPath]) -> KeyPath:
    return tuple(os.path.commonprefix(sorted(paths)))


def _dict_path(leaf: KeyPath) -> KeyPath:
    """A YAML path's own key in the config dict: sections are builder methods, not keys."""
    return leaf[1:] if leaf[0] in SECTIONS else leaf


def _overlaps(a: KeyPath, b: KeyPath) -> bool:
    n = min(len(a), len(b))
    return a[:n] == b[:n]


def _get(d: Any, path: KeyPath) -> Any:
    for key in path:
        d = d[key]
    return d


def _set(d: dict[str, Any], path: KeyPath, value: Any) -> None:
    _get(d, path[:-1])[path[-1]] = value


def _derived_value(sweep: Sweep, path: KeyPath, spec: Any) -> Any:
    """``tune.sample_from``: the value at ``path`` for the grid point Tune resolved (e.g. a map's max_seq_len)."""
    config = spec["config"]
    point = {p.leaf: p.options[p.values.index(_get(config, p.at))] for p in sweep._placements}
    return _get(sweep.config(point).to_dict(), path)


def _dotted(path: KeyPath) -> str:
    return ".".join(path)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
