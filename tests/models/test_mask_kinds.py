"""Adding a mask kind is one registry entry: the agent, the CLI, the config check and the controller follow."""

from collections.abc import Iterator

import pytest
import torch

from k24_rllib.cli import build_parser, parse_args
from k24_rllib.models import MASK_KINDS, MaskKind, RecurrentAgent, mask_kind, register_mask_kind
from k24_rllib.sparsity import K24Args, K24Linear, KaleiArgs, PatternOverlapLoss, pattern_stats, reset_collapsed_groups
from k24_rllib.training import MaskController


def four_of_eight(in_features: int, out_features: int, n_masks: int, args: K24Args) -> K24Linear:
    """The guide's 4:8 variant as its own preset: K-2:4's settings, 70 patterns of 4 kept in 8."""
    return K24Linear(in_features, out_features, n_masks, n=4, m=8, ema_momentum=args.ema_momentum,
                     hetero_init_scale=args.hetero_init_scale)


@pytest.fixture
def k48() -> Iterator[MaskKind]:
    kind = register_mask_kind(MaskKind("k48", four_of_eight, K24Args, PatternOverlapLoss, pattern_stats,
                                       reset_collapsed_groups))
    yield kind
    del MASK_KINDS["k48"]


def test_a_registered_kind_builds_trains_and_is_offered_everywhere(k48):
    agent = RecurrentAgent(12, 5, n_masks=3, hidden_dim=16, mask="k48")
    assert agent.kind is k48 and all(layer.patterns.shape == (70, 8) for layer in agent.masked_layers())
    q, _ = agent(torch.randn(2, 3, 12), agent.initial_state(2, 3))
    agent.diversity_loss().backward()  # its diversity loss reaches the masks
    assert q.shape == (2, 3, 5) and agent.fc1.alpha.grad.abs().sum() > 0
    assert agent.get_pattern_stats()["pattern_max_similarity"] > 0
    assert parse_args(build_parser("t", "smac", "3m"), ["--mask", "k48"]).mask == "k48"
    controller = MaskController(agent, 10_000, K24Args(reset_interval=100), KaleiArgs(), seed=0)
    assert controller.active and controller.on_step(100, None)["num_resets"] == 1.0


def test_the_config_accepts_registered_kinds_only(k48):
    pytest.importorskip("ray")
    from k24_rllib import K24QMixConfig

    K24QMixConfig().environment("coordination").training(mask="k48").validate()
    with pytest.raises(ValueError, match="choose one of k24, kalei, none, k48"):
        K24QMixConfig().environment("coordination").training(mask="k99").validate()


def test_an_unknown_kind_names_the_valid_ones():
    with pytest.raises(ValueError, match="unknown mask 'k99'; valid: k24, kalei, none"):
        mask_kind("k99")


def test_settings_must_be_a_config_settings_class():
    with pytest.raises(ValueError, match="settings must be K24Args, KaleiArgs or None"):
        register_mask_kind(MaskKind("bad", four_of_eight, settings=dict))
