"""Learner update cost of K-2:4 (two mask-sampling modes) vs Kaleidoscope vs plain QMIX on identical batches.

One update = what the K24QMix learner does per train batch of whole episodes (``TeamEpisodeBuffer``): unroll
the recurrent agent from a zero state over every episode (``RecurrentAgent.unroll`` with the ``observed_steps``
mask, as the module's ``q_values`` does), the same with the target agent (``target_copy``: it samples masks
too, without moving the EMA), QMIX mixer and target mixer, double-Q TD(lambda) targets, masked TD loss +
adaptive-coefficient diversity loss, backward, grad clipping, Adam step. It is rebuilt here in pure torch from
the package's own pieces so it runs without an RLlib learner; RLlib's per-update bookkeeping (metrics,
connectors) is not included. Variants:
  k24       K-2:4 with ``K24_args.mask_sample="sequence"`` (the default): one Gumbel mask draw per unroll, and
            the unroll packs the episodes, computing nothing on padding;
  k24_step  K-2:4 with ``mask_sample="step"``: a fresh mask draw per timestep (padded layout);
  kalei     Kaleidoscope;
  none      plain parameter-shared QMIX.
The findings check the issue's targets for each K-2:4 variant and hidden size: update time <= 1.1x
Kaleidoscope's and <= 1.3x QMIX's, peak memory <= 1.1x Kaleidoscope's.

Batches look like SMAX 3m train batches: whole episodes of random length up to the episode limit (60 steps),
right-padded with zeros to the longest one, which runs to the limit (a truncation); every shorter one ends in a
termination. Observations carry the one-hot agent id the module appends.

Memory: "transient" is the most tensor memory allocated during one update above the resting state (CPU: torch
profiler allocation events; CUDA: torch.cuda.max_memory_allocated); "resting" is parameters + buffers + Adam
state of online and target networks; peak memory = resting + transient.

    python benchmarks/training_cost.py            # hidden 64 and 256, several minutes on 2 cores
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

from k24_rllib.algorithm.rl_module import observed_steps
from k24_rllib.training import qmix_td_loss
from k24_rllib.models import QMixer, RecurrentAgent
from k24_rllib.sparsity import AdaptiveCoefficient

# variant -> (mask kind, K24_args.mask_sample)
VARIANTS = {"k24": ("k24", "sequence"), "k24_step": ("k24", "step"), "kalei": ("kalei", None), "none": ("none", None)}
K24_VARIANTS = ("k24", "k24_step")
BASELINES = ("kalei", "none")
# the targets: (row key, upper bound, what it reads as)
TARGETS = (
    ("time_vs_kalei", 1.1, "update time vs Kaleidoscope"),
    ("time_vs_none", 1.3, "update time vs QMIX"),
    ("total_mem_vs_kalei", 1.1, "peak memory vs Kaleidoscope"),
)
MIB = 2**20


@dataclass(frozen=True)
class Shapes:
    """One train batch: SMAX 3m (obs 75, world state 72, 8 actions, episode limit 60) by default."""

    n_agents: int = 3
    obs_dim: int = 75
    state_dim: int = 72
    n_actions: int = 8
    hidden_dim: int = 64
    batch: int = 32  # episodes
    seq_len: int = 60  # T: the longest episode, here the episode limit


def synthetic_batch(s: Shapes, device: torch.device, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random whole episodes in the learner's layout (``pad_episodes``): obs [B, T + 1], the rest [B, T].

    Episode 0 runs to the limit T and is truncated; the others last T/3..T steps and end in a termination.
    Everything past an episode's last observation is zero, as in the replay buffer.
    """
    g = torch.Generator().manual_seed(seed)
    b, t, n = s.batch, s.seq_len, s.n_agents
    lengths = torch.randint(max(1, t // 3), t, (b,), generator=g)
    lengths[0] = t
    valid = torch.arange(t)[None] < lengths[:, None]
    observed = observed_steps(valid)[..., None, None]  # [B, T + 1, 1, 1]
    terminated = torch.zeros(b, t)
    terminated[torch.arange(b), lengths - 1] = (lengths < t).float()
    obs = torch.cat([torch.randn(b, t + 1, n, s.obs_dim, generator=g), torch.eye(n).expand(b, t + 1, n, n)], -1)
    available = torch.rand(b, t + 1, n, s.n_actions, generator=g) < 0.7
    available[..., 0] = True
    batch = {
        "obs": obs * observed,
        "state": torch.randn(b, t + 1, s.state_dim, generator=g) * observed[..., 0],
        "available": available & observed,
        "actions": torch.randint(0, s.n_actions, (b, t, n), generator=g) * valid[..., None],
        "rewards": torch.rand(b, t, generator=g) * valid,
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
    variant: str, s: Shapes, batch: dict[str, torch.Tensor], device: torch.device, seed: int = 0
) -> tuple[Callable[[], None], int]:
    """(one learner update as a closure, resting bytes of networks + optimiser state after the first update)."""
    mask, mask_sample = VARIANTS[variant]
    per_step = mask_sample == "step"
    torch.manual_seed(seed)
    agent = RecurrentAgent(s.obs_dim + s.n_agents, s.n_actions, n_masks=s.n_agents, hidden_dim=s.hidden_dim, mask=mask)
    mixer = QMixer(s.n_agents, s.state_dim)
    agent.to(device).set_temperature(1.0)
    mixer.to(device)
    target_agent, target_mixer = agent.target_copy(), _frozen_copy(mixer)
    params = [*agent.parameters(), *mixer.parameters()]
    optimizer = torch.optim.Adam(params, lr=5e-4)
    coefficient = AdaptiveCoefficient(div_coef=0.1, deque_len=100)
    h0 = agent.initial_state(s.batch, s.n_agents)
    valid = batch["valid"].float()
    observed = observed_steps(batch["valid"])

    def q_values(net: RecurrentAgent) -> torch.Tensor:  # [B, T + 1, n, A], as K24QMixModule.q_values
        return net.unroll(batch["obs"], h0, None, observed, per_step=per_step)[0]

    def update() -> None:
        q = q_values(agent)
        with torch.no_grad():
            target_q = q_values(target_agent)
        loss_td = qmix_td_loss(q, target_q, batch["actions"], batch["rewards"], batch["terminated"], valid,
                               batch["available"], batch["state"], mixer, target_mixer, 0.99, 0.6).loss
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
    """Rows for every (hidden, variant) on ``device``; the variants' updates are timed interleaved on one batch."""
    sync = torch.cuda.synchronize if device.type == "cuda" else None
    label = "CUDA" if device.type == "cuda" else "CPU"
    rows: list[dict[str, Any]] = []
    for hidden in hidden_dims:
        shapes = Shapes(**{**asdict(base), "hidden_dim": hidden})
        batch = synthetic_batch(shapes, device)
        built = {variant: build_update(variant, shapes, batch, device) for variant in VARIANTS}
        updates = {variant: update for variant, (update, _) in built.items()}
        timings = measure_interleaved(updates, warmup=warmup, min_calls=repeats, budget_s=0.0, sync=sync)
        for variant, (update, resting) in built.items():
            timing = timings[variant]
            peak = peak_bytes(update, device)
            rows.append(
                {
                    "device": label,
                    "hidden_dim": hidden,
                    "variant": variant,
                    "mask": VARIANTS[variant][0],
                    "mask_sample": VARIANTS[variant][1],
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
    """Each row's time and memory as ratios to the Kaleidoscope and the QMIX row of the same device and hidden."""
    ref = {(r["device"], r["hidden_dim"], r["variant"]): r for r in rows if r["variant"] in BASELINES}
    for row in rows:
        for baseline in BASELINES:
            other = ref[(row["device"], row["hidden_dim"], baseline)]
            row[f"time_vs_{baseline}"] = row["update_ms"] / other["update_ms"]
            row[f"peak_vs_{baseline}"] = row["peak_mib"] / other["peak_mib"]
            row[f"total_mem_vs_{baseline}"] = row["total_mib"] / other["total_mib"]
    return rows


def findings(rows: list[dict[str, Any]]) -> list[str]:
    """Per device, hidden size and K-2:4 variant: each of the issue's targets, held or not by the measured ratios."""
    lines = []
    for row in (r for r in rows if r["variant"] in K24_VARIANTS):
        checks = [
            f"{label} {row[key]:.2f}x (target <= {bound}x: {'holds' if row[key] <= bound else 'does NOT hold'})"
            for key, bound, label in TARGETS
        ]
        lines.append(
            f"{row['device']}, hidden {row['hidden_dim']}, {row['variant']} (mask_sample {row['mask_sample']}): "
            + "; ".join(checks)
            + f"; transient memory {row['peak_vs_kalei']:.2f}x Kaleidoscope's."
        )
    return lines


def plot(rows: list[dict[str, Any]]) -> Figure:
    """Update time and peak memory per setting, bars per variant, each labelled with its ratio to Kaleidoscope."""
    settings = list(dict.fromkeys((r["device"], r["hidden_dim"]) for r in rows))
    by = {(r["device"], r["hidden_dim"], r["variant"]): r for r in rows}
    fig = Figure(figsize=(6 + 2.5 * len(settings), 4))
    width = 0.8 / len(VARIANTS)
    for pos, (key, unit, ratio_key, title) in enumerate(
        [
            ("update_ms", "ms per update", "time_vs_kalei", "Learner update time"),
            ("total_mib", "MiB (resting + transient)", "total_mem_vs_kalei", "Update peak memory"),
        ]
    ):
        ax = fig.add_subplot(1, 2, pos + 1)
        for k, variant in enumerate(VARIANTS):
            picked = [by[(*setting, variant)] for setting in settings]
            xs = [i + (k - (len(VARIANTS) - 1) / 2) * width for i in range(len(settings))]
            bars = ax.bar(xs, [r[key] for r in picked], width, label=variant)
            ax.bar_label(bars, [f"{r[ratio_key]:.2f}x" for r in picked], fontsize=6)
        ax.set_xticks(range(len(settings)), [f"{d}\nhidden {h}" for d, h in settings])
        ax.set_ylabel(unit)
        ax.set_title(f"{title} (labels: vs kalei)", fontsize=9)
        ax.legend(fontsize=8)
    return fig


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser, "8 episodes of <= 10 steps, hidden 64, 3 timed updates per variant (for tests)")
    parser.add_argument("--hidden", type=int, nargs="+", default=None, help="hidden sizes (default 64 256)")
    parser.add_argument("--batch", type=int, default=None, help="episodes per batch (default 32)")
    parser.add_argument(
        "--seq-len", type=int, default=None, help="episode limit: the longest episode's steps (default 60, SMAX 3m)"
    )
    parser.add_argument("--repeats", type=int, default=None, help="timed updates per variant (default 40)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed updates per variant first (default 3)")
    parser.add_argument(
        "--devices", nargs="+", choices=("cpu", "cuda"), default=("cpu", "cuda"),
        help="devices to measure (default both; cuda only where torch sees one)",
    )
    return parser.parse_args(argv)


COLUMNS = {
    "device": "device",
    "hidden_dim": "hidden",
    "variant": "variant",
    "update_ms": "update ms (median)",
    "time_vs_kalei": "time vs kalei",
    "time_vs_none": "time vs QMIX",
    "total_mib": "peak MiB",
    "total_mem_vs_kalei": "peak mem vs kalei",
    "total_mem_vs_none": "peak mem vs QMIX",
    "resting_mib": "resting MiB",
    "peak_mib": "transient MiB",
    "peak_vs_kalei": "transient vs kalei",
}


def main(argv: list[str] | None = None) -> dict[str, Path]:
    args = parse_args(argv)
    set_threads(args.threads)
    quick = args.quick
    hidden = args.hidden or ([64] if quick else [64, 256])
    base = Shapes(batch=args.batch or (8 if quick else 32), seq_len=args.seq_len or (10 if quick else 60))
    warmup = args.warmup if args.warmup is not None else (1 if quick else 3)
    repeats = args.repeats or (3 if quick else 40)

    rows = measure_device(torch.device("cpu"), hidden, base, warmup, repeats) if "cpu" in args.devices else []
    if "cuda" not in args.devices:
        cuda = {"run": False, "reason": "not asked for (--devices)"}
    elif torch.cuda.is_available():
        rows += measure_device(torch.device("cuda"), hidden, base, warmup, repeats)
        cuda = {"run": True, "device": torch.cuda.get_device_name(0)}
    else:
        cuda = {"run": False, "reason": "no CUDA device (torch.cuda.is_available() is False)"}
    if not cuda["run"]:
        print(f"CUDA part not run: {cuda['reason']}")
    if not rows:
        raise SystemExit("nothing measured: add cpu to --devices, or run where torch sees a CUDA device")

    valid_steps = int(synthetic_batch(base, torch.device("cpu"))["valid"].sum())
    note = (
        f"Batch: {base.batch} episodes x <= {base.seq_len} steps ({valid_steps} valid, right-padded to "
        f"{base.seq_len}) x {base.n_agents} agents, obs {base.obs_dim}+{base.n_agents} (agent id), state "
        f"{base.state_dim}, {base.n_actions} actions; median of {repeats} updates per variant after {warmup} "
        f"warm-up, variants interleaved. Peak = resting + transient. CPU rows are CPU timings."
    )
    args.output.mkdir(parents=True, exist_ok=True)
    figure = save_figure(plot(rows), args.output, "training_cost.png")
    paths = write_results(
        args.output,
        "training_cost",
        title="Training cost: learner update time and memory, K-2:4 vs Kaleidoscope vs QMIX",
        meta=run_meta(args, __file__, argv),
        tables=[Table("rows", "Update cost per variant", rows, COLUMNS, note)],
        findings=findings(rows) + ([] if cuda["run"] else [f"CUDA part not run: {cuda['reason']}."]),
        figures=[figure],
        data={
            "shapes": asdict(base) | {"hidden_dims": hidden, "valid_steps": valid_steps},
            "targets": {key: bound for key, bound, _ in TARGETS},
            "cuda": cuda,
        },
    )
    print(paths["md"].read_text())
    return paths | {"png": figure}


if __name__ == "__main__":
    main()
