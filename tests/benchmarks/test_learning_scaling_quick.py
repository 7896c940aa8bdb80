"""The learning and rollout-scaling benchmarks' --quick paths run and write well-formed results (values unchecked).

Both train or sample through RLlib in this process, on the session's 2-CPU Ray (``ray_local``), on the
smallest settings that still go through every step: learning on SMAX 3m for ~2k steps with local sampling,
scaling with 0 and 1 runners.
"""

from __future__ import annotations

import importlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

pytest.importorskip("jaxmarl")


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch, ray_local: None) -> Iterator[ModuleType]:
    """Imports benchmark scripts as their CLI sees them (benchmarks/ first on sys.path); restores torch threads."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    threads = torch.get_num_threads()
    yield importlib.import_module
    torch.set_num_threads(threads)


def check_outputs(paths: dict[str, Path], name: str) -> tuple[dict, str]:
    """JSON with meta (machine, command), findings; markdown with command, machine and figure; a real PNG."""
    result = json.loads(paths["json"].read_text())
    assert result["name"] == name and result["findings"]
    assert result["meta"]["command"].startswith(f"python benchmarks/{name}.py --quick")
    assert result["meta"]["machine"]["cpu_count"] >= 1 and "load_average_1min" in result["meta"]["machine"]
    markdown = paths["md"].read_text()
    assert markdown.startswith("# ") and "Machine: " in markdown
    assert f"Command: `python benchmarks/{name}.py --quick" in markdown
    png = paths["png"].read_bytes()
    assert png[:8] == PNG_MAGIC and len(png) > 1000 and f"]({paths['png'].name})" in markdown
    return result, markdown


def md_rows(markdown: str, first_cell: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip("|").split("|")] for line in markdown.splitlines()
            if line.startswith(f"| {first_cell} |")]


def test_learning_quick(bench, tmp_path: Path) -> None:
    learning = bench("learning")
    paths = learning.main(["--quick", "--mask", "k24", "none", "--output", str(tmp_path)])
    result, markdown = check_outputs(paths, "learning")
    assert [(r["env"], r["mask"]) for r in result["rows"]] == [("3m", "k24"), ("3m", "none")]
    for row in result["rows"]:
        assert {"final_test_win_rate", "final_test_return", "to_50", "to_80", "to_90", "wall_s", "steps_per_s",
                "update_s", "mask_agreement"} <= set(row)
    for run in result["runs"]:
        assert run["env_steps"] >= 2000 and run["curve"], run
        assert {"env_steps", "test_win_rate", "test_return"} <= set(run["curve"][0])
        assert (Path(run["run_dir"]) / "result.jsonl").is_file() and (Path(run["run_dir"]) / "checkpoint").is_dir()
        # the final win rate is its own greedy evaluation of the final checkpoint, with a Wilson interval around it
        final = json.loads((Path(run["run_dir"]) / "final_eval.json").read_text())
        assert final["episodes"] == run["final_episodes"] == learning.QUICK["final_episodes"]
        low, high = run["final_test_win_ci95"]
        assert 0.0 <= low <= run["final_test_win_rate"] == final["win_rate"] <= high <= 1.0
    k24, qmix = result["runs"]
    assert 1 / 6 - 1e-6 <= k24["final_pattern_max_similarity"] <= 1.0 and qmix["final_pattern_max_similarity"] is None
    assert k24["curve"][-1]["pattern_max_similarity"] is not None  # learner metrics, once learning started
    assert len(md_rows(markdown, "3m")) == 4  # two summary rows, two run rows
    assert "protoss_5_vs_5" not in markdown and result["target"]["env_steps"] == 500_000

    again = learning.main(["--quick", "--mask", "k24", "--output", str(tmp_path)])  # finished runs are read, not rerun
    assert json.loads(again["json"].read_text())["runs"][0]["wall_s"] == result["runs"][0]["wall_s"]

    # the same plan with another setting is refused before anything is read or trained; the run stays as it was
    run_files = {path: path.read_bytes() for path in Path(result["runs"][0]["run_dir"]).glob("*.json*")}
    with pytest.raises(SystemExit, match=r"3m_k24_seed0: started with other settings \(--training.lr unset -> 0.001\)"):
        learning.main(["--quick", "--mask", "k24", "--output", str(tmp_path), "--training.lr=1e-3"])
    assert {path: path.read_bytes() for path in run_files} == run_files

    # a report of a plan in progress: finished runs summarised, the rest listed as pending, nothing trained
    report = learning.main(["--quick", "--mask", "k24", "kalei", "--report-only", "--output", str(tmp_path)])
    reported = json.loads(report["json"].read_text())
    assert [r["mask"] for r in reported["runs"]] == ["k24"] and reported["pending"] == ["3m_kalei_seed0"]
    assert not (tmp_path / "learning_runs" / "3m_kalei_seed0").exists() and "Pending" in report["md"].read_text()

    # a run killed after a checkpoint but before it was recorded continues from that checkpoint
    run_dir = Path(result["runs"][0]["run_dir"])
    (run_dir / "benchmark_run.json").unlink()
    sittings = json.loads((run_dir / "benchmark_sittings.json").read_text())
    del sittings[0]["wall_s"]  # as a sitting killed before its end leaves it
    (run_dir / "benchmark_sittings.json").write_text(json.dumps(sittings))
    rows_before = learning.read_results(run_dir)
    continued = json.loads(learning.main(["--quick", "--mask", "k24", "--output", str(tmp_path)])["json"].read_text())
    record = json.loads((run_dir / "benchmark_run.json").read_text())
    assert [s["resumed"] for s in record["sittings"]] == [False, True] and record["killed_sittings"] == 1
    assert continued["runs"][0]["wall_s"] is None and continued["runs"][0]["train_s"] > 0  # wall time unknown
    assert continued["runs"][0]["env_steps"] >= rows_before[-1]["env_steps"]
    assert len(learning.read_results(run_dir)) >= len(rows_before)

    # a finished plan trained on past its budget: from its checkpoint, recorded, its final evaluation redone
    with pytest.raises(SystemExit):
        learning.parse_cli(["--quick", "--continue-to", "2000"])  # not above the budget
    eval_before = json.loads((run_dir / "final_eval.json").read_text())
    continued_at = time.time()
    assert json.loads(learning.main(["--quick", "--mask", "k24", "--continue-to", "3000", "--report-only", "--output",
                                     str(tmp_path)])["json"].read_text())["pending"] == ["3m_k24_seed0"]
    extended = json.loads(learning.main(["--quick", "--mask", "k24", "--continue-to", "3000", "--output",
                                         str(tmp_path)])["json"].read_text())
    record = json.loads((run_dir / "benchmark_run.json").read_text())
    assert record["continued_to"] == record["sittings"][-1]["continued_to"] == 3000
    assert record["argv"][record["argv"].index("--stop-timesteps") + 1] == "2000"  # the plan's budget, as started
    run = extended["runs"][0]
    assert run["env_steps"] >= 3000 and run["continued_to"] == 3000 and run["curve"][-1]["env_steps"] >= 3000
    assert (run_dir / "final_eval.json").stat().st_mtime >= continued_at  # the continued checkpoint's, not the old
    assert run["final_episodes"] == eval_before["episodes"]
    assert any("Continued past the budget of 2,000" in line for line in extended["findings"])
    again = json.loads(learning.main(["--quick", "--mask", "k24", "--continue-to", "3000", "--output",
                                      str(tmp_path)])["json"].read_text())
    assert again["runs"][0]["wall_s"] == run["wall_s"]  # finished to 3000: read, not trained again


def test_learning_reads_a_resumed_runs_rows_once_and_sums_its_time(tmp_path: Path, bench) -> None:
    learning = bench("learning")
    rows = [{"training_iteration": i, "time_this_iter_s": 2.0, "time_total_s": t, "env_steps": 100 * i}
            for i, t in [(1, 2.0), (2, 4.0), (2, 2.0), (3, 4.0)]]  # iteration 2 written again after a resume
    (tmp_path / "result.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    read = learning.read_results(tmp_path)
    assert [r["training_iteration"] for r in read] == [1, 2, 3] and read[1]["time_total_s"] == 2.0
    assert learning.training_seconds(read) == 6.0


def test_learning_continues_a_run_only_with_the_settings_it_started_with(tmp_path: Path, bench) -> None:
    learning = bench("learning")
    started = ["--map", "3m", "--mask", "k24", "--seed", "0", "--stop-timesteps", "2000", "--output", "/old/runs",
               "--quiet", "--num-workers", "0", "--training.lr=1e-3", "--mixer", "vdn"]
    learning.check_same_settings(tmp_path, started, "smac")  # nothing started there yet
    (tmp_path / learning.ARGV_FILE).write_text(json.dumps({"argv": started}))
    # the same settings in another order and spelling, from a runs folder that moved, continue
    respelled = started[10:13] + ["--training.lr", "0.001"] + started[14:] + started[:8] + ["--output", str(tmp_path)]
    learning.check_same_settings(tmp_path, respelled, "smac")
    for changed, named in [(["--mixer", "qmix"], "--mixer vdn -> qmix"),
                           (["--stop-timesteps", "4000"], "--stop-timesteps 2000 -> 4000"),
                           (["--training.gamma=0.9"], "--training.gamma unset -> 0.9")]:
        with pytest.raises(learning.CliError, match=named):
            learning.check_same_settings(tmp_path, started + changed, "smac")
    with pytest.raises(learning.CliError, match="--training.lr 0.001 -> unset"):
        learning.check_same_settings(tmp_path, started[:13] + started[14:], "smac")


def test_learning_plans_the_hard_maps_through_the_training_cli(tmp_path: Path, bench) -> None:
    learning = bench("learning")
    args, extra = learning.parse_cli(["--envs", "5m_vs_6m", "3s5z", "--mask", "k24"])
    assert args.envs == ["5m_vs_6m", "3s5z"]
    for env in args.envs:
        argv = learning.run_argv(env, "k24", 0, tmp_path, args, extra)
        parsed = learning.parse_args(learning.build_parser("test", "smac", ""), argv)
        assert (parsed.family, parsed.name, parsed.n_unit_types) == ("smac", env, None)
        assert learning.build_config(parsed).env_config == {"map_name": env, "backend": "smax"}


def test_learning_plans_one_mask_per_unit_type_where_asked(tmp_path: Path, bench, capsys) -> None:
    learning = bench("learning")
    expected = {("3s5z", None): None, ("protoss_5_vs_5", None): 2,
                ("3s5z", "unit-type"): 2, ("protoss_5_vs_5", "agent"): None}
    for (env, masks_per), n_unit_types in expected.items():
        flags = ["--masks-per", masks_per] if masks_per else []
        args, extra = learning.parse_cli(["--envs", env, "--mask", "k24", *flags])
        argv = learning.run_argv(env, "k24", 0, tmp_path, args, extra)
        parsed = learning.parse_args(learning.build_parser("test", learning.ENVS[env].family, ""), argv)
        assert parsed.n_unit_types == n_unit_types, (env, masks_per)
    with pytest.raises(SystemExit):
        learning.parse_cli(["--envs", "3m", "3s5z", "--masks-per", "unit-type"])
    assert "3m has one unit type" in capsys.readouterr().err


def test_learning_refuses_flags_it_owns(bench) -> None:
    learning = bench("learning")
    with pytest.raises(SystemExit):
        learning.parse_cli(["--quick", "--seed", "3"])
    args, extra = learning.parse_cli(["--quick", "--mixer", "vdn", "--training.lr=1e-3"])
    assert extra[-3:] == ["--mixer", "vdn", "--training.lr=1e-3"] and args.budget == learning.QUICK["budget"]


def test_rollout_scaling_quick(bench, tmp_path: Path) -> None:
    scaling = bench("rollout_scaling")
    paths = scaling.main(["--quick", "--envs", "4", "--output", str(tmp_path)])
    result, markdown = check_outputs(paths, "rollout_scaling")
    assert [(r["runners"], r["envs_per_runner"]) for r in result["rows"]] == [(0, 4), (1, 4)]
    for row in result["rows"]:
        assert {"steps_per_s", "startup_s", "build_s", "first_sample_s", "cpus_per_runner", "load_1min"} <= set(row)
    assert [cells[:2] for cells in md_rows(markdown, "0") + md_rows(markdown, "1")] == [["0", "4"], ["1", "4"]]
