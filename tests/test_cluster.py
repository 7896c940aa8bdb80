"""A real Ray cluster: ``ray start --head`` on this machine, then training and a sweep join it with ``--address auto``.

The head runs as its own process (``ray start --head --block``) and is stopped by interrupting that process, not by
``ray stop``, which would also stop every other Ray on the machine. ``--address auto`` finds the head that
``ray start`` last started on this machine, and then also uses Ray's token authentication when the head has it (an
explicit address does not: it needs ``RAY_AUTH_MODE=token`` as well).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def ray_head() -> Iterator[dict[str, str]]:
    """A 2-CPU Ray head on this machine; yields its clients' environment, with the head's address in
    ``HEAD_ADDRESS`` and whether it uses token authentication in ``HEAD_TOKEN_AUTH``."""
    ray_cli = shutil.which("ray", path=str(Path(sys.executable).parent))
    if ray_cli is None:
        pytest.skip("the `ray` command is not installed beside this Python")
    head = subprocess.Popen(
        [ray_cli, "start", "--head", "--block", "--port", str(free_port()), "--num-cpus", "2",
         "--include-dashboard", "false", "--ray-client-server-port", str(free_port()), "--disable-usage-stats"],
        start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        output = []
        for line in head.stdout:  # the head prints its address, then blocks once it runs
            output.append(line)
            if "--block" in line:
                break
        address = re.search(r"ray start --address='([^']+)'", "".join(output))
        assert head.poll() is None and address, "".join(output)[-3000:]
        token = "Token authentication is enabled" in "".join(output)  # Ray 2.60: once ~/.ray/auth_token exists
        yield {**{k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}, "HEAD_ADDRESS": address.group(1),
               "HEAD_TOKEN_AUTH": str(int(token))}
    finally:
        head.send_signal(signal.SIGINT)  # --block stops the head's processes on Ctrl-C
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()


def run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_training_and_a_sweep_join_a_real_ray_head(ray_head: dict[str, str], tmp_path: Path) -> None:
    pytest.importorskip("jaxmarl")
    train = run(["examples/train_smac.py", "--address", "auto", "--num-workers", "2", "--stop-timesteps", "2000",
                 "--eval-every", "0", "--quiet", "--output", str(tmp_path / "train"),
                 "--training.num_steps_sampled_before_learning_starts=500",
                 "--training.train_batch_size_per_learner=64"], ray_head)
    assert train.returncode == 0, train.stderr[-3000:]
    rows = [json.loads(line) for line in (tmp_path / "train" / "result.jsonl").read_text().splitlines()]
    assert rows[-1]["env_steps"] >= 2000 and (tmp_path / "train" / "checkpoint").is_dir()
    assert rows[-1]["fault_tolerance/num_healthy_workers"] == 2  # both remote EnvRunners ran on the head

    sweep = run(["examples/sweep.py", "tune_configs/quick_coordination.yaml", "--address", "auto",
                 "--output", str(tmp_path / "sweep")], ray_head)
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    assert "trials: 2, failed: 0" in sweep.stdout
    trials = [path for path in (tmp_path / "sweep" / "quick_coordination").iterdir() if path.is_dir()]
    assert len(trials) == 2 and all((trial / "result.json").is_file() for trial in trials)

    # without --address a run starts a Ray of its own, even while a head runs on the machine
    local = run(["-c", "from k24_rllib.experiment import init_ray; init_ray(None); import ray; "
                       "print(ray.get_runtime_context().gcs_address)"], ray_head)
    assert local.returncode == 0 and local.stdout.split()[-1] != ray_head["HEAD_ADDRESS"], local.stderr[-2000:]

    if ray_head["HEAD_TOKEN_AUTH"] == "0":
        return
    # an explicit address skips Ray's token pick-up: one line that says what to set, not a traceback
    explicit = run(["examples/train_smac.py", "--address", ray_head["HEAD_ADDRESS"], "--output",
                    str(tmp_path / "explicit")], {k: v for k, v in ray_head.items() if k != "RAY_AUTH_MODE"})
    assert explicit.returncode == 2 and explicit.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "RAY_AUTH_MODE=token" in explicit.stderr.strip().splitlines()[-1]
