"""The fused pattern maths computes what the plain autograd expressions it replaces compute."""

import copy

import pytest
import torch

from k24_rllib.sparsity import K24Linear
from k24_rllib.sparsity.diversity import PatternOverlapLoss, mean_pairwise_overlap, pairwise_overlap
from k24_rllib.sparsity.pattern_ops import gumbel_one_hot, sample_patterns, standardise_first
from k24_rllib.sparsity.patterns import nm_patterns


def plain_standardise(logits: torch.Tensor, scale: float) -> torch.Tensor:
    centred = logits - logits.mean(dim=0)
    return scale * centred * torch.rsqrt(centred.square().mean(dim=0) + 1e-12)


@pytest.mark.parametrize("scale", [1.0, 0.2, 7.0])
def test_standardise_first_matches_autograd_of_the_plain_expression(scale):
    torch.manual_seed(0)
    logits = torch.randn(6, 5, 7, dtype=torch.float64)
    logits[:, 0, 0] = 0.3  # six equal logits: a finite gradient, as the epsilon promises
    fused = logits.clone().requires_grad_(True)
    plain = logits.clone().requires_grad_(True)
    grad = torch.randn(6, 5, 7, dtype=torch.float64)
    out = standardise_first(fused, scale)
    (out * grad).sum().backward()
    (plain_standardise(plain, scale) * grad).sum().backward()
    torch.testing.assert_close(out, plain_standardise(logits, scale))
    torch.testing.assert_close(fused.grad, plain.grad)
    assert torch.isfinite(fused.grad).all()


@pytest.mark.parametrize("tau", [0.3, 1.0, 3.0])
def test_gumbel_one_hot_samples_the_tempered_softmax(tau: float):
    torch.manual_seed(3)
    logits = torch.randn(4, 6)
    draws = 4000
    sample, _ = gumbel_one_hot(logits.T / tau, draws)  # [P, draws, 4]
    assert sample.shape == (6, draws, 4) and torch.equal(sample.sum(0), torch.ones(draws, 4))
    torch.testing.assert_close(sample.mean(dim=1).T, torch.softmax(logits / tau, -1), atol=0.03, rtol=0)


def plain_sample(shared, own, patterns, scale, draws):
    """The straight-through draw written as plain autograd ops, drawing the same noise as ``sample_patterns``."""
    groups = (own * shared).reshape(-1, patterns.shape[1])
    tempered = plain_standardise(patterns @ groups.T, scale)
    noise = torch.rand((len(patterns), draws, tempered.shape[1]), dtype=tempered.dtype)
    z = tempered.unsqueeze(1) - noise.clamp(min=torch.finfo(tempered.dtype).tiny).log().neg().log()
    soft = torch.softmax(z, dim=0)
    choice = (z == z.amax(dim=0)).to(z.dtype) - soft.detach() + soft
    masks = (choice.reshape(len(patterns), -1).T @ patterns).reshape(draws, *own.shape)
    detached = (own * shared.detach()).reshape(-1, patterns.shape[1])
    probs = torch.softmax(plain_standardise(patterns @ detached.T, scale), dim=0)
    return masks, probs.reshape(len(patterns), *own.shape[:-1], -1)


@pytest.mark.parametrize("draws", [1, 3])
@pytest.mark.parametrize("use", ["masks", "probs", "both"])
def test_sample_patterns_matches_the_plain_straight_through_draw(draws, use):
    """Same masks, same probabilities, and the same gradients into both score factors; the probabilities'
    gradient reaches only the per-mask factor (the diversity loss sees W detached)."""
    torch.manual_seed(1)
    patterns = nm_patterns(2, 4).double()
    shared = torch.rand(5, 8, dtype=torch.float64)
    own = torch.rand(3, 5, 8, dtype=torch.float64)
    weights = torch.randn(draws, 3, 5, 8, dtype=torch.float64)
    probe = torch.randn(6, 3, 5, 2, dtype=torch.float64)
    results = []
    for fn in (sample_patterns, plain_sample):
        inputs = shared.clone().requires_grad_(True), own.clone().requires_grad_(True)
        torch.manual_seed(2)
        masks, probs = fn(*inputs, patterns, torch.tensor(1 / 0.7, dtype=torch.float64), draws)
        probs = probs.probs if fn is sample_patterns else probs
        terms = {"masks": [masks * weights], "probs": [probs * probe], "both": [masks * weights, probs * probe]}
        sum(term.sum() for term in terms[use]).backward()
        results.append((masks.detach(), probs.detach(), inputs[0].grad, inputs[1].grad))
    (masks, probs, g_shared, g_own), (ref_masks, ref_probs, ref_shared, ref_own) = results
    assert torch.equal(masks, ref_masks)
    torch.testing.assert_close(probs, ref_probs)
    torch.testing.assert_close(g_own, ref_own)
    if use == "probs":
        assert g_shared is None and ref_shared is None
    else:
        torch.testing.assert_close(g_shared, ref_shared)


def test_mean_pairwise_overlap_is_the_mean_over_pairs_with_its_gradient():
    torch.manual_seed(4)
    logits = torch.randn(4, 5, 3, 6, requires_grad=True)
    fast = mean_pairwise_overlap(torch.softmax(logits, -1))
    (fast_grad,) = torch.autograd.grad(fast, logits)
    plain = pairwise_overlap(torch.softmax(logits, -1)).mean()
    (plain_grad,) = torch.autograd.grad(plain, logits)
    torch.testing.assert_close(fast, plain)
    torch.testing.assert_close(fast_grad, plain_grad)
    assert mean_pairwise_overlap(torch.softmax(logits[:1], -1)) == 0


def test_the_diversity_loss_after_a_draw_reuses_its_probabilities_with_the_same_gradient(monkeypatch):
    """The loss after a training forward reads the draw's probabilities (no logits computed again); a copy that
    never drew computes them afresh: equal loss and alpha gradient, and no gradient into W from the diversity term
    either way."""
    torch.manual_seed(5)
    layer = K24Linear(12, 6, n_masks=3, hetero_init_scale=1.0)
    layer.set_temperature(0.8)
    fresh = copy.deepcopy(layer)
    loss_fn = PatternOverlapLoss()
    layer.sample_weights(1)  # draws, keeps its probabilities
    computed = []
    original = K24Linear._logits_first
    monkeypatch.setattr(K24Linear, "_logits_first", lambda self, *a, **k: computed.append(1) or original(self, *a, **k))
    reused = loss_fn([layer])
    assert not computed and layer._draw is None  # read from the draw, and let go of
    reused.backward()
    loss_fn([fresh]).backward()
    torch.testing.assert_close(reused, loss_fn([fresh]))
    torch.testing.assert_close(layer.alpha.grad, fresh.alpha.grad)
    assert layer.weight.grad is None and fresh.weight.grad is None


def test_the_drawn_probabilities_are_taken_once_and_only_while_their_sources_are_unchanged():
    torch.manual_seed(6)
    layer = K24Linear(8, 4, n_masks=2, hetero_init_scale=1.0)
    layer.sample_weights(1)
    drawn = layer._draw.probs
    taken = layer.pattern_probs(detach_weight=True)
    assert taken.data_ptr() == drawn.data_ptr()
    again = layer.pattern_probs(detach_weight=True)  # a second reader gets fresh ones, equal in value
    assert again.data_ptr() != drawn.data_ptr()
    torch.testing.assert_close(again, taken)
    layer.sample_weights(1)
    drawn = layer._draw.probs
    layer.set_temperature(0.5)  # the temperature changed after the draw
    stale = layer.pattern_probs(detach_weight=True)
    assert stale.data_ptr() != drawn.data_ptr()
    torch.testing.assert_close(stale, copy.deepcopy(layer).pattern_probs(True))
    layer.sample_weights(1)
    with torch.no_grad():
        layer.alpha.add_(1.0)  # an optimiser step
    torch.testing.assert_close(layer.pattern_probs(detach_weight=True), copy.deepcopy(layer).pattern_probs(True))


def test_a_target_copy_samples_from_its_current_logits_after_a_sync():
    """A target copy's draws (without autograd) follow its weights after an in-place sync (load_state_dict)."""
    torch.manual_seed(7)
    online = K24Linear(8, 4, n_masks=2, hetero_init_scale=3.0)
    target = copy.deepcopy(online).requires_grad_(False)
    target.set_temperature(1e-3)
    online.set_temperature(1e-3)  # a draw is the argmax
    with torch.no_grad():
        target.sample_weights(1)
        online.alpha.mul_(-1.0)
        target.load_state_dict(online.state_dict())
        torch.testing.assert_close(target.sample_weights(1)[0], online.masked_weights())


def test_after_a_backward_through_the_draw_the_diversity_loss_computes_afresh():
    """A backward pass frees the draw's graph: the loss must not reach into it afterwards."""
    torch.manual_seed(8)
    layer = K24Linear(8, 4, n_masks=3, hetero_init_scale=1.0)
    layer.sample_weights(1).sum().backward()
    assert layer._draw.spent
    PatternOverlapLoss()([layer]).backward()  # would raise "backward through the graph a second time"
    assert layer.alpha.grad is not None


def test_a_training_draw_runs_forward_and_backward_under_bf16_autocast():
    """The GPU learner's mixed precision: matmuls in bf16 inside the draw, its backward outside autocast."""
    torch.manual_seed(9)
    layer = K24Linear(8, 4, n_masks=3, hetero_init_scale=1.0)
    x = torch.randn(3, 5, 2, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = layer.forward_slots(x).float().square().mean() + PatternOverlapLoss()([layer])
    loss.backward()
    assert torch.isfinite(layer.alpha.grad).all() and torch.isfinite(layer.weight.grad).all()
    assert layer.alpha.grad.abs().sum() > 0 and layer.weight.grad.abs().sum() > 0
