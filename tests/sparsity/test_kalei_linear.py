import torch

from k24_rllib.sparsity import KaleiArgs, KaleiLinear


def test_starts_almost_dense_with_paper_defaults():
    torch.manual_seed(0)
    args = KaleiArgs()
    layer = KaleiLinear(64, 64, 4, args.threshold_init_scale, args.threshold_init_bias)
    assert torch.sigmoid(layer.thresholds).max() < torch.sigmoid(torch.tensor(-5.0)) + 1e-6
    assert layer.hard_masks().mean() > 0.95


def test_forward_is_soft_threshold_per_mask():
    torch.manual_seed(1)
    layer = KaleiLinear(6, 3, n_masks=2, threshold_init_scale=2.0, threshold_init_bias=1.0)
    x = torch.randn(4, 6)
    ids = torch.tensor([1, 0, 1, 1])
    w = torch.sign(layer.weight) * torch.relu(layer.weight.abs() - torch.sigmoid(layer.thresholds))
    expected = torch.einsum("bi,boi->bo", x, w[ids]) + layer.bias
    torch.testing.assert_close(layer(x, ids), expected)
    torch.testing.assert_close(layer.eval()(x, ids), expected)
    assert torch.equal(layer.hard_masks(), (w != 0).float())


def test_mask_ids_matter_and_gradients_reach_weight_and_thresholds():
    torch.manual_seed(2)
    layer = KaleiLinear(6, 3, n_masks=2, threshold_init_scale=4.0, threshold_init_bias=-2.0)
    x = torch.randn(1, 6).expand(2, 6)
    out = layer(x, torch.tensor([0, 1]))
    assert not torch.allclose(out[0], out[1])
    out.sum().backward()
    assert layer.weight.grad.abs().sum() > 0 and layer.thresholds.grad.abs().sum() > 0


def test_ste_masks_are_binary_with_threshold_gradient():
    layer = KaleiLinear(5, 4, n_masks=2, threshold_init_scale=4.0, threshold_init_bias=-2.0)
    masks = layer.ste_masks()
    assert torch.equal(masks.detach(), layer.hard_masks())
    masks.sum().backward()
    assert layer.thresholds.grad.abs().sum() > 0 and layer.weight.grad is None


def test_a_sequence_computes_the_deterministic_masks_once(monkeypatch):
    layer = KaleiLinear(6, 4, n_masks=2)
    calls = []
    original = KaleiLinear.masked_weights
    monkeypatch.setattr(KaleiLinear, "masked_weights", lambda self: calls.append(1) or original(self))
    x = torch.randn(2, 5, 7, 6)  # [slots, rows, timesteps, in]
    out = layer.forward_slots(x, per_step=True)
    assert len(calls) == 1  # deterministic: one weight per mask broadcasts over every timestep
    expected = torch.einsum("srti,soi->srto", x, original(layer)) + layer.bias
    torch.testing.assert_close(out, expected)
    out.sum().backward()
    assert layer.thresholds.grad is not None
