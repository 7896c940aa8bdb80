import copy

import pytest
import torch
import torch.nn.functional as F

from k24_rllib.sparsity import K24Linear, KaleiLinear, is_nm_sparse
from k24_rllib.sparsity.masked_base import apply_masks
from k24_rllib.sparsity import k24_linear
from k24_rllib.sparsity.pattern_ops import ema_update


def forward_weights(layer: K24Linear, mask: int) -> torch.Tensor:
    """The effective weight one forward uses for ``mask``, read off by feeding the identity."""
    eye = torch.eye(layer.in_features)
    ids = torch.full((layer.in_features,), mask)
    return (layer(eye, ids) - layer.bias).T.detach()


def exactly_nm(weight: torch.Tensor, n: int, m: int) -> bool:
    """Full groups keep exactly n (the dense weight has no zeros of its own); a group that is partly padding
    keeps at most n real columns (the rest of its n sit on padding)."""
    padded = F.pad(weight, (0, -weight.shape[1] % m))
    counts = (padded.reshape(weight.shape[0], -1, m) != 0).sum(-1)
    full = counts[:, :-1] if weight.shape[1] % m else counts
    return bool((full == n).all()) and bool((counts[:, -1] <= n).all())


@pytest.mark.parametrize("n, m, in_features", [(2, 4, 12), (2, 4, 10), (4, 8, 16)])
def test_every_training_forward_mask_is_exactly_nm(n, m, in_features):
    torch.manual_seed(0)
    layer = K24Linear(in_features, 6, n_masks=3, n=n, m=m)
    layer.set_temperature(5.0)
    for _ in range(5):
        for mask in range(3):
            assert exactly_nm(forward_weights(layer, mask), n, m)


@pytest.mark.parametrize("n, m, in_features", [(2, 4, 12), (2, 4, 10), (4, 8, 16)])
def test_hard_masks_exactly_nm_and_half_sparse(n, m, in_features):
    layer = K24Linear(in_features, 6, n_masks=3, n=n, m=m, hetero_init_scale=1.0)
    masks = layer.hard_masks()
    assert masks.shape == (3, 6, layer.padded_in)
    assert (masks.reshape(3, 6, -1, m).sum(-1) == n).all()
    assert masks.mean() == n / m
    for w in layer.masked_weights():
        assert is_nm_sparse(w, n, m)


def test_padding_layout():
    layer = K24Linear(10, 3, n_masks=2)
    assert (layer.padded_in, layer.n_groups) == (12, 3)
    assert layer.alpha.shape == (2, 3, 12) and layer.ema.shape == (12,)
    assert layer.masked_weights().shape == (2, 3, 10)


def test_eval_is_deterministic_argmax_of_pattern_probs():
    torch.manual_seed(1)
    layer = K24Linear(8, 5, n_masks=2, hetero_init_scale=1.0).eval()
    choice = layer.pattern_probs().argmax(-1)
    expected = (F.one_hot(choice, 6).float() @ layer.patterns).reshape(2, 5, 8) * layer.weight
    x = torch.randn(7, 8)
    ids = torch.tensor([0, 1, 0, 1, 1, 0, 0])
    out1, out2 = layer(x, ids), layer(x, ids)
    assert torch.equal(out1, out2)
    torch.testing.assert_close(out1, torch.einsum("bi,boi->bo", x, expected[ids]) + layer.bias)
    for mask in range(2):
        torch.testing.assert_close(forward_weights(layer, mask), expected[mask])


def test_train_mode_is_stochastic():
    torch.manual_seed(2)
    layer = K24Linear(16, 8, n_masks=1)
    layer.set_temperature(5.0)
    assert not torch.equal(forward_weights(layer, 0), forward_weights(layer, 0))


def test_per_step_sampling_derives_logits_once_and_draws_every_step(monkeypatch):
    torch.manual_seed(2)
    layer = K24Linear(16, 8, n_masks=2)
    layer.set_temperature(5.0)
    calls = []
    original = k24_linear.sample_patterns
    monkeypatch.setattr(k24_linear, "sample_patterns", lambda *a: calls.append(1) or original(*a))
    weights = layer.sample_weights(draws=6)
    assert len(calls) == 1  # the logits were derived once for all draws
    assert weights.shape == (6, 2, 8, 16)
    assert not torch.equal(weights[0], weights[1])  # every step draws its own mask
    assert all(exactly_nm(w, 2, 4) for w in weights.reshape(-1, 8, 16))


def test_training_masks_settle_on_the_acting_masks_as_the_temperature_falls():
    """The temperature must reach the drawn masks: at a small tau a training draw is the argmax mask that acting
    and export use, at a large one most groups differ from it (noise on unscaled logits would keep them apart)."""
    torch.manual_seed(5)
    layer = K24Linear(16, 8, n_masks=3, hetero_init_scale=3.0)
    with torch.no_grad():
        layer.set_temperature(1e-3)
        assert torch.equal(layer.sample_weights(4), layer.masked_weights().expand(4, -1, -1, -1))
        layer.set_temperature(5.0)
        drawn_masks = layer.sample_weights(64) != 0
        acting_masks = layer.masked_weights() != 0
        groups_alike = (drawn_masks == acting_masks).reshape(64, 3, 8, 4, 4).all(-1).float().mean()
    assert groups_alike < 0.4  # near uniform over the 6 patterns: about 1 group in 4 or 5


def test_sequence_ema_equals_one_ema_step_per_timestep():
    torch.manual_seed(6)
    layer = K24Linear(6, 4, n_masks=2, ema_momentum=0.9)
    stepwise = copy.deepcopy(layer)
    x = torch.randn(2, 3, 5, 6)  # [slots, rows, timesteps, in]
    layer.forward_slots(x)
    for t in range(5):
        stepwise.forward_slots(x[:, :, t : t + 1])
    torch.testing.assert_close(layer.ema, stepwise.ema)


def test_timesteps_without_a_valid_row_take_no_ema_step():
    """A timestep where every row is padding is skipped: the EMA is what steps over the other timesteps give."""
    torch.manual_seed(6)
    layer = K24Linear(6, 4, n_masks=2, ema_momentum=0.9)
    stepwise = copy.deepcopy(layer)
    x = torch.randn(2, 3, 5, 6)
    valid = torch.ones(3, 5, dtype=torch.bool)
    valid[:, 2] = False  # timestep 2 is padding in every row
    valid[1:, 4] = False  # timestep 4 is real in row 0 only
    layer.forward_slots(x, valid=valid)
    for t in (0, 1, 3):
        stepwise.forward_slots(x[:, :, t : t + 1])
    stepwise.forward_slots(x[:, :1, 4:5])
    torch.testing.assert_close(layer.ema, stepwise.ema)


@pytest.mark.parametrize("rows", [3, 87])
def test_the_ema_decay_stays_float32_when_activations_are_bf16(rows):
    """Under bf16 autocast (the GPU learner's mixed precision) a layer's input can be bf16; the EMA's decay
    factors stay float32 (0.99 in bf16 is 0.98828, 10% off after 61 steps), and so do the sums and row counts
    (bf16 holds integers exactly only up to 256; 3 slots x 87 rows is 261): a constant input c gives exactly
    m**T + (1 - m**T) * c."""
    layer = K24Linear(8, 4, n_masks=3, ema_momentum=0.99)
    x = torch.full((3, rows, 61, 8), 0.75, dtype=torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        layer.forward_slots(x, valid=torch.ones(rows, 61, dtype=torch.bool))
    torch.testing.assert_close(layer.ema, torch.full((8,), 0.99**61 + (1 - 0.99**61) * 0.75))


@pytest.mark.parametrize("layout", ["packed", "padded", "plain"])
def test_ema_update_is_float32_and_exact_for_bf16_inputs(layout):
    """Every layout (packed rows with ``step_sizes``, padded with ``valid``, neither) adds a float32 increment for a
    bf16 input: 87 rows of 0.75 sum to 65.25, which bf16 cannot hold. A constant input c over T counted steps
    gives decay m**T and increment (1 - m**T) * c."""
    rows, steps, m = 87, 4, 0.9
    if layout == "packed":
        x = torch.full((3, rows * steps, 1, 8), 0.75, dtype=torch.bfloat16)
        decay, increment = ema_update(x, m, step_sizes=torch.full((steps,), rows))
    else:
        x = torch.full((3, rows, steps, 8), 0.75, dtype=torch.bfloat16)
        valid = torch.ones(rows, steps, dtype=torch.bool) if layout == "padded" else None
        with torch.autocast("cpu", dtype=torch.bfloat16):
            decay, increment = ema_update(x, m, valid)
    assert increment.dtype == torch.float32
    torch.testing.assert_close(torch.as_tensor(decay, dtype=torch.float32), torch.tensor(m**steps))
    torch.testing.assert_close(increment, torch.full((8,), (1 - m**steps) * 0.75))


def test_ema_momentum_one_keeps_the_score_free_of_activations():
    """At momentum 1 the EMA stays at its initial 1: the masks follow |W| * sigmoid(alpha) alone."""
    torch.manual_seed(7)
    layer = K24Linear(6, 4, n_masks=2, ema_momentum=1.0)
    reference = copy.deepcopy(layer)
    layer(torch.randn(5, 6) * 10, torch.zeros(5, dtype=torch.long))
    assert torch.equal(layer.ema, torch.ones(8))
    torch.testing.assert_close(layer.pattern_logits(), reference.pattern_logits())


def test_ema_updates_in_training_only_and_is_saved():
    torch.manual_seed(3)
    layer = K24Linear(6, 4, n_masks=2, ema_momentum=0.9)
    x = torch.randn(5, 6)
    assert "ema" in layer.state_dict() and "temperature" in layer.state_dict()
    layer.eval()
    layer(x, torch.zeros(5, dtype=torch.long))
    assert torch.equal(layer.ema, torch.ones(8))
    layer.train()
    layer(x, torch.zeros(5, dtype=torch.long))
    expected = 0.9 + 0.1 * F.pad(x.abs().mean(0), (0, 2))
    torch.testing.assert_close(layer.ema, expected)
    assert layer.ema[-2:].lt(1).all()  # padded columns see zero input


def test_different_mask_ids_differ_and_gradients_reach_shared_weight_and_alpha():
    torch.manual_seed(4)
    layer = K24Linear(8, 6, n_masks=2, hetero_init_scale=2.0)
    x = torch.randn(1, 8).expand(2, 8)
    out = layer(x, torch.tensor([0, 1]))
    assert not torch.allclose(out[0], out[1])
    out.pow(2).sum().backward()
    assert layer.weight.grad.abs().sum() > 0 and layer.alpha.grad.abs().sum() > 0
    assert layer.alpha.grad[0].abs().sum() > 0 and layer.alpha.grad[1].abs().sum() > 0


def test_unrolled_training_forwards_backprop():
    """An RNN calls the layer many times in one graph; the in-place EMA update must not break backward."""
    layer = K24Linear(4, 4, n_masks=2)
    h = torch.zeros(3, 4)
    ids = torch.tensor([0, 1, 0])
    for _ in range(3):
        h = torch.tanh(layer(h + 1.0, ids))
    h.sum().backward()
    assert layer.alpha.grad is not None


def test_eval_cache_reused_and_invalidated(monkeypatch):
    torch.manual_seed(5)
    layer = K24Linear(8, 4, n_masks=2).eval()
    calls = []
    original = layer.masked_weights
    monkeypatch.setattr(layer, "masked_weights", lambda: calls.append(1) or original())
    x, ids = torch.randn(3, 8), torch.tensor([0, 1, 1])
    with torch.no_grad():
        first = layer(x, ids)
        layer(x, ids)
        assert len(calls) == 1
        layer.weight.mul_(2.0)  # what an optimiser step does
        assert torch.allclose(layer(x, ids) - layer.bias, 2 * (first - layer.bias))
        assert len(calls) == 2
        other = K24Linear(8, 4, n_masks=2, hetero_init_scale=3.0)
        layer.load_state_dict(other.state_dict())
        expected = other.eval()(x, ids)
        torch.testing.assert_close(layer(x, ids), expected)
        assert len(calls) == 3


def test_eval_with_autograd_gives_gradient():
    layer = K24Linear(8, 4, n_masks=1).eval()
    layer(torch.randn(2, 8), torch.zeros(2, dtype=torch.long)).sum().backward()
    assert layer.weight.grad.abs().sum() > 0


def test_deepcopy_target_network_stays_in_sync_via_state_dict():
    online = K24Linear(8, 4, n_masks=2)
    target = copy.deepcopy(online).eval()
    online(torch.randn(5, 8), torch.zeros(5, dtype=torch.long))  # online training forward moves the EMA
    target.load_state_dict(online.state_dict())
    assert torch.equal(target.ema, online.ema)


def test_set_temperature_validates():
    layer = K24Linear(4, 4, n_masks=1)
    layer.set_temperature(0.5)
    assert float(layer.temperature) == 0.5
    with pytest.raises(ValueError):
        layer.set_temperature(0.0)


@pytest.mark.parametrize("layer_cls", [K24Linear, KaleiLinear])
def test_acting_fast_path_computes_the_reference_and_follows_every_update(layer_cls):
    """Acting (eval, no autograd, slot s = mask s) uses cached weights and a cached bias view; it must equal
    ``apply_masks`` on freshly built weights, also after an in-place bias step and a ``load_state_dict``."""
    torch.manual_seed(7)
    layer = layer_cls(8, 5, n_masks=3).eval()
    x = torch.randn(3, 4, 1, 8)

    def reference() -> torch.Tensor:
        return apply_masks(x, layer.masked_weights().detach().unsqueeze(0), layer.bias.detach(), None)

    with torch.no_grad():
        torch.testing.assert_close(layer.forward_slots(x), reference())
        layer.bias.add_(1.0)  # what an optimiser step does to the bias
        torch.testing.assert_close(layer.forward_slots(x), reference())
        layer.load_state_dict(layer_cls(8, 5, n_masks=3).state_dict())
        torch.testing.assert_close(layer.forward_slots(x), reference())


def test_a_group_whose_scores_are_all_equal_keeps_gradients_finite():
    """Zero weights (or an input whose EMA underflowed to 0) give a group six equal pattern logits; standardising
    them must not put sqrt's infinite slope at 0 into the gradient."""
    torch.manual_seed(7)
    layer = K24Linear(8, 4, n_masks=2)
    with torch.no_grad():
        layer.weight[:, :4] = 0.0
    layer.train()
    layer.forward_slots(torch.randn(2, 3, 1, 8)).sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in (layer.weight, layer.alpha))


@pytest.mark.parametrize("train", [True, False])
def test_pruned_scale_keeps_that_share_of_every_pruned_weight(train):
    """``fade_pruned``: at scale s a forward multiplies each weight by 1 where its mask keeps it and by s where
    it prunes it (training draws and acting alike): 1 is the dense layer, 0 the exact 2:4 layer."""
    torch.manual_seed(3)
    layer = K24Linear(12, 6, n_masks=3, hetero_init_scale=3.0, fade_pruned=True).train(train)
    layer.set_temperature(0.01)  # training draws = the argmax masks, so both modes read the same masks
    masks = layer.hard_masks()[..., :12]
    for scale in (0.0, 0.5, 1.0):
        layer.set_pruned_scale(scale)
        for mask in range(3):
            expected = layer.weight * (masks[mask] + scale * (1 - masks[mask]))
            torch.testing.assert_close(forward_weights(layer, mask), expected.detach())
    layer.set_pruned_scale(0.0)
    assert all(exactly_nm(forward_weights(layer, mask), 2, 4) for mask in range(3))


def test_pruned_scale_reaches_the_acting_cache_and_the_gradient():
    torch.manual_seed(4)
    layer = K24Linear(8, 4, n_masks=2, fade_pruned=True)
    x, ids = torch.randn(5, 8), torch.tensor([0, 1, 0, 1, 1])
    layer.eval()
    with torch.no_grad():
        sparse = layer(x, ids)
        layer.set_pruned_scale(1.0)  # dense: every mask sees the whole shared weight
        torch.testing.assert_close(layer(x, ids), F.linear(x, layer.weight, layer.bias))
        assert not torch.allclose(layer(x, ids), sparse)
    layer.train().set_temperature(1.0)
    layer.set_pruned_scale(0.5)
    layer(x, ids).square().sum().backward()
    assert layer.alpha.grad.abs().sum() > 0  # the masks still matter, so alpha still learns
    with pytest.raises(ValueError, match="pruned_scale"):
        layer.set_pruned_scale(1.5)
    with pytest.raises(ValueError, match="fade_pruned=True"):  # a layer built exact N:M stays exact N:M
        K24Linear(8, 4, n_masks=2).set_pruned_scale(0.5)


def test_decay_pruned_shrinks_each_weight_by_the_share_of_masks_that_prune_it():
    torch.manual_seed(5)
    layer = K24Linear(10, 6, n_masks=3, hetero_init_scale=3.0)  # 10 inputs: the padding is stripped before the decay
    before = layer.weight.detach().clone()
    pruned_share = 1 - layer.hard_masks()[..., :10].mean(dim=0)
    assert {0.0, 1.0} <= set(pruned_share.unique().tolist())  # kept by all masks and pruned by all both occur
    layer.decay_pruned(0.1)
    torch.testing.assert_close(layer.weight.detach(), before * (1 - 0.1 * pruned_share))
    layer.decay_pruned(0.0)
    torch.testing.assert_close(layer.weight.detach(), before * (1 - 0.1 * pruned_share))


def test_a_checkpoint_from_before_pruned_scale_loads_as_exact_nm():
    layer = K24Linear(8, 4, n_masks=2)
    old = {k: v for k, v in layer.state_dict().items() if k != "pruned_scale"}
    fresh = K24Linear(8, 4, n_masks=2, fade_pruned=True)
    fresh.set_pruned_scale(0.7)
    fresh.load_state_dict(old)  # strict: the missing key is filled in, not an error
    assert float(fresh.pruned_scale) == 0.0
