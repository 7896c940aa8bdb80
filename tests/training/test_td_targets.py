import pytest
import torch

from k24_rllib.training import lambda_returns


def _one_row(rewards, next_values, terminated=None, valid=None):
    t = torch.tensor
    r = t([rewards], dtype=torch.float32)
    return (
        r,
        t([terminated or [0.0] * len(rewards)]),
        t([valid or [1.0] * len(rewards)]),
        t([next_values], dtype=torch.float32),
    )


def test_lambda_zero_is_one_step_td():
    r, term, valid, nv = _one_row([1.0, 2.0, 3.0], [10.0, 20.0, 30.0], terminated=[0.0, 0.0, 1.0])
    out = lambda_returns(r, term, valid, nv, gamma=0.5, td_lambda=0.0)
    torch.testing.assert_close(out, torch.tensor([[1 + 0.5 * 10, 2 + 0.5 * 20, 3.0]]))


def test_lambda_one_is_the_discounted_return_bootstrapped_at_the_sequence_end():
    r, term, valid, nv = _one_row([1.0, 1.0, 1.0], [100.0, 100.0, 8.0])
    out = lambda_returns(r, term, valid, nv, gamma=0.5, td_lambda=1.0)
    last = 1 + 0.5 * 8.0  # truncated, not terminated: bootstraps
    torch.testing.assert_close(out, torch.tensor([[1 + 0.5 * (1 + 0.5 * last), 1 + 0.5 * last, last]]))


def test_intermediate_lambda_matches_hand_computation():
    r, term, valid, nv = _one_row([1.0, 0.0], [4.0, 2.0], terminated=[0.0, 1.0])
    out = lambda_returns(r, term, valid, nv, gamma=1.0, td_lambda=0.6)
    g1 = 0.0  # terminated: no bootstrap
    g0 = 1.0 + (0.4 * 4.0 + 0.6 * g1)
    torch.testing.assert_close(out, torch.tensor([[g0, g1]]))


def test_padding_does_not_leak_into_valid_steps():
    r, term, valid, nv = _one_row([1.0, 99.0], [3.0, 99.0], valid=[1.0, 0.0])
    out = lambda_returns(r, term, valid, nv, gamma=0.9, td_lambda=0.6)
    assert out[0, 0].item() == pytest.approx(1.0 + 0.9 * 3.0)
