"""How much the acting masks moved: mean per-batch ``mask_change`` per layer over a window of env steps.

    python benchmarks/mask_change.py --name mask_change --from-step 80000 \\
        "all four layers=/work/runs/change_all4/protoss_5_vs_5_k24_seed0" \\
        "fc2, fc3=/work/runs/change_fc23/protoss_5_vs_5_k24_seed0" ...

Each run is ``LABEL=RUN_DIR``, a training run's directory (``result.jsonl``, and ``final_eval.json`` when
``learning.py`` wrote one). Nothing is trained: the numbers are the runs' own records.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

from common import Table, add_common_args, run_meta, set_threads, write_results
from learning import read_results

LAYERS = ("fc1", "fc2", "fc3", "fc4")
KEY = "learners/default_policy/mask_change"
COLUMNS = {
    "label": "run",
    **{layer: layer for layer in LAYERS},
    "all": "all masked entries",
    "batches": "batches",
    "final": "final greedy test win (95% CI)",
    "run_dir": "run",
}


def parse_run(spec: str) -> tuple[str, Path]:
    """``LABEL=RUN_DIR`` -> (label, run directory); a clear error when the form is wrong."""
    label, sep, path = spec.partition("=")
    if not sep or not label or not path:
        raise argparse.ArgumentTypeError(f"{spec!r}: expected LABEL=RUN_DIR (a training run's directory)")
    return label, Path(path)


def run_row(label: str, run_dir: Path, start: int, stop: int | None) -> dict[str, Any]:
    """Means over the window's batches of each masked layer's share of changed mask entries ('-' for a dense
    layer), and the run's final evaluation when it has one."""
    if not (run_dir / "result.jsonl").is_file():
        raise SystemExit(f"{run_dir}: no result.jsonl; give a training run's directory")
    rows = [r for r in read_results(run_dir) if r.get(KEY) is not None
            and start <= r["num_env_steps_sampled_lifetime"] < (stop or float("inf"))]
    if not rows:
        raise SystemExit(f"{run_dir}: no mask_change between env steps {start:,} and {stop or 'the end'}; "
                         "masked runs log it from their second batch on")

    def mean(key: str) -> float | str:
        values = [r[key] for r in rows if r.get(key) is not None]
        return round(statistics.fmean(values), 4) if values else "-"

    final_path = run_dir / "final_eval.json"
    final = json.loads(final_path.read_text()) if final_path.is_file() else None
    return {
        "label": label,
        **{layer: mean(f"{KEY}_layer_{i}") for i, layer in enumerate(LAYERS)},
        "all": mean(KEY),
        "batches": len(rows),
        "final": "-" if final is None else f"{final['win_rate']:.2f} ({final['win_ci95'][0]:.2f}-{final['win_ci95'][1]:.2f})",
        "run_dir": str(run_dir),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser, "the same as without it: this script reads finished runs and trains nothing")
    parser.add_argument("runs", nargs="+", type=parse_run, metavar="LABEL=RUN_DIR")
    parser.add_argument("--from-step", type=int, default=0, help="first env step of the window (default 0)")
    parser.add_argument("--to-step", type=int, default=None, help="end of the window (default: the run's end)")
    parser.add_argument("--name", default="mask_change", help="stem of the result files")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Path]:
    args = parse_args(argv)
    set_threads(args.threads)  # only so the machine record reads like the other benchmarks'
    rows = [run_row(label, run_dir, args.from_step, args.to_step) for label, run_dir in args.runs]
    window = f"env steps {args.from_step:,} to {f'{args.to_step:,}' if args.to_step else 'the end'}"
    findings = [f"{r['label']}: {r['all']} of the masked entries changed per batch ({window}); final {r['final']}."
                for r in rows]
    table = Table("runs", "Mean share of argmax mask entries changed per sampled batch", rows, COLUMNS,
                  f"Per batch = since the previous sampled batch (`mask_change_layer_i`, `mask_change`), averaged "
                  f"over the batches of {window}; '-' = a dense layer. Final = learning.py's 64-episode greedy "
                  "evaluation of the final checkpoint.")
    return write_results(args.output, args.name, title="How much the acting masks move",
                         meta=run_meta(args, __file__, argv), tables=[table], findings=findings)


if __name__ == "__main__":
    main()
