"""examples/extend.py: the guide's extension points work on RLlib as the example shows them."""

import importlib.util
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "extend.py"


def test_the_extension_points_reach_the_training(ray_local, capsys):
    spec = importlib.util.spec_from_file_location("extend_example", EXAMPLE)
    extend = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(extend)
    learner = extend.main(["--iterations", "3"])
    printed = capsys.readouterr().out
    assert "diversity loss KLToUniformLoss" in printed and "patterns per group 70" in printed  # loss and 4:8 masks
    assert learner["alpha_spread"] > 0  # the subclassed learner's own metric
    assert learner["temperature"] == pytest.approx(extend.exponential_temperature(
        min(learner["progress"] / 0.25, 1.0)))  # the custom schedule over the default window (anneal_end 0.25)
    assert learner["div_loss"] >= 0.0  # a KL is never negative


def test_a_diversity_loss_can_be_named_by_import_path():
    from k24_rllib.models import ModelSettings
    from k24_rllib.sparsity import MaskDistanceLoss

    settings = ModelSettings(diversity_loss="k24_rllib.sparsity.diversity:MaskDistanceLoss")
    assert settings.diversity_loss_class() is MaskDistanceLoss
    with pytest.raises(ValueError, match="diversity_loss='nowhere:Nothing' is invalid: cannot import it"):
        ModelSettings(diversity_loss="nowhere:Nothing")
    with pytest.raises(ValueError, match="must be a DiversityLoss subclass"):
        ModelSettings(diversity_loss=dict)
