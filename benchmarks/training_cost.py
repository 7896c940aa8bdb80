"""Learner update cost of K-2:4 vs Kaleidoscope vs plain QMIX on identical synthetic batches.

One update = what the K24QMix learner does per train batch: unroll the recurrent agent over T+1 steps for B
sequences x n_agents (a Gumbel mask draw per step), the same with the target agent (``target_copy``: it samples
masks too, without moving the EMA), QMIX mixer and target mixer, double-Q TD(lambda) targets, TD loss + adaptive-coefficient diversity loss,
backward, grad clipping, Adam step. It is rebuilt here in pure torch from the package's own pieces (the module's
``unroll``, ``lambda_returns``, ``RecurrentAgent``, ``QMixer``) so it runs without an RLlib learner; RLlib's
per-update bookkeeping (metrics, connectors) is not included. The guide claims K-2:4 costs 0.9-1.0x
Kaleidoscope's time and 1.0-1.1x its memory.

Memory: "peak" is the most tensor memory allocated during one update above the resting state (CPU: torch
profiler allocation events; CUDA: torch.cuda.max_memory_allocated); "resting" is parameters + buffers + Adam
state of online and target networks.

    python benchmarks/training_cost.py            # hidden 64 and 256, ~1-2 min on 2 cores
    python benchmarks/training_cost.py --quick    # tiny batch, a few seconds
"""

from __future__ import annotations

import argparse
import copy
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from common import Table, add_common_args, measure_interleaved, run_meta, save_figure, set_threads, write_results
from matplotlib.figure import Figure
from torch import nn
from torch.profiler import ProfilerActivity, profile

from k24_rllib.algorithm.rl_module import K24QMixModule
from k24_rllib.algorithm.td_targets import lambda_returns
from k24_rllib.models import QMixer, RecurrentAgent, mask_ids_for
from k24_rllib.sparsity import AdaptiveCoefficient

MASKS = ("k24", "kalei", "none")
BASELINE = "kalei"
CLAIM = {"time": (0.9, 1.0), "memory": (1.0, 1.1)}  # the guide's K-2:4 / Kaleidoscope ratios
MIB = 2**20


@dataclass(frozen=True)
class Shapes:
    """One train batch: SMAC 3m-like by default (SMAX 3m: obs 75, world state 72, 8 actions)."""

    n_agents: int = 3
    obs_dim: int = 75
    state_dim: int = 72
    n_actions: int = 8
    hidden_dim: int = 64
    batch: int = 32
    seq_len: int = 40


def synthetic_batch(s: Shapes, device: torch.device, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random [B, T(+1)] sequences in the learner's layout; shorter sequences end in a termination, then padding.

    Observations carry the one-hot agent id the module appends (agent input = obs_dim + n_agents).
    """
    g = torch.Generator().manual_seed(seed)
    b, t, n = s.batch, s.seq_len, s.n_agents
    obs = torch.randn(b, t + 1, n, s.obs_dim, generator=g)
    ids = torch.eye(n).expand(b, t + 1, n, n)
    lengths = torch.randint(t // 2, t + 1, (b,), generator=g)
    lengths[0] = t
    valid = (torch.arange(t)[None] < lengths[:, None]).float()
    terminated = torch.zeros(b, t)
    terminated[torch.arange(b), lengths - 1] = (lengths < t).float()
    available = torch.rand(b, t + 1, n, s.n_actions, generator=g) < 0.7
    available[..., 0] = True
    batch = {
        "obs": torch.cat([obs, ids], dim=-1),
        "state": torch.randn(b, t + 1, s.state_dim, generator=g),
        "available": available,
        "actions": torch.randint(0, s.n_actions, (b, t, n), generator=g),
        "rewards": torch.rand(b, t, generator=g),
        "terminated": terminated,
        "valid": valid,
    }
    return {key: value.to(device) for key, value in batch.items()}


def _frozen_copy(net: nn.Module) -> nn.Module:
    target = copy.deepcopy(net).eval()
    return target.requires_grad_(False)


def _nbytes(tensors: Iterable[torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def build_update(
    mask: str, s: Shapes, batch: dict[str, torch.Tensor], device: torch.device, seed: int = 0
) -> tuple[Callable[[], None], int]:
    """(one learner update as a closure, resting bytes of networks + optimiser state after the first update)."""
    torch.manual_seed(seed)
    agent = RecurrentAgent(s.obs_dim + s.n_agents, s.n_actions, n_masks=s.n_agents, hidden_dim=s.hidden_dim, mask=mask)
    mixer = QMixer(s.n_agents, s.state_dim)
    agent.to(device).set_temperature(1.0)
    mixer.to(device)
    target_agent, target_mixer = agent.target_copy(), _frozen_copy(mixer)
    params = [*agent.parameters(), *mixer.parameters()]
    optimizer = torch.optim.Adam(params, lr=5e-4)
    coefficient = AdaptiveCoefficient(div_coef=0.1, deque_len=100)
    mask_ids = mask_ids_for(batch["obs"])
    h0 = agent.initial_state(s.batch, s.n_agents)
    valid = batch["valid"]

    def update() -> None:
        q = K24QMixModule.unroll(agent, batch["obs"], mask_ids, h0)[0]  # [B, T+1, n, A]
        q_taken = q[:, :-1].gather(-1, batch["actions"].unsqueeze(-1)).squeeze(-1)
        q_tot = mixer(q_taken, batch["state"][:, :-1])
        with torch.no_grad():
            target_q = K24QMixModule.unroll(target_agent, batch["obs"], mask_ids, h0)[0]
            best = q[:, 1:].detach().masked_fill(~batch["available"][:, 1:], float("-inf")).argmax(-1, keepdim=True)
            next_q_tot = target_mixer(target_q[:, 1:].gather(-1, best).squeeze(-1), batch["state"][:, 1:])
            targets = lambda_returns(batch["rewards"], batch["terminated"], valid, next_q_tot, 0.99, 0.6)
        loss_td = (((q_tot - targets) * valid) ** 2).sum() / valid.sum()
        div_loss = agent.diversity_loss()
        loss = loss_td + coefficient.update(float(loss_td.detach()), float(div_loss.detach())) * div_loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(params, 10.0)
        optimizer.step()

    update()  # creates Adam's state, so resting memory is what a running learner holds
    nets = (agent, mixer, target_agent, target_mixer)
    resting = _nbytes(t for net in nets for t in [*net.parameters(), *net.buffers()])
    resting += _nbytes(v for state in optimizer.state.values() for v in state.values() if torch.is_tensor(v))
    return update, resting


def peak_bytes(fn: Callable[[], None], device: torch.device) -> int:
    """Most tensor bytes live during ``fn`` above what was live before it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        fn()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - base
    # CPU has no allocator statistics; the profiler records every allocation and free with its time.
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = sorted(
        (e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"
    )
    live = peak = 0
    for _, nbytes in events:
        live += nbytes
        peak = max(peak, live)
    return peak


def measure_device(
    device: torch.device, hidden_dims: Iterable[int], base: Shapes, warmup: int, repeats: int
) -> list[dict[str, Any]]:
    """Rows for every (hidden, mask) on ``device``; the masks' updates are timed interleaved on one batch."""
    sync = torch.cuda.synchronize if device.type == "cuda" else None
    label = "CUDA" if device.type == "cuda" else "CPU"
    rows: list[dict[str, Any]] = []
    for hidden in hidden_dims:
        shapes = Shapes(**{**asdict(base), "hidden_dim": hidden})
        batch = synthetic_batch(shapes, device)
        built = {mask: build_update(mask, shapes, batch, device) for mask in MASKS}
        updates = {mask: update for mask, (update, _) in built.items()}
        timings = measure_interleaved(updates, warmup=warmup, min_calls=repeats, budget_s=0.0, sync=sync)
        for mask, (update, resting) in built.items():
            timing = timings[mask]
            peak = peak_bytes(update, device)
            rows.append(
                {
                    "device": label,
                    "hidden_dim": hidden,
                    "mask": mask,
                    "update_ms": timing.median_s * 1e3,
                    "update_ms_p25": timing.p25_s * 1e3,
                    "update_ms_p75": timing.p75_s * 1e3,
                    "updates_timed": timing.calls,
                    "peak_mib": peak / MIB,
                    "resting_mib": resting / MIB,
                    "total_mib": (peak + resting) / MIB,
                }
            )
    return add_ratios(rows)


def add_ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each row's time and memory as ratios to the Kaleidoscope row of the same device and hidden size."""
    baseline = {(r["device"], r["hidden_dim"]): r for r in rows if r["mask"] == BASELINE}
    for row in rows:
        ref = baseline[(row["device"], row["hidden_dim"])]
        row["time_vs_kalei"] = row["update_ms"] / ref["update_ms"]
        row["peak_vs_kalei"] = row["peak_mib"] / ref["peak_mib"]
        row["total_mem_vs_kalei"] = row["total_mib"] / ref["total_mib"]
    return rows


def findings(rows: list[dict[str, Any]]) -> list[str]:
    """One line per measured K-2:4 setting, against the guide's claim."""
    lines = []
    verdict = {True: "holds", False: "does NOT hold"}
    (t_lo, t_hi), (m_lo, m_hi) = CLAIM["time"], CLAIM["memory"]
    for row in (r for r in rows if r["mask"] == "k24"):
        lines.append(
            f"{row['device']}, hidden {row['hidden_dim']}: K-2:4 update time {row['time_vs_kalei']:.2f}x "
            f"Kaleidoscope's (guide: {t_lo}-{t_hi}x, {verdict[row['time_vs_kalei'] <= t_hi]}), "
            f"memory {row['total_mem_vs_kalei']:.2f}x total / {row['peak_vs_kalei']:.2f}x peak "
            f"(guide: {m_lo}-{m_hi}x, {verdict[row['total_mem_vs_kalei'] <= m_hi]})."
        )
    return lines


def plot(rows: list[dict[str, Any]]) -> Figure:
    """Update time and total memory per setting, bars per mask, each labelled with its ratio to Kaleidoscope."""
    settings = list(dict.fromkeys((r["device"], r["hidden_dim"]) for r in rows))
    by = {(r["device"], r["hidden_dim"], r["mask"]): r for r in rows}
    fig = Figure(figsize=(5 + 2 * len(settings), 4))
    width = 0.8 / len(MASKS)
    for pos, (key, unit, ratio_key, title) in enumerate(
        [
            ("update_ms", "ms per update", "time_vs_kalei", "Learner update time"),
            ("total_mib", "MiB (resting + peak)", "total_mem_vs_kalei", "Update memory"),
        ]
    ):
        ax = fig.add_subplot(1, 2, pos + 1)
        for k, mask in enumerate(MASKS):
            picked = [by[(*setting, mask)] for setting in settings]
            xs = [i + (k - 1) * width for i in range(len(settings))]
            bars = ax.bar(xs, [r[key] for r in picked], width, label=mask)
            ax.bar_label(bars, [f"{r[ratio_key]:.2f}x" for r in picked], fontsize=7)
        ax.set_xticks(range(len(settings)), [f"{d}\nhidden {h}" for d, h in settings])
        ax.set_ylabel(unit)
        ax.set_title(f"{title} (labels: vs kalei)", fontsize=9)
        ax.legend(fontsize=8)
    return fig


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser, "batch 8 x 10 steps, hidden 64, 3 timed updates per mask (for tests)")
    parser.add_argument("--hidden", type=int, nargs="+", default=None, help="hidden sizes (default 64 256)")
    parser.add_argument("--batch", type=int, default=None, help="sequences per batch (default 32)")
    parser.add_argument("--seq-len", type=int, default=None, help="timesteps per sequence (default 40)")
    parser.add_argument("--repeats", type=int, default=None, help="timed updates per mask (default 40)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed updates per mask first (default 3)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Path]:
    args = parse_args(argv)
    set_threads(args.threads)
    quick = args.quick
    hidden = args.hidden or ([64] if quick else [64, 256])
    base = Shapes(batch=args.batch or (8 if quick else 32), seq_len=args.seq_len or (10 if quick else 40))
    warmup = args.warmup if args.warmup is not None else (1 if quick else 3)
    repeats = args.repeats or (3 if quick else 40)

    rows = measure_device(torch.device("cpu"), hidden, base, warmup, repeats)
    if torch.cuda.is_available():
        rows += measure_device(torch.device("cuda"), hidden, base, warmup, repeats)
        cuda = {"run": True}
    else:
        cuda = {"run": False, "reason": "no CUDA device (torch.cuda.is_available() is False)"}
        print("CUDA part not run: no CUDA device")

    columns = {
        "device": "device",
        "hidden_dim": "hidden",
        "mask": "mask",
        "update_ms": "update ms (median)",
        "time_vs_kalei": "time vs kalei",
        "peak_mib": "peak MiB",
        "resting_mib": "resting MiB",
        "total_mem_vs_kalei": "total mem vs kalei",
        "peak_vs_kalei": "peak vs kalei",
    }
    note = (
        f"Batch: {base.batch} sequences x {base.seq_len} steps x {base.n_agents} agents, obs {base.obs_dim}+"
        f"{base.n_agents} (agent id), state {base.state_dim}, {base.n_actions} actions; median of {repeats} "
        f"updates per mask after {warmup} warm-up, masks interleaved. CPU rows are CPU timings."
    )
    args.output.mkdir(parents=True, exist_ok=True)
    figure = save_figure(plot(rows), args.output, "training_cost.png")
    paths = write_results(
        args.output,
        "training_cost",
        title="Training cost: learner update time and memory, K-2:4 vs Kaleidoscope vs QMIX",
        meta=run_meta(args, __file__, argv),
        tables=[Table("rows", "Update cost per mask", rows, columns, note)],
        findings=findings(rows) + ([] if cuda["run"] else ["CUDA part not run: no CUDA device."]),
        figures=[figure],
        data={"shapes": asdict(base) | {"hidden_dims": hidden}, "claim": CLAIM, "cuda": cuda},
    )
    print(paths["md"].read_text())
    return paths | {"png": figure}


if __name__ == "__main__":
    main()
