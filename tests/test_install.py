"""The set-up installs what the README tells users to run."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def test_the_full_install_includes_the_tensorboard_viewer():
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    assert "tensorboard" in project["optional-dependencies"]["all"][0]
    assert project["optional-dependencies"]["tensorboard"][0].startswith("tensorboard")


def test_the_tensorboard_command_sits_beside_this_python():
    pytest.importorskip("tensorboard", reason="installed by the 'tensorboard' extra (scripts/setup.sh installs all)")
    assert (Path(sys.executable).parent / "tensorboard").is_file()
