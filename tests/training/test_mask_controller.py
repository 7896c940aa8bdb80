"""The mask controller, epsilon schedule and metric read-out the learner forwards to (no RLlib involved)."""

import math

import pytest
import torch

from k24_rllib.models import RecurrentAgent
from k24_rllib.sparsity import K24Args, KaleiArgs
from k24_rllib.training import MaskController, epsilon_at, mask_metrics

T_MAX = 10_000


def controller(mask: str, **k24) -> MaskController:
    args = K24Args(reset_interval=1000, **k24)
    agent = RecurrentAgent(10, 5, n_masks=3, hidden_dim=16, mask=mask, k24_args=args)
    return MaskController(agent, T_MAX, args, KaleiArgs(reset_interval=1000), seed=0)


def test_the_temperature_follows_the_schedule_into_every_masked_layer():
    c = controller("k24", temperature_init=5.0, temperature_min=0.1, anneal_end=0.5)
    stats = c.on_step(2500, optimizer=None)  # halfway through annealing
    assert stats["temperature"] == pytest.approx(2.55) and stats["progress"] == pytest.approx(0.25)
    assert all(float(layer.temperature) == pytest.approx(2.55) for layer in c.agent.masked_layers())
    assert c.on_step(9000, None)["temperature"] == pytest.approx(0.1)


def test_fade_pruned_follows_the_temperature_into_every_masked_layer():
    c = controller("k24", temperature_init=5.0, temperature_min=0.1, anneal_end=0.5, fade_pruned=True)
    assert c.on_step(2500, None)["pruned_scale"] == pytest.approx(0.5)
    assert all(float(layer.pruned_scale) == pytest.approx(0.5) for layer in c.agent.masked_layers())
    assert c.on_step(5000, None)["pruned_scale"] == 0.0  # annealing over: exact 2:4 from here on
    assert all(float(layer.pruned_scale) == 0.0 for layer in c.agent.masked_layers())
    default = controller("k24", temperature_init=5.0, temperature_min=0.1, anneal_end=0.5)
    assert "pruned_scale" not in default.on_step(2500, None)
    assert all(float(layer.pruned_scale) == 0.0 for layer in default.agent.masked_layers())


@pytest.mark.parametrize("mask", ["k24", "kalei"])
def test_resets_run_on_their_interval_and_are_counted(mask):
    c = controller(mask)
    counts = [c.on_step(t, None)["num_resets"] for t in (0, 500, 1000, 1500, 2000)]
    assert counts == sorted(counts) and counts[-1] - counts[0] == 2  # at 1000 and 2000 after the first
    assert c.on_step(T_MAX - 10, None)["num_resets"] == counts[-1]  # never within the last interval


def test_a_network_without_masks_has_no_schedule_and_no_diversity():
    c = controller("none")
    assert c.on_step(5000, None) == {"progress": 0.5}
    div_loss, coef = c.diversity_term(torch.tensor(2.0))
    assert float(div_loss) == 0.0 and coef == 0.0


def test_the_adaptive_coefficient_keeps_nan_out_and_its_state_continues():
    c = controller("k24")
    _, first = c.diversity_term(torch.tensor(3.0))
    assert first == pytest.approx(abs(0.1 * 3.0 / float(c.agent.diversity_loss())))
    _, after_nan = c.diversity_term(torch.tensor(math.nan))
    assert after_nan == first and len(c.coefficient.td_history) == 1
    c.on_step(1000, None)
    restored = controller("k24")
    restored.load_state_dict(c.state_dict())
    assert restored.num_resets == c.num_resets and restored.resets.last_reset == c.resets.last_reset
    assert list(restored.coefficient.td_history) == [3.0]
    assert torch.equal(restored.generator.get_state(), c.generator.get_state())


def test_epsilon_is_piecewise_linear_and_held_at_the_ends():
    schedule = [[0, 1.0], [1000, 0.1], [2000, 0.05]]
    assert [epsilon_at(schedule, t) for t in (0, 500, 1000, 1500, 5000)] == pytest.approx([1.0, 0.55, 0.1, 0.075, 0.05])
    assert epsilon_at(0.2, 123) == 0.2


def test_mask_metrics_are_the_specs_flat_scalars():
    k24 = mask_metrics(RecurrentAgent(10, 5, n_masks=3, hidden_dim=16, mask="k24"))
    assert {f"pattern_{i}_prob" for i in range(6)} <= k24.keys() and "pattern_mean" not in k24
    assert {"pattern_max_similarity", "pattern_entropy", "sparsity_layer_3"} <= k24.keys()
    assert k24["overall_sparsity"] == pytest.approx(0.5)
    plain = mask_metrics(RecurrentAgent(10, 5, n_masks=3, hidden_dim=16, mask="none"))
    assert plain == {**{f"sparsity_layer_{i}": 0.0 for i in range(4)}, "overall_sparsity": 0.0}


def test_mask_change_counts_the_argmax_mask_entries_that_moved_since_the_last_batch():
    c = controller("k24")
    fc2 = c.agent.fc2
    with torch.no_grad():  # equal shared weights in row 0's first group: only alpha decides its patterns there
        fc2.weight[0, :4] = 1.0
    assert c.mask_change() == {}  # nothing to compare with yet
    still = c.mask_change()
    assert set(still) == {"mask_change", *(f"mask_change_layer_{i}" for i in range(4))}
    assert all(v == 0.0 for v in still.values())  # nothing trained in between
    before = fc2.hard_masks()
    with torch.no_grad():  # the alpha that picks another pattern for mask 0 in that group
        wanted = fc2.patterns[int(fc2.pattern_logits()[0, 0, 0].argmin())]
        fc2.alpha[0, 0, :4] = torch.where(wanted.bool(), 50.0, -50.0)
    moved = int((fc2.hard_masks() != before).sum())
    assert moved in (2, 4)  # one group's pattern: two or four entries change
    change = c.mask_change()
    assert change["mask_change_layer_1"] == pytest.approx(moved / before.numel())
    assert change["mask_change_layer_0"] == change["mask_change_layer_2"] == change["mask_change_layer_3"] == 0.0
    sizes = [layer.hard_masks().numel() for layer in c.agent.masked_layers()]
    assert change["mask_change"] == pytest.approx(moved / sum(sizes))


def test_mask_change_names_the_layer_and_is_empty_without_masks():
    args = K24Args()
    agent = RecurrentAgent(10, 5, n_masks=3, hidden_dim=16, mask="k24", k24_args=args, masked_layers=["fc2", "fc3"])
    c = MaskController(agent, T_MAX, args, KaleiArgs(), seed=0)
    c.mask_change()
    assert set(c.mask_change()) == {"mask_change", "mask_change_layer_1", "mask_change_layer_2"}
    plain = controller("none")
    assert plain.mask_change() == {} and plain.mask_change() == {}


@pytest.mark.parametrize("mask, decay, changes", [("k24", 0.01, True), ("k24", 0.0, False), ("kalei", 0.01, False)])
def test_after_update_applies_pruned_decay_to_k24_layers_only(mask, decay, changes):
    c = controller(mask, pruned_decay=decay)
    before = [layer.weight.detach().clone() for layer in c.agent.masked_layers()]
    c.after_update()
    moved = [not torch.equal(b, layer.weight) for b, layer in zip(before, c.agent.masked_layers())]
    assert all(moved) if changes else not any(moved)
