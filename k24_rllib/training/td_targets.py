"""TD(lambda) targets for value decomposition over padded sequences (pure torch)."""

from __future__ import annotations

import torch


def lambda_returns(
    rewards: torch.Tensor,
    terminated: torch.Tensor,
    valid: torch.Tensor,
    next_values: torch.Tensor,
    gamma: float,
    td_lambda: float,
) -> torch.Tensor:
    """Backward-recursive lambda-returns, all tensors [B, T].

    ``next_values[:, t]`` is the target network's value of the state after step t. A step whose successor is
    not valid (sequence end or padding) bootstraps fully from ``next_values``; a terminated step does not
    bootstrap at all (a time-limit truncation is not a termination). ``td_lambda=0`` gives 1-step targets.
    pymarl2's "nq" learner uses the same recursion with lambda 0.6.
    """
    returns = torch.zeros_like(rewards)
    following = torch.zeros_like(rewards[:, 0])
    next_valid = torch.cat([valid[:, 1:], torch.zeros_like(valid[:, :1])], dim=1)
    for t in reversed(range(rewards.shape[1])):
        blended = (1.0 - td_lambda) * next_values[:, t] + td_lambda * following
        bootstrap = torch.where(next_valid[:, t] > 0, blended, next_values[:, t])
        following = rewards[:, t] + gamma * (1.0 - terminated[:, t]) * bootstrap
        returns[:, t] = following
    return returns
