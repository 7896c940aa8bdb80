"""What every benchmark script shares: its flags, timing, the machine/version record and the result files.

Each script measures one thing; how a result is timed, recorded and written lives here, so every result file
carries the same machine record and layout (``<name>.json``, ``<name>.md``, PNGs beside them). Scripts are run
as ``python benchmarks/<name>.py``, which puts this folder first on ``sys.path``, so they ``import common``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results"
PACKAGES = ("torch", "ray", "numpy", "matplotlib", "k24-rllib")


def add_common_args(parser: argparse.ArgumentParser, quick_help: str) -> None:
    """--quick, --output, --threads: the flags every benchmark takes."""
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument(
        "--output", type=Path, default=DEFAULT_OUTPUT, help=f"folder for the result files (default {DEFAULT_OUTPUT})"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: the tiny RL matmuls run ~10x faster single-threaded on 2 cores)",
    )


def set_threads(n: int) -> None:
    """Applies --threads before any torch work, so every timed call sees the same thread count."""
    import torch

    if n < 1:
        raise SystemExit(f"--threads must be >= 1, got {n}")
    torch.set_num_threads(n)


def _versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for package in PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = None
    return found


def _git_revision() -> str | None:
    """HEAD of the checkout the script runs from, with "+dirty" when the tree has changes (None outside git)."""
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=here, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=here, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return sha + ("+dirty" if dirty else "")


def cuda_device() -> dict[str, Any] | None:
    """Name and compute capability of CUDA device 0, or None when torch sees no CUDA device."""
    import torch

    if not torch.cuda.is_available():
        return None
    major, minor = torch.cuda.get_device_capability(0)
    return {"name": torch.cuda.get_device_name(0), "capability": f"{major}.{minor}", "cuda": torch.version.cuda}


def machine_info() -> dict[str, Any]:
    """Where and with what a result was measured: CPU, cores, torch threads, CUDA device, versions, git revision."""
    import torch

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "torch_threads": torch.get_num_threads(),
        "cuda_device": cuda_device(),
        "versions": _versions(),
        "git": _git_revision(),
    }


def _cpu_model() -> str | None:
    """The CPU's model name and clock from /proc/cpuinfo (Linux), e.g. "AMD EPYC, 2246 MHz": cloud machines of
    the same name differ in speed, and the clock tells them apart."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in lines if ":" in line)
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    model, mhz = fields.get("model name"), fields.get("cpu MHz")
    return ", ".join(part for part in (model, mhz and f"{float(mhz):.0f} MHz") if part) or None


def run_meta(args: argparse.Namespace, script: str, argv: Sequence[str] | None = None) -> dict[str, Any]:
    """The machine record plus the command and settings, so a result file says how to reproduce it.

    ``script`` is the benchmark's ``__file__``; ``argv`` the arguments its ``main`` got (None: the command line).
    """
    settings = {key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()}
    arguments = list(sys.argv[1:] if argv is None else argv)
    return {
        "machine": machine_info(),
        "command": shlex.join(["python", f"benchmarks/{Path(script).name}", *arguments]),
        "settings": settings,
        "utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


@dataclass(frozen=True)
class Timing:
    """Per-call wall times of one measured callable."""

    median_s: float
    p25_s: float
    p75_s: float
    calls: int


def summarise_times(times: Sequence[float]) -> Timing:
    """Median and quartiles: robust to the stray slow call a shared machine produces."""
    if len(times) < 2:
        return Timing(times[0], times[0], times[0], len(times))
    q1, _, q3 = statistics.quantiles(times, n=4)
    return Timing(statistics.median(times), q1, q3, len(times))


def time_call(fn: Callable[[], object], sync: Callable[[], None] | None = None, inner: int = 1) -> float:
    """Seconds per call of ``fn``, averaged over ``inner`` back-to-back calls.

    ``sync`` (e.g. torch.cuda.synchronize) brackets the calls, so asynchronous devices are timed to completion,
    and ``inner`` > 1 keeps tiny kernels from being swamped by the sync itself.
    """
    if sync is not None:
        sync()
    start = time.perf_counter()
    for _ in range(inner):
        fn()
    if sync is not None:
        sync()
    return (time.perf_counter() - start) / inner


def measure_interleaved(
    fns: Mapping[str, Callable[[], object]],
    *,
    warmup: int,
    min_calls: int,
    budget_s: float,
    sync: Callable[[], None] | None = None,
    inner: int = 1,
) -> dict[str, Timing]:
    """Times several callables round-robin, so load changes on a shared machine hit each of them alike.

    After ``warmup`` calls of each, rounds of one timing per callable (each over ``inner`` calls, see
    ``time_call``) run until ``min_calls`` rounds are done and ``budget_s`` seconds are spent.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    deadline = time.perf_counter() + budget_s
    rounds = 0
    while rounds < min_calls or time.perf_counter() < deadline:
        for name, fn in fns.items():
            times[name].append(time_call(fn, sync, inner))
        rounds += 1
    return {name: summarise_times(t) for name, t in times.items()}


def measure(fn: Callable[[], object], **kwargs: Any) -> Timing:
    """``measure_interleaved`` for one callable."""
    return measure_interleaved({"fn": fn}, **kwargs)["fn"]


@dataclass(frozen=True)
class Table:
    """One result table: a markdown table in ``<name>.md`` and a list of row dicts under ``key`` in the JSON.

    ``columns`` maps row keys to headers, in display order; rows may hold more keys than are shown.
    """

    key: str
    title: str
    rows: list[dict[str, Any]]
    columns: Mapping[str, str]
    note: str = ""


def format_cell(value: Any) -> str:
    """Readable markdown cell: floats to 3 significant digits or whole, big numbers with separators, None as "-"."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if abs(value) >= 100:
            return f"{value:,.0f}"
        return f"{value:.3g}" if value == 0 or abs(value) >= 1e-3 else f"{value:.2e}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value).replace("|", "\\|")


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Mapping[str, str]) -> str:
    """GitHub markdown table of ``rows`` restricted to ``columns``."""
    lines = ["| " + " | ".join(columns.values()) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(format_cell(row.get(key)) for key in columns) + " |" for row in rows]
    return "\n".join(lines)


def _machine_line(machine: Mapping[str, Any]) -> str:
    cuda = machine["cuda_device"]
    gpu = f"{cuda['name']} (sm {cuda['capability']})" if cuda else "none"
    versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items() if v)
    return (
        f"Machine: {machine['processor']}, {machine['cpu_count']} cores (1-min load {machine['load_average_1min']}), "
        f"torch threads {machine['torch_threads']}, CUDA device: {gpu}; {versions}; git {machine['git']}."
    )


def write_results(
    output_dir: Path,
    name: str,
    *,
    title: str,
    meta: Mapping[str, Any],
    tables: Sequence[Table],
    findings: Sequence[str] = (),
    figures: Sequence[Path] = (),
    data: Mapping[str, Any] | None = None,
) -> dict[str, Path]:
    """Writes ``<name>.json`` (meta, findings, every table's rows, extra ``data``) and ``<name>.md``.

    The markdown opens with the command and machine, then the findings, the figures and the tables, so the file
    reads on its own. Returns {"json": path, "md": path}.
    """
    output_dir.mkdir(parents=True, exist_ok=True)
    payload = {"name": name, "title": title, "meta": dict(meta), "findings": list(findings)}
    payload.update({table.key: table.rows for table in tables})
    payload.update(data or {})
    json_path = output_dir / f"{name}.json"
    json_path.write_text(json.dumps(payload, indent=2, default=str) + "\n")

    parts = [f"# {title}", "", f"Command: `{meta['command']}`", "", _machine_line(meta["machine"]), ""]
    parts += [f"- {line}" for line in findings] + ([""] if findings else [])
    parts += [f"![{path.stem}]({path.name})" for path in figures] + ([""] if figures else [])
    for table in tables:
        parts += [f"## {table.title}", ""] + ([table.note, ""] if table.note else [])
        parts += [markdown_table(table.rows, table.columns), ""]
    md_path = output_dir / f"{name}.md"
    md_path.write_text("\n".join(parts))
    return {"json": json_path, "md": md_path}


def save_figure(fig: Figure, output_dir: Path, filename: str) -> Path:
    """Renders ``fig`` to ``output_dir/filename`` with Agg (matplotlib's Figure API: no pyplot, no display)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / filename
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path
