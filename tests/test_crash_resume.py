"""A trainer SIGKILLed after a checkpoint, then ``--resume``: the run goes on where its checkpoint left it.

The trainer runs as a user runs it (``examples/train_smac.py`` in its own process group, with its local Ray) and
is killed with SIGKILL, Ray's processes and all, once it has checkpointed past a few resets. The resumed run must
continue every counter and schedule from the checkpoint, not from zero.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from k24_rllib.experiment import read_rows

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["--map", "3m", "--num-workers", "0", "--envs-per-worker", "2", "--eval-every", "0", "--quiet",
         "--checkpoint-every", "3", "--training.num_steps_sampled_before_learning_starts=200",
         "--training.train_batch_size_per_learner=64", "--training.training_intensity=1",
         "--K24_args.reset_interval=1000", "--K24_args.deque_len=10000"]
CONTROLLERS = ("checkpoint", "learner_group", "learner", "state.pkl")


def rows(run_dir: Path) -> list[dict[str, float]]:
    """The run's rows; ``read_rows`` leaves out a last row the trainer is writing (or was killed in)."""
    return read_rows(run_dir / "result.jsonl")


def controller(run_dir: Path) -> dict:
    """The saved mask controller: adaptive-coefficient history, reset schedule, reset count."""
    with open(run_dir.joinpath(*CONTROLLERS), "rb") as f:
        return pickle.load(f)["k24_mask_controllers"]["default_policy"]


def train_until_killed(run_dir: Path, min_resets: int, timeout_s: float = 240.0) -> None:
    """Starts the trainer and SIGKILLs its whole process group once a checkpoint holds ``min_resets`` resets and
    an iteration after that checkpoint was logged (it is trained again on resume)."""
    argv = [sys.executable, str(ROOT / "examples" / "train_smac.py"), *SMALL, "--stop-timesteps", "100000",
            "--output", str(run_dir)]
    proc = subprocess.Popen(argv, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.time() + timeout_s
    try:
        while time.time() < deadline:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            try:
                if controller(run_dir)["num_resets"] >= min_resets and rows(run_dir)[-1]["training_iteration"] % 3:
                    break
            except (OSError, EOFError, KeyError, IndexError, pickle.UnpicklingError):
                pass  # no checkpoint or row yet, or a checkpoint being swapped
            time.sleep(0.5)
        else:
            pytest.fail(f"no checkpoint with {min_resets} resets within {timeout_s} s")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_a_sigkilled_trainer_resumes_every_counter_and_schedule(ray_local, tmp_path: Path) -> None:
    pytest.importorskip("jaxmarl")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from k24_rllib.experiment import main

    run_dir = tmp_path / "run"
    train_until_killed(run_dir, min_resets=2)
    saved = controller(run_dir)
    killed_at = rows(run_dir)[-1]
    assert saved["num_resets"] >= 2 and len(saved["coefficient"]["td_history"]) > 0

    budget = int(killed_at["env_steps"]) + 3000
    assert main("smac", "3m", "test", ["--output", str(run_dir), "--resume", "--quiet", "--stop-timesteps",
                                       str(budget)]) == 0
    after = rows(run_dir)
    final = controller(run_dir)

    assert killed_at["training_iteration"] % 3  # the killed sitting logged past its last checkpoint
    iterations = [int(row["training_iteration"]) for row in after]
    assert iterations == list(range(1, len(after) + 1))  # no duplicate or missing iteration
    steps = [row["env_steps"] for row in after]
    assert steps == sorted(set(steps)) and steps[-1] >= budget  # env steps continue
    learner = [row for row in after if "learners/default_policy/temperature" in row]
    for key in ("temperature", "epsilon", "progress"):  # schedules continue: never back to their start
        values = [row[f"learners/default_policy/{key}"] for row in learner]
        assert values == (sorted(values) if key == "progress" else sorted(values, reverse=True)), key
    resets = [row["learners/default_policy/num_resets"] for row in learner]
    assert resets == sorted(resets) and final["num_resets"] > saved["num_resets"]  # the reset schedule goes on
    assert final["resets"]["last_reset"] > saved["resets"]["last_reset"]
    history = saved["coefficient"]["td_history"]  # the adaptive coefficient's history grows from the saved one
    assert final["coefficient"]["td_history"][: len(history)] == history
    assert len(final["coefficient"]["td_history"]) > len(history)

    events = EventAccumulator(str(run_dir / "tensorboard"))  # steps the killed sitting logged after its checkpoint
    events.Reload()  # are purged by the resumed writer
    logged = [event.step for event in events.Scalars("learners/default_policy/temperature")]
    assert logged == sorted(set(logged)) and logged[-1] == steps[-1]
