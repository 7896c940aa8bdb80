"""K-2:4 layer: a shared weight, and per mask a learnable choice of one N:M pattern per group of M inputs.

Padding: when ``in_features`` is not a multiple of M, the input dimension is zero-padded to ``padded_in`` (the
hardware layout). Masks, ``alpha`` and the EMA live in the padded layout; padded columns hold no weight, and
sparsity is accounted over the padded layout, so it is exactly 1 - n/m (0.5 for 2:4) at every size. Padded
columns score 0, so the argmax pattern of a partly padded group keeps real columns first; a Gumbel sample may
still keep padding there (it is a valid pattern of the padded layout, it just prunes more real weights).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from k24_rllib.sparsity.args import K24Args
from k24_rllib.sparsity.masked_base import MaskedLinearBase
from k24_rllib.sparsity.pattern_ops import (
    Draw, ema_update, gumbel_one_hot, masks_from_choice, sample_patterns, standardise_first,
)
from k24_rllib.sparsity.patterns import nm_patterns


class K24Linear(MaskedLinearBase):
    """Shared ``weight``/``bias``; per mask ``alpha`` [n_masks, out, padded_in] steering the pattern choice.

    Pattern logits per group g: l[g, p] = sum_k S[g, k] P[p, k] with S = |W| * ema * sigmoid(alpha), standardised
    over the patterns so the ``temperature`` buffer means the same at every weight scale. Training forwards draw
    a hard Gumbel-softmax pattern (straight-through, so gradients reach alpha and W) and update the EMA; eval
    forwards take the argmax pattern, with no noise and no EMA update. ``pruned_scale`` (0 by default) is the
    share of each pruned weight a forward keeps: ``K24_args.fade_pruned`` lowers it from 1 (dense) to 0 (exact
    N:M) as the temperature anneals, so the network starts dense and turns sparse as its masks settle.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        n_masks: int,
        n: int = 2,
        m: int = 4,
        ema_momentum: float = 0.99,
        hetero_init_scale: float = K24Args.hetero_init_scale,
        bias: bool = True,
        fade_pruned: bool = False,
    ) -> None:
        super().__init__(in_features, out_features, n_masks, bias)
        self.n, self.m = n, m
        self.ema_momentum = ema_momentum
        self.hetero_init_scale = hetero_init_scale
        self.register_buffer("patterns", nm_patterns(n, m), persistent=False)
        self.alpha = nn.Parameter(torch.randn(n_masks, out_features, self.padded_in) * hetero_init_scale)
        self.register_buffer("ema", torch.ones(self.padded_in))
        self.register_buffer("temperature", torch.tensor(1.0))
        self.fade_pruned = fade_pruned  # False: exact N:M always, and forwards skip the scale's arithmetic
        self.register_buffer("pruned_scale", torch.tensor(0.0))
        self._draw: Draw | None = None  # the last training draw (its probabilities) and its key
        self._draw_key: list[tuple[int, int]] | None = None
        if fade_pruned:  # only then do the acting weights read the scale (the cache key check is on acting's path)
            self.cache_sources = (*K24Linear.cache_sources, "pruned_scale")

    @property
    def padded_in(self) -> int:
        """Input width rounded up to a multiple of m."""
        return -(-self.in_features // self.m) * self.m

    @property
    def n_groups(self) -> int:
        """Groups of m inputs per output row."""
        return self.padded_in // self.m

    def set_temperature(self, t: float) -> None:
        """Set the Gumbel-softmax temperature (the agent's schedule drives it)."""
        if t <= 0:
            raise ValueError(f"temperature must be > 0, got {t}")
        self.temperature.fill_(float(t))

    def set_pruned_scale(self, scale: float) -> None:
        """Share of each pruned weight that forwards keep: 0 exact N:M, 1 dense (``K24_args.fade_pruned``)."""
        if not 0.0 <= scale <= 1.0:
            raise ValueError(f"pruned_scale must be in [0, 1], got {scale}")
        if scale and not self.fade_pruned:
            raise ValueError(f"pruned_scale {scale} needs a layer built with fade_pruned=True (K24_args.fade_pruned)")
        self.pruned_scale.fill_(float(scale))

    cache_sources = ("weight", "alpha", "ema")  # the argmax masks depend on these, not on the temperature
    own_parameters = ("alpha",)

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args, **kwargs) -> None:
        # checkpoints saved before ``pruned_scale`` existed held exact N:M layers: scale 0
        state_dict.setdefault(prefix + "pruned_scale", torch.zeros(()))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _pad_inputs(self, t: torch.Tensor) -> torch.Tensor:
        """Zero-pad the input axis (the last) to ``padded_in``; no copy when nothing is padded."""
        pad = self.padded_in - self.in_features
        return F.pad(t, (0, pad)) if pad else t

    def pattern_logits(self, detach_weight: bool = False) -> torch.Tensor:
        """Standardised pattern logits [n_masks, out, groups, P]; ``detach_weight`` stops gradient into W."""
        return self._logits_first(detach_weight).movedim(0, -1)

    def _logits_first(
        self, detach_weight: bool = False, alpha: torch.Tensor | None = None, scale: torch.Tensor | float = 1.0
    ) -> torch.Tensor:
        """``pattern_logits`` x ``scale`` with the pattern axis first, [P, n_masks, out, groups]: reductions and
        softmax over a leading axis of 6 are ~20x cheaper on CPU than over a trailing one. ``alpha`` replaces the
        layer's own (``shared_choice`` passes zeros)."""
        shared = self._shared_score()
        shared = shared.detach() if detach_weight else shared
        alpha = self.alpha if alpha is None else alpha
        groups = (shared * torch.sigmoid(alpha)).reshape(-1, self.m)  # [n_masks * out * groups, m]
        logits = (self.patterns @ groups.T).reshape(-1, alpha.shape[0], self.out_features, self.n_groups)
        return standardise_first(logits, scale)

    def _shared_score(self) -> torch.Tensor:
        """|W| * EMA [out, padded_in]: the part of every weight's score that all masks share."""
        # clone: a training forward moves the EMA in place after logits that are part of the autograd graph
        ema = self.ema.clone() if torch.is_grad_enabled() else self.ema
        return self._pad_inputs(self.weight).abs() * ema

    def pattern_probs(self, detach_weight: bool = False) -> torch.Tensor:
        """softmax(logits / temperature) [n_masks, out, groups, P], with gradient (feeds the diversity loss).

        With ``detach_weight`` and autograd on, the probabilities that this update's training draw computed are
        taken once, while weight, alpha, EMA and temperature are unchanged and no backward pass has run through
        the draw (the diversity loss follows the unroll, and both go into one backward); the layer lets go of
        them then, so nothing of the update outlives it."""
        draw, self._draw = self._draw, None
        if detach_weight and torch.is_grad_enabled() and draw is not None and not draw.spent:
            if self._draw_key == self._draw_source_key():
                return draw.probs.movedim(0, -1)
        return torch.softmax(self._logits_first(detach_weight, scale=1.0 / self.temperature), dim=0).movedim(0, -1)

    @torch.no_grad()
    def shared_choice(self) -> torch.Tensor:
        """The argmax pattern per group that |W| * EMA alone picks (alpha = 0, the same for every mask) [out,
        groups]: where the masks' own choices equal it, the shared weights decided, not the masks."""
        return self._logits_first(alpha=torch.zeros_like(self.alpha[:1])).argmax(dim=0)[0]

    def hard_masks(self) -> torch.Tensor:
        """Argmax-pattern masks [n_masks, out, padded_in]; exactly n of every m entries are 1."""
        choice = F.one_hot(self.pattern_logits().argmax(dim=-1), len(self.patterns)).to(self.weight.dtype)
        return masks_from_choice(choice.movedim(-1, 0), self.patterns)

    def masked_weights(self) -> torch.Tensor:
        """Argmax-masked weights [n_masks, out, in_features] (padding stripped): what acting and export use.
        Pruned weights count ``pruned_scale`` (0 once ``fade_pruned`` has annealed, so export is exact N:M)."""
        return self.weight * self._keep(self.hard_masks()[..., : self.in_features])

    @torch.no_grad()
    def decay_pruned(self, rate: float) -> None:
        """Shrink every shared weight by ``rate`` x the share of masks whose argmax pattern prunes it (1 where all
        do, 0 where all keep it): SR-STE's refining term, applied after the optimiser step so Adam does not
        rescale it. Pruned weights fall behind kept ones, so one update of W reorders fewer groups' patterns."""
        kept = self.hard_masks()[..., : self.in_features].mean(dim=0)
        self.weight.mul_(1.0 - rate * (1.0 - kept))

    def _keep(self, masks: torch.Tensor) -> torch.Tensor:
        """0/1 masks -> what each weight is multiplied by: 1 where kept, ``pruned_scale`` where pruned."""
        if not self.fade_pruned:
            return masks
        return masks + self.pruned_scale * (1.0 - masks)

    @torch.no_grad()
    def _observe(
        self, x: torch.Tensor, valid: torch.Tensor | None = None, step_sizes: torch.Tensor | None = None
    ) -> None:
        """EMA of mean |x| per input feature, one EMA step per timestep that has a valid row, as a step-by-step
        unroll would take (``pattern_ops.ema_update``). Padded columns see zeros, like the padded input would."""
        decay, increment = ema_update(x, self.ema_momentum, valid, step_sizes)
        self.ema.mul_(decay).add_(self._pad_inputs(increment))

    def sample_weights(self, draws: int) -> torch.Tensor:
        """``draws`` hard Gumbel-softmax samples [draws, n_masks, out, in]; straight-through when autograd is on."""
        if torch.is_grad_enabled():
            masks, self._draw = sample_patterns(
                self._shared_score(), torch.sigmoid(self.alpha), self.patterns, 1.0 / self.temperature, draws
            )
            self._draw_key = self._draw_source_key()
        else:  # the target network
            tempered = self._logits_first(scale=1.0 / self.temperature)
            masks = masks_from_choice(gumbel_one_hot(tempered, draws)[0], self.patterns)
        return self.weight * self._keep(masks[..., : self.in_features])

    def _draw_source_key(self) -> list[tuple[int, int]]:
        """``_source_key`` and the temperature's: what a training draw's probabilities depend on."""
        return [*self._source_key(), (self.temperature.data_ptr(), self.temperature._version)]

    def __getstate__(self) -> dict:
        """Copies and pickles leave the last draw behind (its probabilities carry an autograd graph)."""
        state = dict(super().__getstate__())
        state.update(_draw=None, _draw_key=None)
        return state

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, n_masks={self.n_masks}, "
            f"n={self.n}, m={self.m}, padded_in={self.padded_in}"
        )

