"""The benchmarks' --quick paths run and write well-formed results (the numbers themselves are not asserted)."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], ModuleType]]:
    """Imports a benchmark script as its CLI would see it (benchmarks/ first on sys.path); restores torch threads."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    threads = torch.get_num_threads()
    yield lambda name: importlib.import_module(name)
    torch.set_num_threads(threads)


def table_rows(markdown: str, first_cell: str) -> list[str]:
    return [line for line in markdown.splitlines() if line.startswith(f"| {first_cell} |")]


def check_common_outputs(paths: dict[str, Path], name: str) -> tuple[dict, str]:
    """JSON with the machine record, markdown with command and machine lines, valid PNGs; returns (json, md)."""
    result = json.loads(paths["json"].read_text())
    assert result["name"] == name and result["findings"]
    machine = result["meta"]["machine"]
    assert machine["versions"]["torch"] and machine["cpu_count"] >= 1 and machine["torch_threads"] == 1
    assert result["meta"]["command"].startswith(f"python benchmarks/{name}.py --quick")
    assert result["meta"]["settings"]["quick"] is True
    markdown = paths["md"].read_text()
    assert markdown.startswith("# ") and "Machine: " in markdown
    assert f"Command: `python benchmarks/{name}.py --quick" in markdown
    for key, path in paths.items():
        if key.startswith("png"):
            data = path.read_bytes()
            assert data[:8] == PNG_MAGIC and len(data) > 1000
            assert f"]({path.name})" in markdown
    if not torch.cuda.is_available():
        assert result["cuda"]["run"] is False and "no CUDA device" in result["cuda"]["reason"]
        assert "CUDA part not run: no CUDA device" in markdown
    return result, markdown


def test_training_cost_quick(bench: Callable[[str], ModuleType], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    module = bench("training_cost")
    paths = module.main(["--quick", "--output", str(tmp_path)])
    result, markdown = check_common_outputs(paths, "training_cost")
    rows = [r for r in result["rows"] if r["device"] == "CPU"]
    assert [r["variant"] for r in rows] == ["k24", "k24_step", "kalei", "none"]
    assert [r["mask_sample"] for r in rows[:2]] == ["sequence", "step"]
    ratios = {f"{kind}_vs_{base}" for kind in ("time", "peak", "total_mem") for base in ("kalei", "none")}
    for row in rows:
        assert row["update_ms"] > 0 and row["resting_mib"] > 0 and row["peak_mib"] > 0
        assert ratios <= row.keys()
    by = {r["variant"]: r for r in rows}
    assert by["kalei"]["time_vs_kalei"] == 1.0 and by["none"]["time_vs_none"] == 1.0
    assert len(table_rows(markdown, "CPU")) == 4
    for header in ("time vs kalei", "time vs QMIX", "peak mem vs kalei", "peak mem vs QMIX"):
        assert f" {header} |" in markdown
    # each K-2:4 variant's findings judge the three targets from the measured ratios
    for variant in ("k24", "k24_step"):
        line = next(f for f in result["findings"] if f.startswith(f"CPU, hidden 64, {variant} "))
        for key, bound, label in module.TARGETS:
            verdict = "holds" if by[variant][key] <= bound else "does NOT hold"
            assert f"{label} {by[variant][key]:.2f}x (target <= {bound}x: {verdict})" in line
    if not torch.cuda.is_available():
        assert "CUDA part not run: no CUDA device" in capsys.readouterr().out


def test_inference_quick(bench: Callable[[str], ModuleType], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    module = bench("inference")
    paths = module.main(["--quick", "--output", str(tmp_path)])
    result, markdown = check_common_outputs(paths, "inference")
    rows = result["cpu_acting"]
    assert {(r["variant"], r["envs"]) for r in rows} == {(v, n) for v in module.VARIANTS for n in module.QUICK_ENVS}
    assert all(r["device"] == "CPU" and r["latency_ms"] > 0 and r["rows_per_s"] > 0 for r in rows)
    assert all(r["rows"] == r["envs"] * module.N_AGENTS for r in rows)
    holds = all(r["cost_vs_plain"] <= module.TARGET_COST_VS_PLAIN for r in rows if r["variant"] == "k24")
    assert ("(issue target <= 1.1x: holds at every batch size)" in result["findings"][0]) == holds
    assert len(table_rows(markdown, "CPU")) == len(rows)
    assert [r["layer"] for r in result["memory"]] == ["fc1", "fc2", "fc3", "fc4"]
    assert len(table_rows(markdown, "fc1")) == 1
    # the cache and export checks are correctness properties, not timings
    assert result["checks"]["mask_rebuilds_while_acting"] == 0
    assert result["checks"]["exported_max_abs_q_diff"] < 1e-5
    if not torch.cuda.is_available():
        assert "CUDA part not run" in capsys.readouterr().out


def test_crossover_counts_verified_shapes_only(bench: Callable[[str], ModuleType], tmp_path: Path) -> None:
    inference = bench("inference")
    ok = {"backend": "cusparselt", "weight_verified": True, "outputs_agree": True}
    rows = [
        {"dtype": "float16", "hidden": 64, "rows": 8192, "speedup": 1.1, "graph_speedup": 0.4} | ok,
        {"dtype": "float16", "hidden": 4096, "rows": 1, "speedup": 0.2, "graph_speedup": 1.3} | ok,
        {"dtype": "float16", "hidden": 1024, "rows": 1024, "speedup": 1.5, "graph_error": "capture failed"} | ok,
        {"dtype": "float16", "hidden": 2048, "rows": 1024, "speedup": 1.9, "graph_speedup": 1.9} | ok
        | {"weight_verified": False},
        {"dtype": "float16", "hidden": 128, "rows": 1, "error": "shape too small"} | ok,
        {"dtype": "bfloat16", "hidden": 64, "rows": 1, "speedup": 0.5} | ok,
        {"backend": "cutlass", "dtype": "float16", "hidden": 64, "rows": 1, "error": "conversion: sm 8.x only"},
    ]
    summary = inference.crossover(rows)
    fp16 = summary["cusparselt float16"]
    assert fp16["crossover"] == {"hidden": 64, "rows": 8192, "speedup": 1.1}
    assert fp16["best"] == {"hidden": 1024, "rows": 1024, "speedup": 1.5, "of_ceiling": 0.75}
    assert fp16["best_graph"] == {"hidden": 4096, "rows": 1, "speedup": 1.3}  # the unverified 1.9 does not count
    assert fp16["failed_shapes"] == 2
    bf16 = summary["cusparselt bfloat16"]
    assert bf16["crossover"] is None and bf16["best"]["speedup"] == 0.5 and bf16["best_graph"] is None
    assert summary["cutlass float16"] == {"best_graph": None, "crossover": None, "best": None, "failed_shapes": 1}
    png = bench("common").save_figure(inference.plot_cuda(rows), tmp_path, "cuda.png")
    assert png.read_bytes()[:8] == PNG_MAGIC


def test_markdown_cells(bench: Callable[[str], ModuleType]) -> None:
    common = bench("common")
    rows = [{"a": 1234.5, "b": None, "c": "x|y"}, {"a": 0.000012, "b": True}]
    table = common.markdown_table(rows, {"a": "A", "b": "B", "c": "C"})
    assert table.splitlines() == [
        "| A | B | C |",
        "| --- | --- | --- |",
        "| 1,234 | - | x\\|y |",
        "| 1.20e-05 | yes | - |",
    ]


def _learning_json(path: Path, runs: list[tuple[str, int, float]]) -> Path:
    """A learning.json with one finished run per (mask, seed, final win), each with a three-point curve."""
    def run(mask: str, seed: int, win: float) -> dict:
        curve = [{"env_steps": s, "test_win_rate": w} for s, w in ((1000, 0.1), (2000, 0.55), (3000, win))]
        reached = {"0.5": 2000, "0.8": 3000 if win >= 0.8 else None}
        return {"env": "3m", "mask": mask, "seed": seed, "env_steps": 3000 + 2 * seed, "final_test_win_rate": win,
                "final_test_win_ci95": [win - 0.1, win + 0.05], "reached": reached, "curve": curve}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"runs": [run(*r) for r in runs]}))
    return path


def test_compare_curves_puts_finished_plans_side_by_side(bench, tmp_path: Path) -> None:
    qmix = _learning_json(tmp_path / "qmix" / "learning.json", [("none", 0, 0.9), ("none", 1, 0.8)])
    mixed = _learning_json(tmp_path / "mixed" / "learning.json", [("k24", 0, 0.7), ("kalei", 0, 0.85)])
    paths = bench("compare_curves").main(
        ["--env", "3m", "--output", str(tmp_path / "out"), f"QMIX={qmix}", f"K-2:4={mixed}#k24"]
    )
    markdown = paths["md"].read_text()
    assert table_rows(markdown, "QMIX") == [  # 3,001: the median of 3,000 and 3,002
        f"| QMIX | 0, 1 | 3,001 | 0.90 (0.80-0.95); 0.80 (0.70-0.85) | 2,000; 2,000 | 3,000; 3,000 | {qmix} |"
    ]
    # "#k24" keeps the K-2:4 run of a plan that also holds Kaleidoscope's
    k24_row = f"| K-2:4 | 0 | 3,000 | 0.70 (0.60-0.75) | 2,000 | not reached | {mixed} |"
    assert table_rows(markdown, "K-2:4") == [k24_row]
    assert paths["png"].read_bytes()[:8] == PNG_MAGIC and "](compare_curves.png)" in markdown


def test_compare_curves_keeps_only_the_seeds_asked_for(bench, tmp_path: Path) -> None:
    qmix = _learning_json(tmp_path / "qmix" / "learning.json", [("none", 0, 0.9), ("none", 1, 0.8)])
    compare = bench("compare_curves")
    paths = compare.main(["--env", "3m", "--seeds", "1", "--output", str(tmp_path / "out"), f"QMIX={qmix}"])
    assert table_rows(paths["md"].read_text(), "QMIX") == [
        f"| QMIX | 1 | 3,002 | 0.80 (0.70-0.85) | 2,000 | 3,000 | {qmix} |"
    ]
    with pytest.raises(SystemExit, match=r"no finished run on 3m for seeds \[2\]"):
        compare.main(["--env", "3m", "--seeds", "2", "--output", str(tmp_path / "out"), f"QMIX={qmix}"])


def test_compare_curves_reads_plans_under_one_label_as_one_setting(bench, tmp_path: Path) -> None:
    first = _learning_json(tmp_path / "seeds01" / "learning.json", [("k24", 0, 0.6), ("k24", 1, 0.75)])
    second = _learning_json(tmp_path / "seed2" / "learning.json", [("k24", 2, 0.8)])
    compare = bench("compare_curves")
    paths = compare.main(["--env", "3m", "--output", str(tmp_path / "out"), f"K-2:4={second}", f"K-2:4={first}"])
    assert table_rows(paths["md"].read_text(), "K-2:4") == [  # seed order, both files named
        f"| K-2:4 | 0, 1, 2 | 3,002 | 0.60 (0.50-0.65); 0.75 (0.65-0.80); 0.80 (0.70-0.85) | 2,000; 2,000; 2,000 "
        f"| not reached; not reached; 3,000 | {second}, {first} |"
    ]
    with pytest.raises(SystemExit, match=r"K-2:4: seed\(s\) \[0, 1\] in more than one of its plans"):
        compare.main(["--env", "3m", "--output", str(tmp_path / "out"), f"K-2:4={first}", f"K-2:4={first}"])


def test_compare_curves_names_a_malformed_plan_or_a_missing_run(bench, tmp_path: Path) -> None:
    compare = bench("compare_curves")
    with pytest.raises(SystemExit, match="2"):  # argparse: LABEL=PATH expected
        compare.main(["--env", "3m", "no-label-here"])
    plan = _learning_json(tmp_path / "learning.json", [("none", 0, 0.9)])
    with pytest.raises(SystemExit, match="no finished run on 3m with mask k24"):
        compare.main(["--env", "3m", "--output", str(tmp_path), f"QMIX={plan}#k24"])
    with pytest.raises(SystemExit, match="no such learning.json"):
        compare.main(["--env", "3m", "--output", str(tmp_path), f"QMIX={tmp_path / 'missing.json'}"])


def test_learning_curve_points_carry_the_mean_mask_change_since_the_previous_point(bench) -> None:
    curve = bench("learning").curve
    learner = "learners/default_policy/"
    rows = [{"training_iteration": i, "env_steps": 1000 * i, f"{learner}mask_change": change,
             **({"evaluation/env_runners/episode_return_mean": 1.0, "evaluation/env_runners/win_rate": 0.5}
                if i % 2 == 0 else {})}
            for i, change in zip(range(1, 7), (None, 0.1, 0.3, 0.5, 0.2, 0.2))]
    points = curve(rows, eval_every=2)
    assert [p["env_steps"] for p in points] == [2000, 4000, 6000]
    assert [p["mask_change"] for p in points] == pytest.approx([0.1, 0.4, 0.2])
    assert curve([{"training_iteration": 2, "env_steps": 2000, "evaluation/env_runners/episode_return_mean": 1.0}],
                 eval_every=2)[0]["mask_change"] is None  # no masks (QMIX), or the first batch


def test_mask_change_averages_each_layer_over_the_window_from_the_runs_records(bench, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    key = "learners/default_policy/mask_change"
    rows = [{"training_iteration": i, "num_env_steps_sampled_lifetime": 1000 * i, key: change,
             f"{key}_layer_1": change, f"{key}_layer_2": 2 * change} for i, change in ((1, 0.5), (2, 0.1), (3, 0.3))]
    (run_dir / "result.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (run_dir / "final_eval.json").write_text(json.dumps({"win_rate": 0.25, "win_ci95": [0.1, 0.4]}))
    paths = bench("mask_change").main(["--from-step", "2000", "--output", str(tmp_path / "out"), f"dense ends={run_dir}"])
    (row,) = json.loads(paths["json"].read_text())["runs"]
    assert (row["fc1"], row["fc2"], row["fc3"], row["fc4"]) == ("-", 0.2, 0.4, "-") and row["all"] == 0.2
    assert row["batches"] == 2 and row["final"] == "0.25 (0.10-0.40)"
    assert "| dense ends |" in paths["md"].read_text()
    with pytest.raises(SystemExit, match="no mask_change between env steps 9,000"):
        bench("mask_change").main(["--from-step", "9000", "--output", str(tmp_path / "out"), f"x={run_dir}"])


def test_gru_segments_quick(bench: Callable[[str], ModuleType], tmp_path: Path) -> None:
    """CPU only by design (segments are the CPU path): a fit of the cost model and one row per batch."""
    paths = bench("gru_segments").main(["--quick", "--output", str(tmp_path)])
    result = json.loads(paths["json"].read_text())
    assert result["meta"]["command"].startswith("python benchmarks/gru_segments.py --quick")
    model = result["cost_model"]
    assert all(np.isfinite(model[key]) for key in ("call_ms", "step_ms", "row_step_ms", "call_cost", "step_cost"))
    assert len(result["fit"]) == 8 and all(row["ms"] > 0 for row in result["fit"])
    rows = result["comparison"]
    assert [row["batch"] for row in rows] == ["3m early (12-25 steps)", "3m early, one truncated at 60", "uniform 20-60"]
    for row in rows:
        assert row["segments"].startswith("0-") and row["fitted_segments"].startswith("0-")
        assert 0 < row["real_share"] < 1 and row["ratio"] > 0 and row["fitted_ratio"] > 0
    assert rows[1]["segments"].endswith("-60")  # the truncated episode runs to the limit
    markdown = paths["md"].read_text()
    assert "one call vs segments" in markdown and len(table_rows(markdown, "3m early (12-25 steps)")) == 1
