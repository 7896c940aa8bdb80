"""k24_rllib.analysis on agent networks of the three mask kinds, and the analyze command (k24_rllib.analyze, with
k24_rllib.checkpoints finding the module) on saved RLModules."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch

from k24_rllib.analysis import (
    acting_pattern_probability,
    flip_share,
    analyze,
    cut_off_inputs,
    mask_agreement,
    pattern_agreement,
    pattern_choices,
    pattern_overlap,
    pattern_usage,
    shared_choice_share,
)
from k24_rllib.analyze import main as analyze_main
from k24_rllib.models import RecurrentAgent

ROOT = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MODULE_LAYOUT = "learner_group/learner/rl_module/default_policy"  # an algorithm checkpoint's RLModule (Ray 2.60)
N_AGENTS, OBS_DIM, N_ACTIONS, STATE_DIM = 3, 10, 5, 12


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 1000, path


def spread_masks(agent: RecurrentAgent) -> RecurrentAgent:
    """Pushes the masks apart, as training would (fresh masks are nearly identical)."""
    torch.manual_seed(0)
    with torch.no_grad():
        for layer in agent.masked_layers():
            if agent.mask == "k24":
                layer.alpha.normal_(0.0, 3.0)
            else:
                layer.thresholds.uniform_(-4.0, 0.0)
    return agent


def make_agent(mask: str) -> RecurrentAgent:
    torch.manual_seed(0)
    return spread_masks(RecurrentAgent(OBS_DIM, N_ACTIONS, N_AGENTS, hidden_dim=16, mask=mask))


def test_k24_matrices_are_consistent_with_logged_stats() -> None:
    agent = make_agent("k24")
    choices = pattern_choices(agent)
    assert list(choices) == ["fc1", "fc2", "fc3", "fc4"]
    assert choices["fc1"].shape == (N_AGENTS, 16, 3)  # 10 inputs padded to 12 = 3 groups
    agreement = pattern_agreement(agent)
    assert torch.equal(agreement, agreement.T) and torch.all(agreement.diagonal() == 1)
    assert torch.all(agreement[~torch.eye(N_AGENTS, dtype=torch.bool)] < 1)
    overlap = pattern_overlap(agent)
    off_diagonal = overlap[torch.triu(torch.ones(N_AGENTS, N_AGENTS, dtype=torch.bool), diagonal=1)]
    assert off_diagonal.mean().item() == pytest.approx(agent.get_pattern_stats()["pattern_mean_similarity"], rel=1e-5)
    usage = pattern_usage(agent)
    assert usage.shape == (N_AGENTS, 6) and torch.allclose(usage.sum(dim=1), torch.ones(N_AGENTS))


def test_the_shared_choice_share_tells_masks_that_follow_the_shared_weights() -> None:
    torch.manual_seed(0)
    alike = RecurrentAgent(OBS_DIM, N_ACTIONS, N_AGENTS, hidden_dim=16, mask="k24")
    with torch.no_grad():
        for layer in alike.masked_layers():
            layer.alpha.zero_()  # no mask of its own: every choice is the shared |W| * EMA one
    assert torch.equal(shared_choice_share(alike), torch.ones(N_AGENTS))
    spread = shared_choice_share(make_agent("k24"))  # alpha ~ N(0, 3^2): most choices are the masks' own
    assert spread.shape == (N_AGENTS,) and bool((spread < 0.6).all()) and bool((spread > 1 / 6 - 0.1).all())


def test_the_acting_pattern_probability_follows_the_temperature() -> None:
    agent = make_agent("k24")
    agent.set_temperature(1e-4)
    assert torch.allclose(acting_pattern_probability(agent), torch.ones(N_AGENTS))
    agent.set_temperature(1e4)
    assert torch.allclose(acting_pattern_probability(agent), torch.full((N_AGENTS,), 1 / 6), atol=1e-3)
    agent.set_temperature(1.0)
    assert bool((acting_pattern_probability(agent) < 0.9).all())


def test_flip_share_grows_with_the_step_and_leaves_the_agent_as_it_was() -> None:
    agent = make_agent("k24")
    state = {k: v.clone() for k, v in agent.state_dict().items()}
    assert flip_share(agent, "weight", 0.0) == {name: 0.0 for name in ("fc1", "fc2", "fc3", "fc4")}
    small, large = flip_share(agent, "weight", 1e-3), flip_share(agent, "weight", 0.1)
    assert all(0.0 <= small[name] < large[name] <= 1.0 for name in small)
    assert sum(flip_share(agent, "alpha", 50.0).values()) > 0  # alpha ~ N(0, 3^2): a step of 50 reorders it
    assert all(torch.equal(state[k], v) for k, v in agent.state_dict().items())


def test_cut_off_inputs_finds_an_input_that_every_row_prunes() -> None:
    agent = make_agent("k24")
    assert cut_off_inputs(agent) == {name: 0.0 for name in ("fc1", "fc2", "fc3", "fc4")}  # random-like masks
    fc2 = agent.fc2
    with torch.no_grad():
        fc2.ema[0] = 1e-6  # a quiet input: every row's score for it is ~0, so every group prunes it
    assert cut_off_inputs(agent)["fc2"] == 1 / fc2.in_features


def test_kalei_agreement_matches_mask_stats() -> None:
    agent = make_agent("kalei")
    agreement = mask_agreement(agent)
    off_diagonal = agreement[torch.triu(torch.ones(N_AGENTS, N_AGENTS, dtype=torch.bool), diagonal=1)]
    assert off_diagonal.mean().item() == pytest.approx(agent.get_pattern_stats()["mask_mean_similarity"], rel=1e-5)


@pytest.mark.parametrize(
    ("mask", "pngs"),
    [
        ("k24", {"patterns_fc1", "patterns_fc2", "patterns_fc3", "patterns_fc4", "similarity", "pattern_usage",
                 "sparsity"}),
        ("kalei", {"mask_agreement", "sparsity"}),
        ("none", set()),
    ],
)
def test_analyze_writes_pictures_and_summary(mask: str, pngs: set[str], tmp_path: Path) -> None:
    paths = analyze(make_agent(mask), tmp_path, mask_labels=[f"agent {k}" for k in range(N_AGENTS)])
    assert set(paths) == pngs | {"summary"}
    for name in pngs:
        assert_png(paths[name])
    summary = paths["summary"].read_text()
    assert summary.startswith("# Mask analysis")
    layer_rows = [line for line in summary.splitlines() if line.startswith(tuple(f"| fc{k} |" for k in range(1, 5)))]
    assert len(layer_rows) == 4
    assert "Overall sparsity of the masked layers:" in summary
    assert ("inputs kept by fewer than 5% of the rows" in summary) == (mask != "none")
    if mask == "k24":
        assert "| agent 2 |" in summary and "Overall sparsity of the masked layers: 0.500" in summary
    if mask == "none":
        assert "no masks" in summary and "Overall sparsity of the masked layers: 0.000" in summary


def test_analysis_imports_only_the_pure_torch_parts() -> None:
    """No ray at import: analysis.py imports torch, matplotlib and k24_rllib.models/sparsity only (whose own
    ray-free import tests/sparsity/test_no_ray.py checks in a fresh interpreter)."""
    tree = ast.parse((ROOT / "k24_rllib" / "analysis.py").read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert {name.split(".")[0] for name in imported} <= {"__future__", "collections", "pathlib", "torch", "matplotlib",
                                                         "k24_rllib"}
    assert all(name.startswith(("k24_rllib.models", "k24_rllib.sparsity")) for name in imported
               if name.startswith("k24_rllib"))


# ----- k24-analyze / examples/analyze.py ----------------------------------------------------------------------


def save_module(mask: str, directory: Path) -> None:
    """A K24QMixModule (team Dict observation, MultiDiscrete action) saved with ``save_to_path``."""
    gym = pytest.importorskip("gymnasium")
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    from k24_rllib.algorithm.rl_module import K24QMixModule

    obs_space = gym.spaces.Dict(
        {
            "obs": gym.spaces.Box(-np.inf, np.inf, (N_AGENTS, OBS_DIM), np.float32),
            "state": gym.spaces.Box(-np.inf, np.inf, (STATE_DIM,), np.float32),
            "action_mask": gym.spaces.Box(0.0, 1.0, (N_AGENTS, N_ACTIONS), np.float32),
        }
    )
    spec = RLModuleSpec(
        module_class=K24QMixModule,
        observation_space=obs_space,
        action_space=gym.spaces.MultiDiscrete([N_ACTIONS] * N_AGENTS),
        model_config={"mask": mask, "hidden_dim": 16},
    )
    module = spec.build()
    spread_masks(module.agent)
    module.save_to_path(directory)


def test_the_module_path_is_rllibs_layout() -> None:
    """The layout the tests below save into is the one k24_rllib.checkpoints builds from RLlib's constants."""
    from k24_rllib.checkpoints import module_path

    assert module_path() == Path(MODULE_LAYOUT)


@pytest.mark.parametrize(("mask", "layout"), [("k24", MODULE_LAYOUT), ("kalei", ""), ("none", "")])
def test_analyze_script_on_saved_modules(mask: str, layout: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    checkpoint = tmp_path / "checkpoint"
    save_module(mask, checkpoint / layout)
    output = tmp_path / "pictures"
    assert analyze_main(["--checkpoint", str(checkpoint), "--output", str(output)]) == 0
    assert f"mask {mask}: wrote" in capsys.readouterr().out
    summary = (output / "summary.md").read_text()
    assert "| agent 0 |" in summary or mask == "none"
    for png in output.glob("*.png"):
        assert_png(png)
    assert len(list(output.glob("*.png"))) == {"k24": 7, "kalei": 2, "none": 0}[mask]


def test_analyze_script_takes_the_readmes_relative_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    save_module("k24", tmp_path / "results" / "run" / "checkpoint" / MODULE_LAYOUT)
    monkeypatch.chdir(tmp_path)
    assert analyze_main(["--checkpoint", "results/run/checkpoint"]) == 0
    assert (tmp_path / "results" / "run" / "analysis" / "summary.md").is_file()


@pytest.mark.parametrize("case", ["missing", "empty dir", "file"])
def test_analyze_script_rejects_non_checkpoints_in_one_line(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    path = tmp_path / "nothing"
    if case == "empty dir":
        path.mkdir()
    elif case == "file":
        path.write_text("not a checkpoint")
    assert analyze_main(["--checkpoint", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err


def test_analyze_script_refuses_nan_weights_naming_the_tensor(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import torch
    from ray.rllib.core.rl_module.rl_module import RLModule

    save_module("k24", tmp_path / "module")
    module = RLModule.from_checkpoint(str(tmp_path / "module"))
    with torch.no_grad():
        module.agent.fc1.alpha[0, 0, 0] = float("inf")
    module.save_to_path(tmp_path / "bad")
    assert analyze_main(["--checkpoint", str(tmp_path / "bad")]) == 2
    assert "tensor agent.fc1.alpha holds NaN/inf" in capsys.readouterr().err
