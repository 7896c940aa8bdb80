import pytest
import torch

from k24_rllib.sparsity import (
    AdaptiveCoefficient,
    DiversityLoss,
    K24Linear,
    KaleiLinear,
    MaskDistanceLoss,
    PatternOverlapLoss,
)


def uniform_layer(n: int = 2, m: int = 4) -> K24Linear:
    """Equal scores in every group -> equal logits -> uniform pattern probabilities."""
    layer = K24Linear(2 * m, 3, n_masks=3, n=n, m=m)
    with torch.no_grad():
        layer.weight.fill_(0.5)
        layer.alpha.zero_()
    return layer


@pytest.mark.parametrize("n, m, patterns", [(2, 4, 6), (4, 8, 70)])
def test_uniform_distributions_give_one_over_p(n, m, patterns):
    loss = PatternOverlapLoss()([uniform_layer(n, m)])
    assert loss.item() == pytest.approx(1 / patterns, abs=1e-6)


def test_overlap_has_gradient_wrt_alpha():
    torch.manual_seed(0)
    layer = K24Linear(8, 4, n_masks=2, hetero_init_scale=1.0)
    PatternOverlapLoss()([layer]).backward()
    assert layer.alpha.grad.abs().max() > 1e-4
    assert layer.weight.grad is None  # diversity shapes the masks, not the shared weight


def test_optimising_overlap_separates_masks_that_started_equal():
    torch.manual_seed(0)
    layer = K24Linear(16, 8, n_masks=2, hetero_init_scale=1.0)
    with torch.no_grad():  # equal masks up to a tiny perturbation (training noise breaks the tie too)
        layer.alpha[1] = layer.alpha[0] + 1e-3 * torch.randn_like(layer.alpha[0])
    layer.set_temperature(0.5)

    def argmax_agreement() -> float:
        choice = layer.pattern_logits().argmax(-1)
        return (choice[0] == choice[1]).float().mean().item()

    loss_fn = PatternOverlapLoss()
    start = loss_fn([layer]).item()
    assert argmax_agreement() == 1.0
    optimizer = torch.optim.Adam([layer.alpha], lr=0.1)
    for _ in range(40):
        optimizer.zero_grad()
        loss_fn([layer]).backward()
        optimizer.step()
    assert loss_fn([layer]).item() < 0.5 * start
    assert argmax_agreement() < 0.75


def test_layer_weights_make_a_weighted_mean():
    torch.manual_seed(1)
    a, b = K24Linear(8, 4, 2, hetero_init_scale=1.0), uniform_layer()
    loss_a, loss_b = PatternOverlapLoss()([a]), PatternOverlapLoss()([b])
    weighted = PatternOverlapLoss(layer_weights=[1.0, 3.0])([a, b])
    torch.testing.assert_close(weighted, (loss_a + 3 * loss_b) / 4)
    with pytest.raises(ValueError, match="layer_weights"):
        PatternOverlapLoss(layer_weights=[1.0])([a, b])


def test_single_mask_has_zero_overlap_loss():
    assert PatternOverlapLoss()([K24Linear(8, 4, n_masks=1)]).item() == 0.0


def test_mask_distance_matches_kaleidoscope_formula():
    torch.manual_seed(2)
    layers = [KaleiLinear(6, 5, n_masks=3, threshold_init_scale=4.0, threshold_init_bias=-2.0) for _ in range(2)]

    def brute(layer: KaleiLinear) -> torch.Tensor:
        kept = layer.hard_masks() * layer.weight.abs()
        total = sum((kept[i] - kept[j]).abs().sum() for i in range(3) for j in range(3) if i != j)
        return -total / (3 * 2 * layer.weight.numel())

    loss = MaskDistanceLoss()(layers)
    torch.testing.assert_close(loss, brute(layers[0]) + 2 * brute(layers[1]))
    assert loss.item() < 0
    loss.backward()
    assert layers[0].thresholds.grad.abs().sum() > 0 and layers[0].weight.grad is None


def test_custom_diversity_loss_plugs_in():
    class MeanAlpha(DiversityLoss):
        def layer_loss(self, layer):
            return layer.alpha.mean()

    layer = K24Linear(8, 4, n_masks=2)
    torch.testing.assert_close(MeanAlpha()([layer, layer]), 2 * layer.alpha.mean())


def test_adaptive_coefficient_rule_and_window():
    coef = AdaptiveCoefficient(div_coef=0.1, deque_len=2)
    assert coef.value == 0.1
    assert coef.update(td_loss=2.0, div_loss=-0.5) == pytest.approx(0.4)
    assert coef.update(td_loss=4.0, div_loss=-0.5) == pytest.approx(0.1 * 3.0 / 0.5)
    assert coef.update(td_loss=4.0, div_loss=-1.0) == pytest.approx(0.1 * 4.0 / 0.75)  # 2.0 fell out
    restored = AdaptiveCoefficient(div_coef=0.1, deque_len=2)
    restored.load_state_dict(coef.state_dict())
    assert restored.value == coef.value
    assert restored.update(1.0, 1.0) == coef.update(1.0, 1.0)


def test_adaptive_coefficient_zero_div_falls_back():
    assert AdaptiveCoefficient(0.1, 5).update(1.0, 0.0) == 0.1


def test_the_overlap_loss_moves_identical_masks_identically():
    """docs/k24.md, "Diversity": for equal masks the overlap's gradient is the same for each, so the loss alone
    never separates them (it flattens both); only a difference in alpha at the start does."""
    torch.manual_seed(0)
    layer = K24Linear(16, 8, n_masks=2, hetero_init_scale=0.0)
    layer.set_temperature(1.0)
    optimizer = torch.optim.Adam([layer.alpha], lr=0.05)
    entropy = lambda: -(layer.pattern_probs() * layer.pattern_probs().log()).sum(-1).mean().item()  # noqa: E731
    before = entropy()
    for _ in range(20):
        optimizer.zero_grad()
        PatternOverlapLoss()([layer]).backward()
        optimizer.step()
    assert torch.equal(layer.alpha[0], layer.alpha[1]) and layer.alpha.abs().sum() > 0  # moved, together
    assert entropy() > before  # towards flatter distributions
