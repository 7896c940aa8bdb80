"""QMIX's TD(lambda) loss over padded whole-episode batches (pure torch: the learner and the benchmarks share it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from k24_rllib.models.packing import PackedSteps
from k24_rllib.training.td_targets import lambda_returns

Mixer = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (per-agent Q [B, T, n], state [B, T, s]) -> [B, T]


@dataclass(frozen=True)
class TDLoss:
    """The masked mean squared TD error and what the learner logs about it."""

    loss: torch.Tensor  # scalar, with gradient into the online agent and mixer
    q_taken: torch.Tensor  # [B, T, n] chosen actions' Q-values
    targets: torch.Tensor  # [B, T] TD(lambda) targets (no gradient)
    td_error: torch.Tensor  # [B, T] (Q_tot - target), zero on padding
    n_valid: torch.Tensor  # number of real steps (at least 1)


def qmix_td_loss(
    q: torch.Tensor,
    target_q: torch.Tensor,
    actions: torch.Tensor,
    rewards: torch.Tensor,
    terminated: torch.Tensor,
    valid: torch.Tensor,
    available: torch.Tensor,
    state: torch.Tensor,
    mixer: Mixer,
    target_mixer: Mixer,
    gamma: float,
    td_lambda: float,
    double_q: bool = True,
    pack: bool | None = None,
) -> TDLoss:
    """pymarl2's "nq" loss: q / target_q [B, T + 1, n, A] over every observation of the episodes, actions [B, T, n],
    rewards / terminated / valid [B, T], available [B, T + 1, n, A] (legal actions), state [B, T + 1, s].

    The next step's greedy action comes from the online Q (double Q) or the target Q, among legal actions only;
    the target mixer values it, and TD(lambda) targets (``lambda_returns``) are regressed on with padding masked.
    ``pack``: run both mixers on the real steps only (``valid`` is a prefix mask per episode); the default packs on
    CPU, as ``RecurrentAgent.unroll`` does, and keeps a GPU's layout padded. Real steps get the same values
    either way; padding gets zeros.
    """
    if pack is None:
        pack = q.device.type == "cpu"
    if pack:
        steps = PackedSteps.of(valid.bool())  # one layout for both mixers
        mixer, target_mixer = on_real_steps(mixer, steps), on_real_steps(target_mixer, steps)
    valid = valid.float()
    q_taken = q[:, :-1].gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)
    q_tot = mixer(q_taken, state[:, :-1])
    with torch.no_grad():
        chooser = q[:, 1:].detach() if double_q else target_q[:, 1:]
        best = chooser.masked_fill(~(available[:, 1:] > 0), float("-inf")).argmax(dim=-1, keepdim=True)
        next_q_tot = target_mixer(target_q[:, 1:].gather(-1, best).squeeze(-1), state[:, 1:])
        targets = lambda_returns(rewards.float(), terminated.float(), valid, next_q_tot, gamma, td_lambda)
    n_valid = valid.sum().clamp(min=1.0)
    td_error = (q_tot - targets) * valid
    return TDLoss((td_error**2).sum() / n_valid, q_taken, targets, td_error, n_valid)


def on_real_steps(mixer: Mixer, steps: PackedSteps) -> Mixer:
    """``mixer`` applied to the real steps of [B, T] only (one gather in, one scatter out); zeros on padding."""
    return lambda agent_qs, state: steps.unpack(mixer(steps.pack(agent_qs), steps.pack(state)))
