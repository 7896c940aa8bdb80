"""Session-wide fixtures: one local Ray instance sized for this 2-core machine."""

from __future__ import annotations

from typing import Iterator

import pytest


@pytest.fixture(scope="session")
def ray_local() -> Iterator[None]:
    """A local Ray with 2 CPUs (asking for more than the machine has makes RLlib's build hang)."""
    ray = pytest.importorskip("ray")
    started = not ray.is_initialized()
    if started:
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    if started:
        ray.shutdown()
