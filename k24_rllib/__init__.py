"""k24-rllib: K-2:4 heterogeneous multi-agent RL (learnable 2:4 masks on shared weights) for Ray RLlib.

The pure-torch layers (``k24_rllib.sparsity``, ``k24_rllib.models``, ``k24_rllib.training``) import without Ray.
The RLlib layer loads on first use: ``from k24_rllib import K24QMixConfig`` (or ``import k24_rllib.algorithm``)
registers the algorithm ("K24QMix", alias "k24_nq") and the env families with Ray Tune.
"""

from typing import Any

__version__ = "0.1.0"

_RLLIB_NAMES = ("K24QMix", "K24QMixConfig")


def __getattr__(name: str) -> Any:
    """Loads the RLlib layer (and so registers with Tune) the first time one of its names is asked for."""
    if name in _RLLIB_NAMES:
        from k24_rllib import algorithm

        return getattr(algorithm, name)
    raise AttributeError(f"module 'k24_rllib' has no attribute {name!r}")


__all__ = ["K24QMix", "K24QMixConfig", "__version__"]
