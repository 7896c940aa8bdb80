"""The learner's QMIX TD(lambda) loss against a hand-computed case (VDN sum mixer, so every number is visible)."""

import pytest
import torch

from k24_rllib.models import QMixer
from k24_rllib.training import qmix_td_loss


def case():
    q = torch.tensor([[[[1.0, 2.0], [3.0, 0.0]], [[0.5, 1.5], [2.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]]]],
                     requires_grad=True)  # [B=1, T+1=3, n=2, A=2]
    target_q = torch.tensor([[[[0.0, 0.0], [0.0, 0.0]], [[10.0, 20.0], [30.0, 40.0]], [[1.0, 2.0], [3.0, 4.0]]]])
    available = torch.ones(1, 3, 2, 2)
    available[0, 1, 0, 1] = 0.0  # agent 0 may not take action 1 at t=1
    batch = dict(actions=torch.tensor([[[1, 0], [0, 1]]]), rewards=torch.tensor([[1.0, 0.0]]),
                 terminated=torch.tensor([[0.0, 1.0]]), valid=torch.tensor([[1.0, 1.0]]), available=available,
                 state=torch.zeros(1, 3, 1))
    return q, target_q, batch


def vdn(q: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
    return q.sum(-1)


@pytest.mark.parametrize("double_q, target_0", [(True, 1 + 0.9 * 0.4 * (10 + 30)), (False, 1 + 0.9 * 0.4 * (10 + 40))])
def test_the_td_lambda_loss_matches_a_hand_computation(double_q, target_0):
    """t=1's greedy next actions: online Q picks (0, 0) among legal ones, target Q picks (0, 1); t=1 terminates, so
    its target is its reward 0 and step 0's lambda-return is 1 + 0.9 * (0.4 * next_q_tot + 0.6 * 0)."""
    q, target_q, b = case()
    out = qmix_td_loss(q, target_q, b["actions"], b["rewards"], b["terminated"], b["valid"], b["available"],
                       b["state"], vdn, vdn, gamma=0.9, td_lambda=0.6, double_q=double_q)
    q_tot = torch.tensor([[2.0 + 3.0, 0.5 + 1.0]])
    torch.testing.assert_close(out.targets, torch.tensor([[target_0, 0.0]]))
    torch.testing.assert_close(out.td_error, q_tot - out.targets)
    assert out.loss.item() == pytest.approx(((5.0 - target_0) ** 2 + 1.5**2) / 2)
    out.loss.backward()
    assert q.grad[0, 0, 0, 1].item() == pytest.approx(5.0 - target_0)  # d/dq of (q_tot - target)^2 / 2 steps
    assert q.grad[0, 0, 0, 0].item() == 0.0 and q.grad[0, 2].abs().sum().item() == 0.0  # untaken, next-step Q


def test_padding_counts_for_nothing():
    q, target_q, b = case()
    valid = torch.tensor([[1.0, 0.0]])
    out = qmix_td_loss(q, target_q, b["actions"], b["rewards"], b["terminated"], valid, b["available"], b["state"],
                       vdn, vdn, gamma=0.9, td_lambda=0.6)
    assert out.n_valid.item() == 1.0 and out.td_error[0, 1].item() == 0.0
    # step 0 is now the last real step: its target bootstraps fully from next_q_tot (no lambda blend)
    assert out.targets[0, 0].item() == pytest.approx(1 + 0.9 * 40.0)


def test_mixing_the_real_steps_only_computes_what_mixing_the_padded_batch_computes():
    """CPU's default packs both mixers to the real steps: equal loss, targets and gradients on real steps."""
    torch.manual_seed(3)
    b, t, n, a = 5, 7, 3, 4
    lengths = torch.tensor([7, 3, 5, 1, 6])
    valid = (torch.arange(t)[None] < lengths[:, None]).float()
    terminated = torch.zeros(b, t)
    terminated[torch.arange(b), lengths - 1] = 1.0
    args = dict(actions=torch.randint(0, a, (b, t, n)), rewards=torch.rand(b, t), terminated=terminated, valid=valid,
                available=torch.ones(b, t + 1, n, a), state=torch.randn(b, t + 1, 6))
    mixer, target_mixer = QMixer(n, 6), QMixer(n, 6).requires_grad_(False)
    q = torch.randn(b, t + 1, n, a, requires_grad=True)
    target_q = torch.randn(b, t + 1, n, a)
    outs, grads = [], []
    for pack in (True, False):
        out = qmix_td_loss(q, target_q, mixer=mixer, target_mixer=target_mixer, gamma=0.99, td_lambda=0.6,
                           pack=pack, **args)
        mixer.zero_grad()
        out.loss.backward()
        outs.append(out)
        grads.append([q.grad.clone(), *(p.grad.clone() for p in mixer.parameters())])
        q.grad = None
    packed, padded = outs
    torch.testing.assert_close(packed.loss, padded.loss)
    torch.testing.assert_close(packed.targets * valid, padded.targets * valid)
    torch.testing.assert_close(packed.td_error, padded.td_error)
    for mine, theirs in zip(*grads):
        torch.testing.assert_close(mine, theirs)
