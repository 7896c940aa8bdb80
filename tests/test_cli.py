"""Bad input on the command line: one clear line, exit status 2, nothing saved is touched."""

from __future__ import annotations

import importlib.util
import json

import pytest

from k24_rllib.cli import CliError, build_parser, local_cpus_per_worker, parse_args, parse_overrides
from k24_rllib.models import ModelSettings
from k24_rllib.experiment import (
    build_config, check_checkpoint, drop_rows_after, main, prepare_output, read_rows, restore,
)


def args_for(*argv: str):
    return parse_args(build_parser("test", "smac", "3m"), list(argv))


def test_dotted_overrides_are_typed_and_grouped():
    overrides = parse_overrides(
        ["--K24_args.temperature_init=3.0", "--env-args.map_name", "8m", "--training.double_q=false"]
    )
    assert overrides["K24_args"] == {"temperature_init": 3.0}
    assert overrides["env_args"] == {"map_name": "8m"}
    assert overrides["training"] == {"double_q": False}


@pytest.mark.parametrize(("text", "value"), [("1e-3", 1e-3), ("5e-4", 5e-4), ("1e30", 1e30), ("-2.5E+3", -2500.0),
                                            ("1.0e-3", 1e-3), ("3", 3), ("e3", "e3")])
def test_numbers_in_scientific_notation_are_numbers(text, value):
    parsed = parse_overrides([f"--training.lr={text}"])["training"]["lr"]
    assert parsed == value and type(parsed) is type(value)


def test_scientific_notation_reaches_a_validated_config():
    args = parse_args(build_parser("t", "smac", "3m"), ["--training.lr=1e-3", "--K24_args.div_coef=1e30"])
    config = build_config(args)
    assert config.lr == 1e-3 and config.K24_args["div_coef"] == 1e30


@pytest.mark.parametrize(
    "token, words",
    [
        ("--K24_args.temprature_init=3", ["K24_args.temprature_init", "temperature_init"]),
        ("--training.learning_rate=1", ["training.learning_rate"]),
        ("--model.x=1", ["override group", "K24_args"]),
        ("--bogus", ["unrecognised argument"]),
    ],
)
def test_unknown_keys_are_named(token, words):
    with pytest.raises(CliError) as err:
        parse_overrides([token])
    assert all(word in str(err.value) for word in words)


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--K24_args.reset_ratio=1.5"], ["K24_args.reset_ratio", "(0, 1]"]),
        (["--K24_args.temperature_min=9"], ["K24_args.temperature_init"]),
        (["--training.td_lambda=2"], ["td_lambda", "[0, 1]"]),
        (["--map", "4m"], ["4m", "3m"]),
        (["--map", "3m", "--n-unit-types", "3"], ["--n-unit-types"]),
        (["--training.masked_layers=[fc1,fc5]"], ["masked_layers", "fc1, fc2, fc3, fc4"]),
    ],
)
def test_invalid_values_and_names_fail_before_anything_runs(argv, words):
    with pytest.raises(CliError) as err:
        build_config(args_for(*argv))
    message = str(err.value)
    assert "\n" not in message and all(word in message for word in words), message


def test_a_valid_command_line_builds_a_validated_config():
    config = build_config(args_for("--mask", "kalei", "--num-workers", "8", "--kalei_args.div_coef=0.2"))
    assert config.mask == "kalei" and config.kalei_args == {"div_coef": 0.2}
    assert config.num_env_runners == 8 and config.num_cpus_per_env_runner <= 1.0
    assert config.model_config["max_seq_len"] > 1


@pytest.mark.parametrize("value", ["[fc2,fc3]", "fc2,fc3"])
def test_masked_layers_is_a_dotted_override(value):
    config = build_config(args_for(f"--training.masked_layers={value}"))
    assert ModelSettings.from_mapping(vars(config)).masked_layers == ("fc2", "fc3")


def test_workers_share_the_local_cores():
    assert local_cpus_per_worker(8, cpus=2) == 0.25
    assert local_cpus_per_worker(1, cpus=2) == 1.0


def test_many_workers_sample_shorter_fragments_so_a_run_ends_near_its_budget():
    """One round of sample calls stays near 1,000 env steps: 8 x 4 x 64 would be 2,048 an iteration."""
    assert build_config(args_for("--num-workers", "8")).rollout_fragment_length == 32  # 8 x 4 x 32 = 1,024
    assert build_config(args_for("--num-workers", "2")).rollout_fragment_length == 64  # the default, unchanged
    assert build_config(args_for("--num-workers", "0")).rollout_fragment_length == 64


def test_existing_results_are_never_overwritten(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "result.jsonl").write_text(json.dumps({"env_steps": 1}) + "\n")
    with pytest.raises(CliError, match="--resume"):
        prepare_output(str(run), resume=False, default_name="x")
    with pytest.raises(CliError, match="no checkpoint"):
        prepare_output(str(run), resume=True, default_name="x")
    assert (run / "result.jsonl").read_text() == json.dumps({"env_steps": 1}) + "\n"


def test_train_script_reports_one_line_and_creates_nothing(tmp_path, capsys):
    out = tmp_path / "never"
    code = main("smac", "3m", "test", ["--output", str(out), "--K24_args.reset_ratio=7"])
    assert code == 2 and not out.exists()
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and len(err.splitlines()) == 1


def test_missing_and_non_checkpoint_paths(tmp_path):
    with pytest.raises(CliError, match="does not exist"):
        check_checkpoint(tmp_path / "nope")
    with pytest.raises(CliError, match="not an RLlib checkpoint"):
        check_checkpoint(tmp_path)


def test_corrupt_checkpoint_is_one_clear_line(ray_local, tmp_path):
    (tmp_path / "rllib_checkpoint.json").write_text("{ not json")
    (tmp_path / "class_and_ctor_args.pkl").write_bytes(b"garbage")
    with pytest.raises(CliError) as err:
        restore(tmp_path)
    assert "could not be restored" in str(err.value) and "\n" not in str(err.value)


def test_evaluate_script_missing_checkpoint(tmp_path, capsys):
    from k24_rllib.evaluate import main as evaluate

    assert evaluate(["--checkpoint", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_evaluate_names_a_malformed_mask_assignment_before_ray_starts(tmp_path, capsys):
    from k24_rllib.evaluate import main as evaluate

    with pytest.raises(SystemExit) as exit_:
        evaluate(["--checkpoint", str(tmp_path), "--masks", "1,x"])
    assert exit_.value.code == 2 and "expected mask numbers separated by commas, e.g. 1,0" in capsys.readouterr().err


def test_the_sc2_install_message_reaches_the_user_whole():
    pytest.importorskip("ray")
    if importlib.util.find_spec("smac") is not None:
        pytest.skip("a smac package is installed")
    with pytest.raises(CliError) as err:
        build_config(args_for("--backend", "sc2"))
    assert "SC2PATH" in str(err.value) and "PyPI" in str(err.value)


def test_resume_refuses_flags_it_cannot_change(tmp_path, capsys):
    argv = ["--output", str(tmp_path), "--resume", "--num-workers", "3", "--training.lr=0.01"]
    assert main("smac", "3m", "test", argv) == 2
    message = capsys.readouterr().err.strip()
    assert message.count("\n") == 0 and "--num-workers" in message and "--training.lr" in message


def test_resume_with_a_larger_budget_extends_the_run(ray_local, tmp_path):
    pytest.importorskip("jaxmarl")
    small = ["--num-workers", "0", "--envs-per-worker", "2", "--eval-every", "0", "--quiet", "--output", str(tmp_path),
             "--training.num_steps_sampled_before_learning_starts=200", "--training.train_batch_size_per_learner=64",
             "--training.training_intensity=1"]
    assert main("smac", "3m", "test", ["--stop-timesteps", "500", *small]) == 0
    first = [json.loads(line) for line in (tmp_path / "result.jsonl").read_text().splitlines()]
    with open(tmp_path / "result.jsonl", "a") as f:  # a row logged before a crash hit ahead of its checkpoint
        f.write(json.dumps({**first[-1], "training_iteration": first[-1]["training_iteration"] + 1}) + "\n")
    resume = ["--output", str(tmp_path), "--resume", "--quiet", "--stop-timesteps", str(first[-1]["env_steps"] + 1500)]
    assert main("smac", "3m", "test", resume) == 0
    rows = [json.loads(line) for line in (tmp_path / "result.jsonl").read_text().splitlines()]
    assert rows[-1]["env_steps"] >= first[-1]["env_steps"] + 1500
    iterations = [int(row["training_iteration"]) for row in rows]
    assert iterations == list(range(1, len(rows) + 1))  # continues, no duplicate or missing iteration
    times = [row["time_total_s"] for row in rows]
    assert times == sorted(times) and times[-1] > first[-1]["time_total_s"]  # training time continues


def test_result_rows_hold_finite_numbers_only(tmp_path):
    from tensorboardX import SummaryWriter

    from k24_rllib.experiment import log_result

    result = {"training_iteration": 3, "evaluation": {"env_runners": {"win_rate": float("nan")}},
              "learners": {"default_policy": {"loss_td": 0.5, "num_trainable_parameters": float("inf")}}}
    with SummaryWriter(str(tmp_path / "tensorboard")) as writer:
        log_result(writer, tmp_path, result, steps=1000)
    row = (tmp_path / "result.jsonl").read_text()
    assert json.loads(row) == {"env_steps": 1000, "training_iteration": 3.0, "learners/default_policy/loss_td": 0.5}
    assert "nan" not in row.lower() and "infinity" not in row.lower()


def test_a_row_cut_by_a_crash_is_dropped_on_resume_and_a_bad_row_elsewhere_is_named(tmp_path):
    rows = [{"training_iteration": i, "time_total_s": 10.0 * i} for i in (1, 2, 3)]
    path = tmp_path / "result.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows) + '{"training_iteration": 4, "time_to')
    assert read_rows(path) == rows  # SIGKILL mid-write left half a row: it is not a row
    assert drop_rows_after(tmp_path, iteration=2) == 20.0
    assert read_rows(path) == rows[:2]
    path.write_text(json.dumps(rows[0]) + "\n{oops\n" + json.dumps(rows[1]) + "\n")
    with pytest.raises(ValueError, match="line 2 is not a JSON row"):
        read_rows(path)


def test_learner_settings_are_dotted_overrides_too(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    argv = ["--num-workers", "1", "--learners.num_learners=2", "--learners.num_cpus_per_learner=0.5"]
    config = build_config(parse_args(build_parser("t", "smac", "3m"), argv))
    assert (config.num_learners, config.num_cpus_per_learner) == (2, 0.5)
    with pytest.raises(CliError, match="unknown key learners.num_gpu; valid: .*num_gpus_per_learner"):
        parse_overrides(["--learners.num_gpu=1"])


@pytest.mark.parametrize(("argv", "message"), [
    (["--learners.num_learners=2"], r"asks Ray for 4 CPUs \(2 for EnvRunners, 2 for 2 remote learners\) but this "
                                    r"machine has 2; lower --num-workers or set --learners.num_cpus_per_learner"),
    (["--learners.num_gpus_per_learner=1"], "needs 1 GPUs, and torch sees 0 here; drop it to train on CPU"),
])
def test_a_local_run_that_ray_cannot_place_is_refused(monkeypatch, argv, message):
    """Ray waits without a word for resources a machine lacks: the CLI says what does not fit instead."""
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    monkeypatch.setattr("torch.cuda.device_count", lambda: 0)
    with pytest.raises(CliError, match=message):
        build_config(parse_args(build_parser("t", "smac", "3m"), argv))
