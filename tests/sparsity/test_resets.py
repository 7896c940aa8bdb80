import math

import pytest
import torch

from k24_rllib.sparsity import (
    K24Linear,
    KaleiLinear,
    KLResetTrigger,
    ResetSchedule,
    pairwise_symmetric_kl,
    reset_collapsed_groups,
    reset_dead_weights,
)


def adam_after_one_step(params: list[torch.Tensor], loss: torch.Tensor) -> torch.optim.Adam:
    optimizer = torch.optim.Adam(params, lr=1e-2)
    loss.backward()
    optimizer.step()
    return optimizer


def make_half_collapsed(layer: K24Linear) -> None:
    """Rows 0..31: all masks share alpha (collapsed); rows 32..63: masks differ strongly (mostly not collapsed)."""
    with torch.no_grad():
        layer.alpha[:, :32] = layer.alpha[0, :32].clone()
        layer.alpha[:, 32:] = 5.0 * torch.randn(3, 32, 64)


def test_periodic_reset_touches_only_chosen_collapsed_groups():
    torch.manual_seed(0)
    layer = K24Linear(64, 64, n_masks=3, hetero_init_scale=0.01)
    optimizer = adam_after_one_step([layer.weight, layer.alpha], layer(torch.randn(5, 64), torch.arange(5) % 3).sum())
    make_half_collapsed(layer)
    choice = layer.pattern_logits().argmax(-1)
    collapsed = (choice == choice[0]).all(0)  # [out, groups]
    assert collapsed[:32].all() and not collapsed[32:].all()
    before = {k: v.clone() for k, v in layer.state_dict().items()}
    moments = {k: optimizer.state[layer.alpha][k].clone() for k in ("exp_avg", "exp_avg_sq")}

    count = reset_collapsed_groups(layer, 0.25, optimizer, torch.Generator().manual_seed(1))

    changed = (layer.alpha != before["alpha"]).reshape(3, 64, 16, 4).any(-1)  # [masks, out, groups]
    assert torch.equal(changed[0], changed[1]) and torch.equal(changed[0], changed[2])  # all masks together
    chosen = changed[0]
    assert int(chosen.sum()) == count
    assert not (chosen & ~collapsed).any()  # only collapsed groups
    assert count == pytest.approx(0.25 * int(collapsed.sum()), rel=0.25)
    # re-drawn with the init scale
    assert layer.alpha.detach().reshape(3, 64, 16, 4)[:, chosen].std().item() == pytest.approx(0.01, rel=0.2)
    # everything else bit-identical
    keep = ~chosen.repeat_interleave(4, dim=1).expand(3, 64, 64)
    assert torch.equal(layer.alpha[keep], before["alpha"][keep])
    for name in ("weight", "bias", "ema", "temperature"):
        assert torch.equal(layer.state_dict()[name], before[name])
    for key, old in moments.items():
        new = optimizer.state[layer.alpha][key]
        assert (new[~keep] == 0).all() and torch.equal(new[keep], old[keep])


def test_reset_without_optimizer_and_nothing_collapsed():
    torch.manual_seed(0)
    layer = K24Linear(8, 4, n_masks=2)
    with torch.no_grad():
        layer.alpha[0].fill_(10.0)
        layer.alpha[1].fill_(-10.0)
        layer.weight.copy_(torch.arange(32.0).reshape(4, 8) + 1)
        layer.alpha[0, :, ::2] = -10.0  # mask 0 prefers odd columns, mask 1 (uniform alpha) the larger ones
    choice = layer.pattern_logits().argmax(-1)
    assert not (choice[0] == choice[1]).any()
    before = layer.alpha.clone()
    assert reset_collapsed_groups(layer, 1.0, None) == 0
    assert torch.equal(layer.alpha, before)


def test_symmetric_kl_and_trigger():
    torch.manual_seed(0)
    same = K24Linear(8, 4, n_masks=3)
    with torch.no_grad():
        same.alpha[:] = same.alpha[0].clone()
    different = K24Linear(8, 4, n_masks=3, hetero_init_scale=3.0)
    low, high = pairwise_symmetric_kl([same]), pairwise_symmetric_kl([different])
    assert low == pytest.approx(0.0, abs=1e-6) and high > 0.1
    assert math.isinf(pairwise_symmetric_kl([K24Linear(8, 4, n_masks=1)]))

    trigger = KLResetTrigger(threshold=0.1, min_interval=100)
    assert not trigger.should_reset(high, t_env=0)
    assert trigger.should_reset(low, t_env=10)
    assert not trigger.should_reset(low, t_env=50)  # rate-limited
    assert trigger.should_reset(low, t_env=110)
    restored = KLResetTrigger(0.1, 100)
    restored.load_state_dict(trigger.state_dict())
    assert not restored.should_reset(low, t_env=150)


def test_reset_schedule():
    schedule = ResetSchedule(interval=100, t_max=1000)
    fired = [t for t in range(0, 1001, 10) if schedule.due(t)]
    assert fired == [100, 200, 300, 400, 500, 600, 700, 800]  # never within the last interval
    restored = ResetSchedule(100, 1000)
    restored.load_state_dict({"last_reset": 250})
    assert not restored.due(300) and restored.due(350)


def test_kalei_reset_only_touches_positions_every_mask_prunes():
    torch.manual_seed(0)
    layer = KaleiLinear(16, 8, n_masks=2)
    with torch.no_grad():
        layer.thresholds[:, :4] = 10.0  # rows 0-3: pruned by both masks (dead)
        layer.thresholds[0, 4:] = 10.0  # rows 4-7: pruned by mask 0 only
    dead = (layer.hard_masks() == 0).all(0)
    assert dead[:4].all() and not dead[4:].any()
    optimizer = adam_after_one_step(
        [layer.weight, layer.thresholds], layer(torch.randn(3, 16), torch.tensor([0, 1, 1])).pow(2).sum()
    )
    before_w, before_s = layer.weight.clone(), layer.thresholds.clone()
    count = reset_dead_weights(layer, 0.5, optimizer, torch.Generator().manual_seed(3))
    chosen = layer.weight != before_w
    assert int(chosen.sum()) == count and count == pytest.approx(32, abs=12)
    assert not (chosen & ~dead).any()
    assert torch.equal((layer.thresholds != before_s), chosen.expand(2, 8, 16))
    assert (layer.thresholds[:, chosen] <= -5.0).all()  # re-drawn with the init rule
    for param, where in ((layer.weight, chosen), (layer.thresholds, chosen.expand(2, 8, 16))):
        state = optimizer.state[param]
        assert (state["exp_avg"][where] == 0).all() and (state["exp_avg_sq"][~where] != 0).any()
