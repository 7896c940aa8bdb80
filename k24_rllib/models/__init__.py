"""Torch modules built from ``k24_rllib.sparsity``: the recurrent agent and the mixers."""

from k24_rllib.models.agent import RecurrentAgent, first_non_finite, mask_ids_for
from k24_rllib.models.layers import MASK_KINDS, SharedLinear, make_layer
from k24_rllib.models.mixers import MIXERS, QMixer, VDNMixer, make_mixer

__all__ = [
    "MASK_KINDS",
    "MIXERS",
    "QMixer",
    "RecurrentAgent",
    "SharedLinear",
    "VDNMixer",
    "first_non_finite",
    "make_layer",
    "make_mixer",
    "mask_ids_for",
]
