"""k24-rllib: K-2:4 heterogeneous multi-agent RL (learnable 2:4 masks on shared weights) for Ray RLlib."""

__version__ = "0.1.0"
