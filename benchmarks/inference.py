"""Greedy acting cost of the plain, K-2:4, exported 2:4 and Kaleidoscope agents, and 2:4 sparse vs dense on CUDA.

CPU part (always; labelled CPU): one acting step (``agent(obs [envs, n_agents, obs_dim], hidden)`` + greedy
argmax over available actions, as the RLModule acts) per number of envs, for
  plain      mask "none": parameter-shared QMIX agent;
  k24        K-2:4 agent in eval mode: argmax masks built once and cached (the script counts mask rebuilds while
             acting and reports them; 0 means the cache served every step);
  exported   the K-2:4 agent as deployed: each agent's argmax-masked weights stored compressed (``compress_nm``:
             kept values + in-group indices), DECOMPRESSED ONCE at load, then used as dense weights (CPU has no
             2:4 kernel, so compression buys memory here, not speed);
  kalei      Kaleidoscope agent in eval mode (cached soft-thresholded weights).
With one mask per agent (no mask ids) k24, exported and kalei run each agent's rows through that agent's own
weight, one batched matmul over the agent axis; plain runs all rows through one shared weight. The issue's
target: K-2:4 acting costs <= 1.1x the plain network. Memory: dense vs compressed 2:4 bytes (values + 2-bit
indices) per layer.

CUDA part (only with a CUDA device of compute capability >= 8.0): ``to_sparse_semi_structured`` vs dense
fp16/bf16 nn.Linear across hidden sizes and batch rows, each converted weight checked by ``to_dense()``
equality; reports the crossover (smallest shape where sparse wins) and the best speedup against the 2x ceiling.

    python benchmarks/inference.py            # ~2-3 min on 2 cores (CPU part)
    python benchmarks/inference.py --quick    # a few seconds
"""

from __future__ import annotations

import argparse
import itertools
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from common import (
    Table,
    add_common_args,
    measure,
    measure_interleaved,
    run_meta,
    save_figure,
    set_threads,
    write_results,
)
from matplotlib.figure import Figure
from torch import nn
from torch.sparse import SparseSemiStructuredTensor

from k24_rllib.models import RecurrentAgent
from k24_rllib.sparsity import (
    MaskedLinearBase,
    compress_nm,
    compressed_nbytes,
    decompress_nm,
    export_masked_weights,
    to_semi_structured,
)

VARIANTS = ("plain", "k24", "exported", "kalei")
ENVS = (1, 4, 16, 64, 256, 1024, 2048)  # CPU acting: envs x N_AGENTS agent rows per step
QUICK_ENVS = (1, 16)
ROWS = (1, 8, 64, 256, 1024, 4096, 8192)  # CUDA sweep: matmul rows
QUICK_ROWS = (1, 64)
CUDA_HIDDEN = (64, 128, 256, 512, 1024, 2048, 4096)
QUICK_CUDA_HIDDEN = (64, 1024)
CUDA_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16}
SPARSE_BACKENDS = ("cusparselt", "cutlass")  # PyTorch's default 2:4 backend first
GRAPH_CALLS = 20  # layer calls per captured CUDA graph
SPARSE_CEILING = 2.0
N_AGENTS, OBS_DIM, N_ACTIONS, HIDDEN = 3, 75 + 3, 8, 64  # SMAC 3m-like: obs + one-hot agent id
TARGET_COST_VS_PLAIN = 1.1  # the acting target for K-2:4 on CPU


class ExportedAgent(nn.Module):
    """A trained K-2:4 agent as shipped: per agent and layer the compressed 2:4 weight, decompressed once here."""

    def __init__(self, agent: RecurrentAgent) -> None:
        super().__init__()
        self.n_agents, self.hidden_dim = agent.n_masks, agent.hidden_dim
        for name, weights in export_masked_weights(agent).items():
            shipped = [compress_nm(w) for w in weights]  # what a deployment stores: values + in-group indices
            self.register_buffer(f"{name}_weight", torch.stack([decompress_nm(c) for c in shipped]))
            self.register_buffer(f"{name}_bias", getattr(agent, name).bias.detach().clone())
        self.rnn = agent.rnn

    def _linear(self, name: str, x: torch.Tensor) -> torch.Tensor:
        """x [n_agents, R, in] -> [n_agents, R, out]: agent k's rows through agent k's weight."""
        weight, bias = getattr(self, f"{name}_weight"), getattr(self, f"{name}_bias")
        return torch.matmul(x, weight.transpose(1, 2)) + bias

    def forward(
        self, obs: torch.Tensor, hidden: torch.Tensor, mask_ids: None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``RecurrentAgent.forward`` with one mask per agent: obs [..., n, d], hidden [..., n, H] -> (q, hidden)."""
        if mask_ids is not None:
            raise ValueError("the exported agent has one weight per agent: mask_ids must be None")
        lead, n = obs.shape[:-2], obs.shape[-2]
        x = obs.reshape(-1, n, obs.shape[-1]).transpose(0, 1)  # [n, R, d]
        h = hidden.reshape(-1, n, self.hidden_dim).transpose(0, 1).reshape(-1, self.hidden_dim)
        h = self.rnn(F.relu(self._linear("fc1", x)).reshape(-1, self.hidden_dim), h).reshape(n, -1, self.hidden_dim)
        q = self._linear("fc4", F.relu(self._linear("fc3", F.relu(self._linear("fc2", h)))))
        return q.transpose(0, 1).reshape(*lead, n, -1), h.transpose(0, 1).reshape(*lead, n, -1)


class RebuildCounter:
    """Counts ``masked_weights()`` calls of an agent's masked layers: each one is a mask rebuild."""

    def __init__(self, agent: nn.Module) -> None:
        self.count = 0
        for layer in agent.modules():
            if isinstance(layer, MaskedLinearBase):
                layer.masked_weights = self._counting(layer.masked_weights)  # instance attribute shadows the method

    def _counting(self, build: Callable[[], torch.Tensor]) -> Callable[[], torch.Tensor]:
        def counted() -> torch.Tensor:
            self.count += 1
            return build()

        return counted


def build_agents(seed: int = 0) -> dict[str, nn.Module]:
    """The four acting networks in eval mode; the K-2:4 agent gets distinct per-agent masks (as after training)."""
    torch.manual_seed(seed)
    agents = {m: RecurrentAgent(OBS_DIM, N_ACTIONS, N_AGENTS, HIDDEN, mask=m) for m in ("none", "k24", "kalei")}
    with torch.no_grad():
        for layer in agents["k24"].masked_layers():
            layer.alpha.normal_(0.0, 3.0)  # an untrained alpha ~ 0 gives every agent nearly the same argmax mask
    k24 = agents["k24"].eval()
    exported = ExportedAgent(k24).eval()
    return {"plain": agents["none"].eval(), "k24": k24, "exported": exported, "kalei": agents["kalei"].eval()}


def random_inputs(envs: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random obs [envs, N_AGENTS, OBS_DIM], hidden state [envs, N_AGENTS, HIDDEN], available actions."""
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(envs, N_AGENTS, OBS_DIM, generator=g)
    hidden = torch.randn(envs, N_AGENTS, HIDDEN, generator=g)
    available = torch.rand(envs, N_AGENTS, N_ACTIONS, generator=g) < 0.7
    available[..., 0] = True
    return obs, hidden, available


def acting_step(model: nn.Module, envs: int, seed: int = 0) -> Callable[[], torch.Tensor]:
    """One greedy acting step for ``envs`` team observations, as a closure over fixed random inputs."""
    obs, hidden, available = random_inputs(envs, seed)

    def step() -> torch.Tensor:
        with torch.no_grad():
            q, _ = model(obs, hidden)
            return q.masked_fill(~available, float("-inf")).argmax(dim=-1)

    return step


def check_exported(agents: dict[str, nn.Module], envs: int = 64) -> float:
    """Largest |Q| difference between the exported agent and the K-2:4 eval agent on one batch (should be ~0)."""
    obs, hidden, _ = random_inputs(envs, seed=1)
    with torch.no_grad():
        return float((agents["exported"](obs, hidden)[0] - agents["k24"](obs, hidden)[0]).abs().max())


def cpu_acting(envs_list: Sequence[int], budget_s: float) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Latency and throughput per (variant, envs), plus the cache and export checks."""
    agents = build_agents()
    counter = RebuildCounter(agents["k24"])
    results = []
    for envs in envs_list:
        steps = {variant: acting_step(agents[variant], envs) for variant in VARIANTS}
        timings = measure_interleaved(steps, warmup=3, min_calls=10, budget_s=budget_s * len(steps))
        rows = envs * N_AGENTS
        for variant, timing in timings.items():
            results.append(
                {
                    "device": "CPU",
                    "variant": variant,
                    "envs": envs,
                    "rows": rows,
                    "latency_ms": timing.median_s * 1e3,
                    "latency_ms_p25": timing.p25_s * 1e3,
                    "latency_ms_p75": timing.p75_s * 1e3,
                    "rows_per_s": rows / timing.median_s,
                    "calls": timing.calls,
                }
            )
    # the cache fills once per layer on the first eval call; every later acting call must reuse it
    rebuilds = counter.count - len(agents["k24"].masked_layers())
    ref = {(r["envs"], r["variant"]): r["latency_ms"] for r in results}
    for r in results:
        r["cost_vs_plain"] = r["latency_ms"] / ref[(r["envs"], "plain")]
        r["speed_vs_kalei"] = ref[(r["envs"], "kalei")] / r["latency_ms"]
    k24 = agents["k24"]
    rebuild = measure(lambda: [layer.masked_weights() for layer in k24.masked_layers()], warmup=1, min_calls=5,
                      budget_s=0.5)
    checks = {
        "mask_rebuilds_while_acting": rebuilds,
        "acting_calls": sum(r["calls"] + 3 for r in results if r["variant"] == "k24"),
        "mask_rebuild_ms": rebuild.median_s * 1e3,
        "exported_max_abs_q_diff": check_exported(agents),
    }
    return results, checks


def memory_rows(agent: RecurrentAgent) -> list[dict[str, Any]]:
    """Per layer and agent: dense bytes vs compressed 2:4 bytes (kept values + 2-bit in-group indices)."""
    rows = []
    for name, weights in export_masked_weights(agent).items():
        c = compress_nm(weights[0])
        kept = c.values.numel()
        row: dict[str, Any] = {"layer": name, "shape": f"{c.shape[0]}x{c.shape[1]}", "kept_values": kept}
        for dtype, size in (("fp32", 4), ("fp16", 2)):
            dense = weights[0].numel() * size
            packed = kept * size + math.ceil(kept * 2 / 8)
            row[f"dense_{dtype}_bytes"], row[f"compressed_{dtype}_bytes"] = dense, packed
            row[f"ratio_{dtype}"] = packed / dense
        row["stored_bytes_uint8_indices"] = compressed_nbytes(c)  # compress_nm keeps one byte per index
        rows.append(row)
    return rows


def prune_2_4(weight: torch.Tensor) -> torch.Tensor:
    """Keeps the 2 largest-magnitude entries of every 4 consecutive inputs (weight [out, in], in % 4 == 0)."""
    groups = weight.reshape(weight.shape[0], -1, 4)
    keep = torch.zeros_like(groups).scatter_(-1, groups.abs().topk(2, dim=-1).indices, 1.0)
    return (groups * keep).reshape(weight.shape)


def cuda_sweep(hidden_sizes: Sequence[int], rows_list: Sequence[int], budget_s: float) -> list[dict[str, Any]]:
    """Dense vs ``to_sparse_semi_structured`` nn.Linear (hidden x hidden, no bias) per 2:4 backend (PyTorch's
    default cuSPARSELt, or CUTLASS through its ``_FORCE_CUTLASS`` switch), dtype, hidden and rows."""
    device = torch.device("cuda")
    results = []
    for backend, dtype_name, hidden in itertools.product(SPARSE_BACKENDS, CUDA_DTYPES, hidden_sizes):
        dtype = CUDA_DTYPES[dtype_name]
        dense = nn.Linear(hidden, hidden, bias=False, device=device, dtype=dtype).requires_grad_(False)
        dense.weight.copy_(prune_2_4(dense.weight))
        sparse = nn.Linear(hidden, hidden, bias=False, device=device, dtype=dtype).requires_grad_(False)
        base = {"backend": backend, "dtype": dtype_name, "hidden": hidden}
        SparseSemiStructuredTensor._FORCE_CUTLASS = backend == "cutlass"
        try:
            sparse.weight = nn.Parameter(to_semi_structured(dense.weight), requires_grad=False)
            verified = torch.equal(sparse.weight.to_dense(), dense.weight)
        except (RuntimeError, ValueError) as err:
            results += [base | {"rows": rows, "error": f"conversion: {err}"[:200]} for rows in rows_list]
            continue
        finally:
            SparseSemiStructuredTensor._FORCE_CUTLASS = False
        for rows in rows_list:
            x = torch.randn(rows, hidden, device=device, dtype=dtype)
            row = base | {"rows": rows, "weight_verified": verified}
            try:
                agree = torch.allclose(sparse(x), dense(x), rtol=2e-2, atol=2e-2)
                timings = measure_interleaved(
                    {"dense": lambda: dense(x), "sparse": lambda: sparse(x)},
                    warmup=5, min_calls=5, budget_s=2 * budget_s, sync=torch.cuda.synchronize, inner=20,
                )
            except RuntimeError as err:
                results.append(row | {"error": str(err)[:200]})
                continue
            dense_ms, sparse_ms = (timings[k].median_s * 1e3 for k in ("dense", "sparse"))
            speed = {"dense_ms": dense_ms, "sparse_ms": sparse_ms, "speedup": dense_ms / sparse_ms}
            results.append(row | speed | graph_timings(dense, sparse, x, budget_s) | {"outputs_agree": agree})
    return results


def graph_timings(dense: nn.Module, sparse: nn.Module, x: torch.Tensor, budget_s: float) -> dict[str, Any]:
    """Dense and sparse time per call replayed from CUDA graphs: the kernels' own cost, without the Python and
    launch overhead that an eager call of a small layer mostly is."""
    try:
        replays = {"dense": graph_of(lambda: dense(x)), "sparse": graph_of(lambda: sparse(x))}
        timings = measure_interleaved(replays, warmup=2, min_calls=5, budget_s=budget_s, sync=torch.cuda.synchronize)
    except RuntimeError as err:
        return {"graph_error": str(err)[:200]}
    dense_ms, sparse_ms = (timings[k].median_s * 1e3 / GRAPH_CALLS for k in ("dense", "sparse"))
    return {"dense_graph_ms": dense_ms, "sparse_graph_ms": sparse_ms, "graph_speedup": dense_ms / sparse_ms}


def graph_of(fn: Callable[[], object]) -> Callable[[], None]:
    """The replay of a CUDA graph holding ``GRAPH_CALLS`` calls of ``fn`` (warmed up on a side stream first, as
    capture requires)."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        fn()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(GRAPH_CALLS):
            fn()
    return graph.replay


def _shape(row: dict[str, Any]) -> dict[str, Any]:
    return {"hidden": row["hidden"], "rows": row["rows"], "speedup": row["speedup"]}


def crossover(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per backend and dtype: the smallest verified shape (by hidden x rows) where sparse wins, and the best
    speedup vs 2x."""
    summary = {}
    for backend, dtype in dict.fromkeys((r["backend"], r["dtype"]) for r in rows):
        mine = [r for r in rows if (r["backend"], r["dtype"]) == (backend, dtype)]
        # only shapes whose sparse weight and output were checked against dense count
        timed = [r for r in mine if "speedup" in r and r["weight_verified"] and r["outputs_agree"]]
        wins = sorted((r for r in timed if r["speedup"] > 1.0), key=lambda r: (r["hidden"] * r["rows"], r["hidden"]))
        best = max(timed, key=lambda r: r["speedup"], default=None)
        graphed = [r for r in timed if "graph_speedup" in r]
        best_graph = max(graphed, key=lambda r: r["graph_speedup"], default=None)
        summary[f"{backend} {dtype}"] = {
            "best_graph": {"hidden": best_graph["hidden"], "rows": best_graph["rows"],
                           "speedup": best_graph["graph_speedup"]} if best_graph else None,
            "crossover": _shape(wins[0]) if wins else None,
            "best": _shape(best) | {"of_ceiling": best["speedup"] / SPARSE_CEILING} if best else None,
            "failed_shapes": len(mine) - len(timed),
        }
    return summary


def cuda_part(quick: bool, budget_s: float) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """({"run": ..., "reason" or summary}, sweep rows); the sweep runs only where 2:4 kernels exist."""
    if not torch.cuda.is_available():
        return {"run": False, "reason": "no CUDA device (torch.cuda.is_available() is False)"}, []
    capability = torch.cuda.get_device_capability(0)
    if capability < (8, 0):
        return {"run": False, "reason": f"compute capability {capability} < 8.0: no 2:4 sparse kernels"}, []
    hidden = QUICK_CUDA_HIDDEN if quick else CUDA_HIDDEN
    rows = cuda_sweep(hidden, QUICK_ROWS if quick else ROWS, budget_s / 2)
    device = {"name": torch.cuda.get_device_name(0), "capability": f"{capability[0]}.{capability[1]}"}
    return {"run": True, "device": device, "summary": crossover(rows)}, rows


def findings(acting: list[dict[str, Any]], checks: dict[str, Any], cuda: dict[str, Any]) -> list[str]:
    """The headline numbers against the guide's claims and the issue's targets."""
    by = {(r["variant"], r["envs"]): r for r in acting}
    envs = sorted({r["envs"] for r in acting})
    small, large = envs[0], envs[-1]
    cost = {n: by[("k24", n)]["cost_vs_plain"] for n in envs}
    missed = [n for n in envs if cost[n] > TARGET_COST_VS_PLAIN]
    verdict = f"does NOT hold at {', '.join(map(str, missed))} envs" if missed else "holds at every batch size"
    lines = [
        "CPU (no 2:4 kernel): K-2:4 eval acting cost vs plain network: "
        + ", ".join(f"{cost[n]:.2f}x" for n in envs)
        + f" at {', '.join(map(str, envs))} envs x {N_AGENTS} agents (issue target <= {TARGET_COST_VS_PLAIN}x: "
        + f"{verdict}).",
        "CPU: K-2:4 vs Kaleidoscope acting speed: "
        + " / ".join(f"{by[('k24', n)]['speed_vs_kalei']:.2f}x" for n in (small, large))
        + " (guide's claim 1.5-2.0x is for sparse tensor cores, not CPU); exported per-agent form: "
        + " / ".join(f"{by[('exported', n)]['speed_vs_kalei']:.2f}x" for n in (small, large))
        + f" (at {small} / {large} envs).",
        f"Mask cache: {checks['mask_rebuilds_while_acting']} mask rebuilds over {checks['acting_calls']} K-2:4 acting "
        f"calls (a rebuild of all 4 layers costs {checks['mask_rebuild_ms']:.3f} ms: once per weight sync).",
        f"Exported 2:4 agent vs K-2:4 eval agent: max |Q diff| {checks['exported_max_abs_q_diff']:.2e}.",
    ]
    if not cuda["run"]:
        return lines + [f"CUDA part not run: {cuda['reason']}."]
    for setting, s in cuda["summary"].items():
        cross, best, graph = s["crossover"], s["best"], s["best_graph"]
        lines.append(
            f"CUDA {cuda['device']['name']} {setting}: "
            + (f"sparse first beats dense at hidden {cross['hidden']} x {cross['rows']} rows ({cross['speedup']:.2f}x)"
               if cross else "sparse never beat dense")
            + (f"; best {best['speedup']:.2f}x at hidden {best['hidden']} x {best['rows']} rows "
               f"({best['of_ceiling']:.0%} of the 2x ceiling)" if best else "")
            + (f"; replayed from CUDA graphs (kernels only) best {graph['speedup']:.2f}x at hidden {graph['hidden']}"
               f" x {graph['rows']} rows" if graph else "")
            + f"; {s['failed_shapes']} shapes failed."
        )
    return lines


def plot_cpu(acting: list[dict[str, Any]]) -> Figure:
    """Latency and throughput against batch rows, one line per variant (log-log)."""
    fig = Figure(figsize=(10, 4))
    for pos, (key, label) in enumerate([("latency_ms", "ms per acting step"), ("rows_per_s", "agent rows / s")]):
        ax = fig.add_subplot(1, 2, pos + 1)
        for variant in VARIANTS:
            picked = [r for r in acting if r["variant"] == variant]
            ax.plot([r["rows"] for r in picked], [r[key] for r in picked], marker="o", label=variant)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("batch rows (agents x envs)")
        ax.set_ylabel(label)
        ax.set_title(f"CPU greedy acting: {label}", fontsize=9)
        ax.legend(fontsize=8)
    return fig


def plot_cuda(rows: list[dict[str, Any]]) -> Figure:
    """Speedup of 2:4 sparse over dense per hidden size and batch rows, one heatmap per backend and dtype."""
    settings = list(dict.fromkeys((r["backend"], r["dtype"]) for r in rows))
    fig = Figure(figsize=(6 * len(CUDA_DTYPES), 4.5 * math.ceil(len(settings) / len(CUDA_DTYPES))))
    for pos, (backend, dtype) in enumerate(settings):
        picked = [r for r in rows if (r["backend"], r["dtype"]) == (backend, dtype)]
        hiddens = sorted({r["hidden"] for r in picked})
        batch_rows = sorted({r["rows"] for r in picked})
        grid = torch.full((len(hiddens), len(batch_rows)), float("nan"))
        for r in picked:
            grid[hiddens.index(r["hidden"]), batch_rows.index(r["rows"])] = r.get("speedup", float("nan"))
        ax = fig.add_subplot(math.ceil(len(settings) / len(CUDA_DTYPES)), len(CUDA_DTYPES), pos + 1)
        image = ax.imshow(grid.numpy(), cmap="RdYlGn", vmin=0.0, vmax=SPARSE_CEILING, origin="lower")
        for (i, j), value in zip(((i, j) for i in range(len(hiddens)) for j in range(len(batch_rows))), grid.flatten()):
            ax.text(j, i, "x" if math.isnan(value) else f"{value:.2f}", ha="center", va="center", fontsize=7)
        ax.set_xticks(range(len(batch_rows)), batch_rows)
        ax.set_yticks(range(len(hiddens)), hiddens)
        ax.set_xlabel("batch rows")
        ax.set_ylabel("hidden (weight hidden x hidden)")
        ax.set_title(f"{backend} {dtype}: dense time / 2:4 sparse time", fontsize=9)
        fig.colorbar(image, ax=ax)
    return fig


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(
        parser, f"envs {QUICK_ENVS}, short timing budget (CUDA: hidden {QUICK_CUDA_HIDDEN}, rows {QUICK_ROWS})"
    )
    parser.add_argument("--budget", type=float, default=None, help="seconds of timing per measured cell (default 1.0)")
    return parser.parse_args(argv)


ACTING_COLUMNS = {
    "device": "device",
    "variant": "variant",
    "envs": "envs",
    "rows": "agent rows",
    "latency_ms": "latency ms (median)",
    "rows_per_s": "rows/s",
    "cost_vs_plain": "cost vs plain",
    "speed_vs_kalei": "speed vs kalei",
}
MEMORY_COLUMNS = {
    "layer": "layer",
    "shape": "weight (out x in)",
    "dense_fp32_bytes": "dense fp32 B",
    "compressed_fp32_bytes": "2:4 fp32 B",
    "ratio_fp32": "ratio fp32",
    "dense_fp16_bytes": "dense fp16 B",
    "compressed_fp16_bytes": "2:4 fp16 B",
    "ratio_fp16": "ratio fp16",
    "stored_bytes_uint8_indices": "as stored (uint8 idx) B",
}
CUDA_COLUMNS = {
    "backend": "backend",
    "dtype": "dtype",
    "hidden": "hidden",
    "rows": "batch rows",
    "dense_ms": "dense ms",
    "sparse_ms": "2:4 ms",
    "speedup": "speedup",
    "dense_graph_ms": "dense ms (graph)",
    "sparse_graph_ms": "2:4 ms (graph)",
    "graph_speedup": "speedup (graph)",
    "weight_verified": "to_dense() equal",
    "outputs_agree": "outputs agree",
    "error": "error",
}


def main(argv: list[str] | None = None) -> dict[str, Path]:
    args = parse_args(argv)
    set_threads(args.threads)
    budget = args.budget if args.budget is not None else (0.1 if args.quick else 1.0)
    acting, checks = cpu_acting(QUICK_ENVS if args.quick else ENVS, budget)
    memory = memory_rows(build_agents()["k24"])
    cuda, sweep = cuda_part(args.quick, budget)
    if not cuda["run"]:
        print(f"CUDA part not run: {cuda['reason']}")

    args.output.mkdir(parents=True, exist_ok=True)
    figures = [save_figure(plot_cpu(acting), args.output, "inference.png")]
    tables = [
        Table("cpu_acting", "CPU greedy acting (one step for a batch of envs)", acting, ACTING_COLUMNS),
        Table("memory", "Weight memory per layer and agent: dense vs compressed 2:4", memory, MEMORY_COLUMNS,
              "Compressed = kept values (half of the zero-padded input width) + 2-bit in-group index per value."),
    ]
    if cuda["run"]:
        figures.append(save_figure(plot_cuda(sweep), args.output, "inference_cuda.png"))
        tables.append(Table("cuda_sweep", "CUDA: to_sparse_semi_structured vs dense nn.Linear", sweep, CUDA_COLUMNS))
    paths = write_results(
        args.output,
        "inference",
        title="Inference: greedy acting cost and 2:4 sparse kernels",
        meta=run_meta(args, __file__, argv),
        tables=tables,
        findings=findings(acting, checks, cuda),
        figures=figures,
        data={"checks": checks, "cuda": cuda},
    )
    print(paths["md"].read_text())
    return paths | {f"png{i}": path for i, path in enumerate(figures)}


if __name__ == "__main__":
    main()
