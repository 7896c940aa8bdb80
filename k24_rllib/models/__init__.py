"""Torch modules built from ``k24_rllib.sparsity``: the recurrent agent and the mixers."""

from k24_rllib.models.agent import RecurrentAgent, mask_ids_for
from k24_rllib.models.layers import MASK_KINDS, SharedLinear, make_layer
from k24_rllib.models.mixers import MIXERS, QMixer, VDNMixer, make_mixer

__all__ = [
    "MASK_KINDS",
    "MIXERS",
    "QMixer",
    "RecurrentAgent",
    "SharedLinear",
    "VDNMixer",
    "make_layer",
    "make_mixer",
    "mask_ids_for",
]
