"""The training GRU on CPU: one fused call over the padded batch vs time segments over the running sequences.

Part 1 fits the cost model that ``k24_rllib.models.gru.plan_segments`` cuts segments by: fused GRU calls
(forward and backward, hidden 64) timed at 6-192 rows (3m's batches run ~180) x 1-60 timesteps, least squares
in relative error on ``time = call + step * T + row_step * rows * T``, which gives ``CALL_COST`` and
``STEP_COST`` as ``call`` and ``step`` in units of ``row_step``. Part 2 times what a learner update spends in
the GRU (the online unroll forward and backward, the target unroll forward) in one call, in the module's
segments and in the fitted costs' segments, interleaved, on train batches of SMAX 3m's shape:
~60 episodes of 12-25 steps (what 3m batches hold early in training), once with one of them truncated at the
60-step limit, and on ``training_cost.py``'s batch (lengths uniform in 20..60).

    python benchmarks/gru_segments.py            # a minute or two on 2 cores
    python benchmarks/gru_segments.py --quick    # seconds (for tests)
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import torch
from common import Table, add_common_args, measure_interleaved, run_meta, set_threads, write_results
from torch import nn

from k24_rllib.models.gru import CALL_COST, STEP_COST, gru_running, gru_sequence, plan_segments

N_AGENTS, HIDDEN = 3, 64


def fit_cost_model(cell: nn.GRUCell, shapes: list[tuple[int, int]], repeats: int) -> dict[str, Any]:
    """Fused-call timings (forward + backward) at (rows, T) and the least-squares fit of the cost model."""

    def call(rows: int, t: int):
        x = torch.randn(rows, t, HIDDEN, requires_grad=True)
        h0 = torch.zeros(rows, HIDDEN)
        return lambda: gru_sequence(cell, x, h0).sum().backward()

    timings = measure_interleaved({s: call(*s) for s in shapes}, warmup=2, min_calls=repeats, budget_s=0.0)
    rows = [{"rows": r, "timesteps": t, "ms": timings[(r, t)].median_s * 1e3} for r, t in shapes]
    times = np.array([row["ms"] for row in rows])
    design = np.array([[1.0, t, r * t] for r, t in shapes])
    # relative errors: the timings span two orders of magnitude, and the small calls decide the call cost
    weight = 1.0 / times[:, None]
    (call_ms, step_ms, row_step_ms), *_ = np.linalg.lstsq(design * weight, times * weight[:, 0], rcond=None)
    return {
        "timings": rows,
        "call_ms": call_ms,
        "step_ms": step_ms,
        "row_step_ms": row_step_ms,
        "call_cost": call_ms / row_step_ms,
        "step_cost": step_ms / row_step_ms,
    }


def batches(quick: bool) -> dict[str, list[int]]:
    """Episode lengths of the train batches timed, longest first."""
    g = torch.Generator().manual_seed(0)
    count = 12 if quick else 60
    early = torch.randint(12, 26, (count,), generator=g)
    truncated = early.clone()
    truncated[0] = 60
    uniform = torch.randint(20, 60, (count,), generator=g)
    uniform[0] = 60
    named = {"3m early (12-25 steps)": early, "3m early, one truncated at 60": truncated, "uniform 20-60": uniform}
    return {name: sorted(lengths.tolist(), reverse=True) for name, lengths in named.items()}


def gru_part_of_update(
    cell: nn.GRUCell, target: nn.GRUCell, lengths: list[int], costs: tuple[float, float] | None
):
    """The GRU's share of one update: online forward + backward, target forward, on [n, B, T] sequences; in
    segments planned with ``costs`` (call, step), or in one call when None."""
    b, t = len(lengths), lengths[0]
    x = torch.randn(N_AGENTS, b, t, HIDDEN, requires_grad=True)
    h0 = torch.zeros(N_AGENTS, b, HIDDEN)
    valid = (torch.arange(t)[None] < torch.tensor(lengths)[:, None])[None, ..., None]
    running = [sum(1 for length in lengths if length > step) for step in range(t)]
    segments = plan_segments(running, N_AGENTS, *costs) if costs else [(0, t)]

    def update() -> None:
        (gru_running(cell, x, h0, running, segments) * valid).square().sum().backward()
        with torch.no_grad():
            gru_running(target, x, h0, running, segments)

    return update, segments


def main(argv: list[str] | None = None) -> dict[str, Path]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser, "small batches, 3 timed calls each (for tests)")
    parser.add_argument("--repeats", type=int, default=None, help="timed calls per case (default 20)")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    repeats = args.repeats or (3 if args.quick else 20)
    torch.manual_seed(0)
    cell, target = nn.GRUCell(HIDDEN, HIDDEN), nn.GRUCell(HIDDEN, HIDDEN).requires_grad_(False)

    shapes = [(r, t) for r in ((6, 24) if args.quick else (6, 48, 96, 192)) for t in (1, 15, 30, 60)]
    model = fit_cost_model(cell, shapes, repeats)
    rows = []
    fitted = (model["call_cost"], model["step_cost"])
    for name, lengths in batches(args.quick).items():
        one, _ = gru_part_of_update(cell, target, lengths, None)
        split, segments = gru_part_of_update(cell, target, lengths, (CALL_COST, STEP_COST))
        refit, refit_segments = gru_part_of_update(cell, target, lengths, fitted)
        timing = measure_interleaved({"one": one, "segments": split, "fitted": refit}, warmup=2,
                                     min_calls=repeats, budget_s=0.0)
        rows.append({
            "batch": name,
            "episodes": len(lengths),
            "real_share": sum(lengths) / (len(lengths) * lengths[0]),
            "segments": " ".join(f"{s}-{e}" for s, e in segments),
            "one_call_ms": timing["one"].median_s * 1e3,
            "segments_ms": timing["segments"].median_s * 1e3,
            "ratio": timing["segments"].median_s / timing["one"].median_s,
            "fitted_segments": " ".join(f"{s}-{e}" for s, e in refit_segments),
            "fitted_ratio": timing["fitted"].median_s / timing["one"].median_s,
        })
    findings = [
        f"Cost model fitted: a call {model['call_ms']:.3f} ms, a timestep {model['step_ms']:.4f} ms, a row-timestep "
        f"{model['row_step_ms']:.5f} ms, so CALL_COST {model['call_cost']:.0f} and STEP_COST {model['step_cost']:.0f} "
        f"row-timesteps (the module uses {CALL_COST:.0f} and {STEP_COST:.0f}).",
        *(f"{r['batch']}: the GRU's part of an update takes {r['ratio']:.2f}x the one-call time in segments "
          f"{r['segments']} ({r['one_call_ms']:.1f} -> {r['segments_ms']:.1f} ms); {r['fitted_ratio']:.2f}x in "
          f"the fitted costs' segments {r['fitted_segments']}." for r in rows),
    ]
    for line in findings:
        print(line)
    fits = Table("fit", "Fused GRU calls timed for the fit (forward + backward, hidden 64)", model.pop("timings"),
                 {"rows": "rows", "timesteps": "timesteps", "ms": "ms (median)"})
    comparison = Table(
        "comparison", f"The GRU's part of an update ({N_AGENTS} agents, hidden {HIDDEN}): one call vs segments",
        rows, {"batch": "batch", "episodes": "episodes", "real_share": "real share", "segments": "segments",
               "one_call_ms": "one call ms", "segments_ms": "segments ms", "ratio": "ratio",
               "fitted_segments": "segments, fitted costs", "fitted_ratio": "ratio, fitted costs"},
        note=f"Median of {repeats} interleaved timings each: the online unroll's forward and backward plus the "
             "target unroll's forward.",
    )
    return write_results(args.output, "gru_segments", title=__doc__.splitlines()[0],
                         meta=run_meta(args, __file__, argv), tables=[comparison, fits], findings=findings,
                         data={"cost_model": model})


if __name__ == "__main__":
    main()
