"""Every command, from its console script or its examples/ script, is one package function under one error wrapper:
a user mistake is exactly one stderr line ``error: ...`` and exit status 2 (each input here fails before Ray starts)."""

from __future__ import annotations

import importlib
import runpy
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS: dict[str, str] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
EXAMPLES = {"k24-train": "train_smac.py", "k24-train-mpe": "train_mpe.py", "k24-evaluate": "evaluate.py",
            "k24-analyze": "analyze.py", "k24-sweep": "sweep.py"}


def entry_point(name: str) -> Callable[..., int]:
    """What the installed console script calls: the ``module:function`` that pyproject names."""
    module, _, function = SCRIPTS[name].partition(":")
    return getattr(importlib.import_module(module), function)


def mistake(name: str, tmp_path: Path) -> tuple[list[str], str]:
    """(argv, words of the error) of a user mistake that each command catches before Ray starts."""
    return {
        "k24-train": (["--model.x=1"], "unknown override group"),
        "k24-train-mpe": (["--model.x=1"], "unknown override group"),
        "k24-evaluate": (["--checkpoint", str(tmp_path / "missing")], "does not exist"),
        "k24-analyze": (["--checkpoint", str(tmp_path / "missing")], "does not exist"),
        "k24-sweep": ([str(tmp_path / "missing.yaml")], "does not exist"),
    }[name]


def assert_one_error_line(err: str, words: str) -> None:
    assert err.startswith("error: ") and err.count("\n") == 1 and words in err, err


def test_pyproject_names_every_command() -> None:
    assert set(SCRIPTS) == set(EXAMPLES)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_console_scripts_point_to_package_functions_that_show_help(name: str, capsys: pytest.CaptureFixture) -> None:
    main = entry_point(name)
    assert callable(main) and main.__module__.startswith("k24_rllib.")
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    assert "usage:" in capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_command_reports_a_mistake_in_one_line(name: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    argv, words = mistake(name, tmp_path)
    assert entry_point(name)(argv) == 2
    assert_one_error_line(capsys.readouterr().err, words)
    assert list(tmp_path.iterdir()) == []  # nothing was created


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_scripts_run_the_same_command(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``python examples/X.py ARGS`` ends exactly as the console script does."""
    argv, words = mistake(name, tmp_path)
    script = ROOT / "examples" / EXAMPLES[name]
    monkeypatch.setattr(sys, "argv", [str(script), *argv])
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(script), run_name="__main__")
    assert done.value.code == 2
    assert_one_error_line(capsys.readouterr().err, words)


def test_one_error_wrapper() -> None:
    """``k24_rllib.cli.run_cli`` is the only code that prints a CliError; no command keeps a copy."""
    sources = [*(ROOT / "k24_rllib").rglob("*.py"), *(ROOT / "examples").glob("*.py")]
    printing = [path.relative_to(ROOT).as_posix() for path in sources if 'print(f"error: ' in path.read_text()]
    assert printing == ["k24_rllib/cli.py"]
