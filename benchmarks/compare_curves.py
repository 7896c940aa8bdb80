"""Greedy test win rate of several finished learning plans on one axes, with their final results side by side.

    python benchmarks/compare_curves.py --env protoss_5_vs_5 --name compare \\
        "QMIX=benchmarks/results/learning_5v5_1m/qmix/learning.json" \\
        "K-2:4, fc2 fc3=benchmarks/results/learning_5v5_1m/fc23_tau37k/learning.json" ...

Each plan is ``LABEL=PATH`` to a ``learning.json`` that ``learning.py`` wrote (``LABEL=PATH#MASK`` keeps one mask of
a plan that holds several; ``--seeds 1`` keeps seed 1 of every plan, to compare settings on the seeds they share).
Settings that ran as separate plans (a flag or a mask each) then read as one figure, and plans given under the same
label read as one setting (its seeds ran as separate plans).
Nothing is trained: the curves and final evaluations are the plans' own records.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

from common import Table, add_common_args, run_meta, save_figure, set_threads, write_results
from learning import plot_median_curve, win_cell
from matplotlib.figure import Figure

COLUMNS = {
    "label": "plan",
    "seeds": "seeds",
    "env_steps": "env steps (median)",
    "final": "final greedy test win per seed (95% CI)",
    "reached_50": "steps to 50% per seed",
    "reached_80": "steps to 80% per seed",
    "source": "result file",
}


def parse_plan(spec: str) -> tuple[str, Path, str | None]:
    """``LABEL=PATH[#MASK]`` -> (label, path, mask or None); a clear error when the form is wrong."""
    label, sep, rest = spec.partition("=")
    if not sep or not label or not rest:
        raise argparse.ArgumentTypeError(f"{spec!r}: expected LABEL=PATH/learning.json (optionally #MASK)")
    path, _, mask = rest.partition("#")
    return label, Path(path), mask or None


def plan_runs(path: Path, env: str, mask: str | None, seeds: list[int] | None = None) -> list[dict[str, Any]]:
    """The finished runs of one plan on ``env`` (and ``mask``, and ``seeds``); ``merge_by_label`` puts them in seed
    order."""
    if not path.is_file():
        raise SystemExit(f"{path}: no such learning.json; give the file learning.py wrote for the plan")
    runs = [r for r in json.loads(path.read_text())["runs"]
            if r["env"] == env and mask in (None, r["mask"]) and (seeds is None or r["seed"] in seeds)]
    if not runs:
        which = f"{f' with mask {mask}' if mask else ''}{f' for seeds {seeds}' if seeds is not None else ''}"
        raise SystemExit(f"{path}: no finished run on {env}{which}")
    return runs


def merge_by_label(plans: list[tuple[str, Path, list[dict[str, Any]]]]
                   ) -> list[tuple[str, list[Path], list[dict[str, Any]]]]:
    """Plans under one label as one setting, in the order labels first appear; a seed given twice is an error, since
    its two runs would count twice in the median."""
    merged: dict[str, tuple[list[Path], list[dict[str, Any]]]] = {}
    for label, path, runs in plans:
        paths, kept = merged.setdefault(label, ([], []))
        twice = sorted({r["seed"] for r in kept} & {r["seed"] for r in runs})
        if twice:
            raise SystemExit(f"{label}: seed(s) {twice} in more than one of its plans ({', '.join(map(str, paths))}, "
                             f"{path}); give each seed once, e.g. with #MASK or a separate label")
        paths.append(path)
        kept.extend(runs)
    return [(label, paths, sorted(runs, key=lambda r: r["seed"])) for label, (paths, runs) in merged.items()]


def row(label: str, paths: list[Path], runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One table row: every seed's final result and the steps its periodic tests first reached 50% and 80%."""
    def reached(share: str) -> str:
        return "; ".join(f"{r['reached'][share]:,}" if r["reached"].get(share) else "not reached" for r in runs)

    return {
        "label": label,
        "seeds": ", ".join(str(r["seed"]) for r in runs),
        "env_steps": round(statistics.median(r["env_steps"] for r in runs)),
        "final": "; ".join(win_cell(r) for r in runs),
        "reached_50": reached("0.5"),
        "reached_80": reached("0.8"),
        "source": ", ".join(map(str, paths)),
    }


def plot(plans: list[tuple[str, list[dict[str, Any]]]], env: str) -> Figure:
    """Greedy test win rate against env steps: a thin line per seed and the median of each plan."""
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot(1, 1, 1)
    for i, (label, runs) in enumerate(plans):
        plot_median_curve(ax, [r["curve"] for r in runs], "test_win_rate", f"C{i}", label)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("env steps")
    ax.set_ylabel("greedy test win rate")
    ax.set_title(env, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser, "the same as without it: this script reads finished plans and trains nothing")
    parser.add_argument("plans", nargs="+", type=parse_plan, metavar="LABEL=PATH[#MASK]")
    parser.add_argument("--env", required=True, help="the env whose runs are compared, e.g. protoss_5_vs_5")
    parser.add_argument("--name", default="compare_curves", help="stem of the result files")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="keep only these seeds of every plan")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Path]:
    args = parse_args(argv)
    set_threads(args.threads)  # only so the machine record reads like the other benchmarks'
    plans = merge_by_label([(label, path, plan_runs(path, args.env, mask, args.seeds))
                            for label, path, mask in args.plans])
    figure = save_figure(plot([(label, runs) for label, _, runs in plans], args.env), args.output, f"{args.name}.png")
    rows = [row(label, paths, runs) for label, paths, runs in plans]
    findings = [f"{r['label']}: final greedy test win {r['final']} at ~{r['env_steps']:,} env steps." for r in rows]
    table = Table("plans", "Final results per plan", rows, COLUMNS,
                  "Final = 64 greedy episodes of each run's final checkpoint, 95% Wilson interval, as learning.py "
                  "recorded them; steps to X% = the first periodic greedy test at or above X.")
    paths = write_results(args.output, args.name, title=f"Learning curves side by side on {args.env}",
                          meta=run_meta(args, __file__, argv), tables=[table], findings=findings, figures=[figure])
    return {**paths, "png": figure}


if __name__ == "__main__":
    main()
