"""Tune sweeps from YAML: every shipped file loads into K24QMixConfig, Tune's grid reaches the right keys, bad
input fails in one line, and a two-trial sweep writes result.json and TensorBoard events."""

from __future__ import annotations

import copy
import json
import re
import struct
from pathlib import Path
from typing import Any

import pytest
import yaml

pytest.importorskip("ray")

from ray.tune.search.variant_generator import generate_variants  # noqa: E402

from k24_rllib import K24QMixConfig  # noqa: E402
from k24_rllib.cli import CliError  # noqa: E402
from k24_rllib.sweep import GRID, Sweep, load_sweep, main, run_sweep  # noqa: E402

TUNE_CONFIGS = sorted((Path(__file__).parents[2] / "tune_configs").glob("*.yaml"))
OPTIONAL_DEPENDENCY = {"mpe": "mpe2"}  # env family -> module its env info needs
KEY_LINE = re.compile(r"^\s*[\w/.]+:")


def shipped(path: Path) -> Sweep:
    family = yaml.safe_load(path.read_text())["env"]
    if family in OPTIONAL_DEPENDENCY:
        pytest.importorskip(OPTIONAL_DEPENDENCY[family])
    return load_sweep(path)


def tune_variants(sweep: Sweep) -> list[dict[str, Any]]:
    """The trial configs Tune generates from the param space (as Tuner and tune.run both do)."""
    return [spec["config"] for _, spec in generate_variants({"config": sweep.param_space()})]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(text)
    return path


MINIMAL = "name: t\nstop: {env_runners/num_env_steps_sampled_lifetime: 100}\nenv: coordination\n"


def test_tune_configs_hold_the_issue_sweeps():
    names = {path.name for path in TUNE_CONFIGS}
    assert {"k24_guide_grid.yaml", "compare_3m.yaml", "mpe_simple_spread.yaml", "quick_coordination.yaml"} <= names


@pytest.mark.parametrize("path", TUNE_CONFIGS, ids=lambda p: p.name)
def test_every_yaml_loads_into_the_config_class(path):
    sweep = shipped(path)
    for point in sweep.points():
        config = sweep.config(point)
        assert isinstance(config, K24QMixConfig)
        assert config.t_max > 0
        for leaf, value in point.items():  # the YAML value reached the builder method's setting
            if leaf[0] == "training" and len(leaf) == 3:
                assert getattr(config, leaf[1])[leaf[2]] == value
            elif leaf[0] in ("training", "debugging"):
                assert getattr(config, leaf[1]) == value


@pytest.mark.parametrize("path", TUNE_CONFIGS, ids=lambda p: p.name)
def test_tune_grid_values_reach_the_right_nested_keys(path):
    """Each trial config Tune makes, read back the way the trial's Algorithm reads it, is one grid point's config."""
    sweep = shipped(path)
    expected = [sweep.config(point).to_dict() for point in sweep.points()]
    variants = tune_variants(sweep)
    assert len(variants) == len(expected)
    for variant in variants:
        config = K24QMixConfig.from_dict(copy.deepcopy(variant))
        config.validate()
        assert config.to_dict() in expected


@pytest.mark.parametrize("path", TUNE_CONFIGS, ids=lambda p: p.name)
def test_every_yaml_key_is_commented(path):
    """A grid_search line is explained by the comment on the key it belongs to."""
    lines = path.read_text().splitlines()
    uncommented = [
        line for line in lines if KEY_LINE.match(line) and "#" not in line and not line.strip().startswith(GRID)
    ]
    assert not uncommented, uncommented


def test_guide_grid_spans_the_four_knobs():
    sweep = shipped(Path(__file__).parents[2] / "tune_configs" / "k24_guide_grid.yaml")
    knobs = {leaf[-1] for leaf in sweep.grid}
    assert knobs == {"temperature_init", "div_coef", "reset_interval", "reset_ratio"}
    assert all(set(grid) == {GRID} for grid in sweep.param_space()["K24_args"].values())
    assert {tuple(sorted(v["K24_args"].items())) for v in tune_variants(sweep)} == {
        tuple(sorted(sweep.config(p).K24_args.items())) for p in sweep.points()
    }


def test_a_map_grid_carries_each_maps_sequence_length(tmp_path):
    """A map changes max_seq_len too: Tune derives it per trial instead of crossing it with the maps."""
    sweep = load_sweep(write(tmp_path, MINIMAL.replace("coordination", "smac")
                             + "env_config: {map_name: {grid_search: [3m, 8m]}}\n"))
    by_map = {v["env_config"]["map_name"]: v["_model_config"]["max_seq_len"] for v in tune_variants(sweep)}
    assert by_map == {m: sweep.config({("env_config", "map_name"): m}).model_config["max_seq_len"] for m in by_map}
    assert by_map["3m"] != by_map["8m"]


def test_a_one_value_grid_is_a_plain_value(tmp_path):
    sweep = load_sweep(write(tmp_path, MINIMAL + "training: {mask: {grid_search: [kalei]}}\n"))
    assert sweep.param_space()["mask"] == "kalei" and len(tune_variants(sweep)) == 1


def test_numbers_in_scientific_notation_are_numbers(tmp_path):
    """YAML 1.1 reads 5e-4 as a string; the sweep loader reads it as the float users mean."""
    sweep = load_sweep(write(tmp_path, MINIMAL + "training: {lr: 5e-4, K24_args: {div_coef: 1e30}}\n"))
    assert sweep.config().lr == 5e-4 and sweep.config().K24_args["div_coef"] == 1e30


def test_t_max_defaults_to_the_stop_budget(tmp_path):
    assert load_sweep(write(tmp_path, MINIMAL)).config().t_max == 100
    assert load_sweep(write(tmp_path, MINIMAL + "training: {t_max: 50}\n")).config().t_max == 50


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: [1\n", "invalid YAML"),
        ("- a\n- b\n", "expected a mapping"),
        (MINIMAL + "trianing: {lr: 0.1}\n", "unknown key trianing; valid: checkpoint_frequency, debugging"),
        (MINIMAL + "training: {lrr: 0.1}\n", "unknown key training.lrr; valid: K24_args"),
        (MINIMAL + "env_runners: {num_workers: 1}\n", "unknown key env_runners.num_workers"),
        (MINIMAL + "training: {K24_args: {div_cof: {grid_search: [0.1, 1.0]}}}\n", "unknown key K24_args.div_cof"),
        (MINIMAL + "training: {K24_args: {div_coef: {grid_search: [0.1, -1]}}}\n",
         "training.K24_args.div_coef=-1: K24_args.div_coef=-1 is invalid"),
        (MINIMAL + "training: {mask: {grid_search: [k24, dense]}}\n", "mask='dense' is invalid"),
        (MINIMAL + "training: {mask: {grid_search: k24}}\n", "write a grid as {grid_search: [value, ...]}"),
        (MINIMAL + "training: {mask: {grid_search: [k24, k24]}}\n", "changes nothing"),
        (MINIMAL + "num_samples: 0\n", "num_samples=0 is invalid"),
        (MINIMAL.replace("stop: {env_runners/num_env_steps_sampled_lifetime: 100}\n", ""), "stop=None is invalid"),
        (MINIMAL.replace("env: coordination\n", ""), "env is missing"),
        (MINIMAL + "env_config: {map_name: 3m}\n", "map_name"),
    ],
)
def test_bad_input_is_a_one_line_error_naming_the_file(tmp_path, text, message):
    with pytest.raises(CliError) as err:
        load_sweep(write(tmp_path, text))
    assert message in str(err.value)
    assert str(err.value).startswith(str(tmp_path / "sweep.yaml"))
    assert "\n" not in str(err.value)


def test_cli_reports_a_missing_file_in_one_line(tmp_path, capsys):
    assert main([str(tmp_path / "nope.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: sweep file") and err.count("\n") == 1


def test_existing_results_are_never_overwritten(tmp_path):
    sweep = load_sweep(write(tmp_path, MINIMAL))
    (tmp_path / "out" / "t").mkdir(parents=True)
    (tmp_path / "out" / "t" / "keep.txt").write_text("old results")
    with pytest.raises(CliError, match="already exists"):
        run_sweep(sweep, tmp_path / "out")
    assert (tmp_path / "out" / "t" / "keep.txt").read_text() == "old results"


def test_a_trial_larger_than_the_machine_is_refused_not_left_hanging(ray_local, tmp_path):
    sweep = load_sweep(write(tmp_path, MINIMAL + "env_runners: {num_env_runners: 8, num_cpus_per_env_runner: 1}\n"))
    with pytest.raises(CliError, match="a trial needs 9 CPUs"):
        run_sweep(sweep, tmp_path / "out")
    assert not (tmp_path / "out" / "t").exists()


def scalar_tags(event_file: Path) -> set[str]:
    """Scalar tags in a TensorBoard event file (TFRecord framing: length, crc, Event proto, crc)."""
    from tensorboardX.proto import event_pb2

    data, tags, i = event_file.read_bytes(), set(), 0
    while i < len(data):
        (length,) = struct.unpack("Q", data[i : i + 8])
        event = event_pb2.Event.FromString(data[i + 12 : i + 12 + length])
        tags |= {value.tag for value in event.summary.value}
        i += 12 + length + 4
    return tags


def test_two_trial_sweep_writes_results_and_tensorboard_events(ray_local, tmp_path, capsys):
    """Through the CLI (examples/sweep.py calls this ``main``) on the local 2-CPU Ray of the fixture."""
    assert main([str(TUNE_CONFIGS[0].parent / "quick_coordination.yaml"), "--output", str(tmp_path)]) == 0
    assert "trials: 2, failed: 0" in capsys.readouterr().out
    trials = sorted(path for path in (tmp_path / "quick_coordination").iterdir() if path.is_dir())
    assert len(trials) == 2
    assert {json.loads((trial / "params.json").read_text())["mask"] for trial in trials} == {"k24", "none"}
    for trial in trials:
        last = json.loads((trial / "result.json").read_text().splitlines()[-1])
        assert last["env_runners"]["num_env_steps_sampled_lifetime"] >= 1000
        events = list(trial.glob("events.out.tfevents.*"))
        assert events, f"no TensorBoard events in {trial}"
        assert "ray/tune/env_runners/episode_return_mean" in scalar_tags(events[0])
