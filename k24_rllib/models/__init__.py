"""Torch modules built from ``k24_rllib.sparsity``: the recurrent agent and the mixers."""

from k24_rllib.models.agent import RecurrentAgent, first_non_finite, mask_ids_for
from k24_rllib.models.layers import SharedLinear
from k24_rllib.models.mask_kinds import MASK_KINDS, MaskKind, mask_kind, register_mask_kind
from k24_rllib.models.mixers import MIXERS, QMixer, VDNMixer, make_mixer
from k24_rllib.models.settings import MASKS_PER, ModelSettings

__all__ = [
    "MASKS_PER",
    "MASK_KINDS",
    "MIXERS",
    "ModelSettings",
    "MaskKind",
    "QMixer",
    "RecurrentAgent",
    "SharedLinear",
    "VDNMixer",
    "first_non_finite",
    "make_mixer",
    "mask_ids_for",
    "mask_kind",
    "register_mask_kind",
]
