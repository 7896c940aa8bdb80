"""k24-rllib: K-2:4 heterogeneous multi-agent RL (learnable 2:4 masks on shared weights) for Ray RLlib.

Importing the package registers the algorithm ("K24QMix", alias "k24_nq") and the env families with Ray Tune.
The pure-torch parts (``k24_rllib.sparsity``, ``k24_rllib.models``) also import where Ray is absent.
"""

__version__ = "0.1.0"

try:
    from k24_rllib.algorithm import K24QMix, K24QMixConfig
except ModuleNotFoundError as missing:  # Ray not installed: keep the pure-torch parts usable.
    if missing.name is None or missing.name.split(".")[0] != "ray":
        raise

__all__ = ["K24QMix", "K24QMixConfig", "__version__"]
