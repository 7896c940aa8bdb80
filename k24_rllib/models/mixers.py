"""Value-decomposition mixers: QMIX (monotonic hypernetwork mixer) and VDN (sum)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _hypernet(state_dim: int, hidden: int, out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(state_dim, hidden), nn.ReLU(), nn.Linear(hidden, out))


class QMixer(nn.Module):
    """pymarl QMIX: Q_tot = w2 . elu(w1^T q + b1) + V(s), with |w1|, |w2| from 2-layer state hypernetworks.

    Non-negative mixing weights make Q_tot monotonic in every agent's Q, so per-agent argmaxes are consistent
    with the joint argmax.
    """

    def __init__(self, n_agents: int, state_dim: int, embed_dim: int = 32, hypernet_dim: int = 64) -> None:
        super().__init__()
        self.n_agents = n_agents
        self.state_dim = state_dim
        self.embed_dim = embed_dim
        self.hyper_w1 = _hypernet(state_dim, hypernet_dim, embed_dim * n_agents)
        self.hyper_w2 = _hypernet(state_dim, hypernet_dim, embed_dim)
        self.hyper_b1 = nn.Linear(state_dim, embed_dim)
        self.value = _hypernet(state_dim, embed_dim, 1)

    def forward(self, agent_qs: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """agent_qs [..., n_agents], state [..., state_dim] -> Q_tot [...]."""
        lead = agent_qs.shape[:-1]
        qs = agent_qs.reshape(-1, 1, self.n_agents)
        s = state.reshape(-1, self.state_dim)
        w1 = self.hyper_w1(s).abs().view(-1, self.n_agents, self.embed_dim)
        b1 = self.hyper_b1(s).view(-1, 1, self.embed_dim)
        hidden = F.elu(torch.bmm(qs, w1) + b1)
        w2 = self.hyper_w2(s).abs().view(-1, self.embed_dim, 1)
        q_tot = torch.bmm(hidden, w2) + self.value(s).view(-1, 1, 1)
        return q_tot.reshape(lead)


class VDNMixer(nn.Module):
    """VDN: Q_tot = sum of agent Qs (the state is accepted and ignored, for a common mixer signature)."""

    def forward(self, agent_qs: torch.Tensor, state: torch.Tensor | None = None) -> torch.Tensor:
        return agent_qs.sum(dim=-1)


MIXERS = ("qmix", "vdn")


def make_mixer(name: str, n_agents: int, state_dim: int, embed_dim: int = 32, hypernet_dim: int = 64) -> nn.Module:
    """Mixer by name; the sizes only matter for QMIX."""
    if name == "qmix":
        return QMixer(n_agents, state_dim, embed_dim=embed_dim, hypernet_dim=hypernet_dim)
    if name == "vdn":
        return VDNMixer()
    raise ValueError(f"unknown mixer {name!r}; valid: {', '.join(MIXERS)}")
