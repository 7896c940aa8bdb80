"""The K-2:4 maths and its Kaleidoscope baseline, in pure torch (no ray)."""

from k24_rllib.sparsity.args import K24Args, KaleiArgs
from k24_rllib.sparsity.diversity import (
    AdaptiveCoefficient,
    DiversityLoss,
    MaskDistanceLoss,
    PatternOverlapLoss,
    pairwise_overlap,
)
from k24_rllib.sparsity.export import (
    NMCompressed,
    check_nm_sparse,
    compress_nm,
    compressed_nbytes,
    decompress_nm,
    export_masked_weights,
    is_nm_sparse,
    to_semi_structured,
)
from k24_rllib.sparsity.k24_linear import K24Linear
from k24_rllib.sparsity.kalei_linear import KaleiLinear
from k24_rllib.sparsity.masked_base import MaskedLinearBase
from k24_rllib.sparsity.patterns import nm_patterns
from k24_rllib.sparsity.resets import (
    KLResetTrigger,
    ResetSchedule,
    pairwise_symmetric_kl,
    reset_collapsed_groups,
    reset_dead_weights,
)
from k24_rllib.sparsity.stats import MaskChange, mask_stats, pattern_stats, sparsities
from k24_rllib.sparsity.schedules import (
    cosine_temperature,
    linear_temperature,
    make_temperature_schedule,
    progress,
    pruned_scale,
)

__all__ = [
    "AdaptiveCoefficient",
    "DiversityLoss",
    "K24Args",
    "K24Linear",
    "KLResetTrigger",
    "KaleiArgs",
    "KaleiLinear",
    "MaskChange",
    "MaskDistanceLoss",
    "MaskedLinearBase",
    "NMCompressed",
    "PatternOverlapLoss",
    "ResetSchedule",
    "check_nm_sparse",
    "compress_nm",
    "compressed_nbytes",
    "cosine_temperature",
    "decompress_nm",
    "export_masked_weights",
    "is_nm_sparse",
    "linear_temperature",
    "make_temperature_schedule",
    "mask_stats",
    "nm_patterns",
    "pairwise_overlap",
    "pairwise_symmetric_kl",
    "pattern_stats",
    "progress",
    "pruned_scale",
    "reset_collapsed_groups",
    "reset_dead_weights",
    "sparsities",
    "to_semi_structured",
]
