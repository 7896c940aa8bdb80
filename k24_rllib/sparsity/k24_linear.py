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

    def _logits_first(self, detach_weight: bool = False, alpha: torch.Tensor | None = None) -> torch.Tensor:
        """``pattern_logits`` with the pattern axis first, [P, n_masks, out, groups]: reductions and softmax
        over a leading axis of 6 are ~20x cheaper on CPU than over a trailing one. ``alpha`` replaces the
        layer's own (``shared_choice`` passes zeros)."""
        weight = self._pad_inputs(self.weight).abs()
        weight = weight.detach() if detach_weight else weight
        alpha = self.alpha if alpha is None else alpha
        # clone: a training forward moves the EMA in place after logits that are part of the autograd graph
        ema = self.ema.clone() if torch.is_grad_enabled() else self.ema
        score = weight * ema * torch.sigmoid(alpha)
        groups = score.reshape(-1, self.m)  # [n_masks * out * groups, m]
        logits = (self.patterns @ groups.T).reshape(-1, alpha.shape[0], self.out_features, self.n_groups)
        centred = logits - logits.mean(dim=0)
        # the epsilon sits under the root: six equal logits (zero weights, an input whose EMA reached 0) would
        # otherwise meet sqrt's infinite slope at 0 and make the gradient NaN
        return centred * torch.rsqrt(centred.square().mean(dim=0) + 1e-12)

    def pattern_probs(self, detach_weight: bool = False) -> torch.Tensor:
        """softmax(logits / temperature) [n_masks, out, groups, P], with gradient (feeds the diversity loss)."""
        return torch.softmax(self._logits_first(detach_weight) / self.temperature, dim=0).movedim(0, -1)

    def _masks_from_choice(self, choice: torch.Tensor) -> torch.Tensor:
        """One-hot (or straight-through) pattern choice, pattern axis first, [P, ..., groups] -> 0/1 masks
        [..., padded_in], as one matmul."""
        masks = choice.reshape(len(self.patterns), -1).T @ self.patterns  # [... * groups, m]
        return masks.reshape(*choice.shape[1:-1], self.padded_in)

    @torch.no_grad()
    def shared_choice(self) -> torch.Tensor:
        """The argmax pattern per group that |W| * EMA alone picks (alpha = 0, the same for every mask) [out,
        groups]: where the masks' own choices equal it, the shared weights decided, not the masks."""
        return self._logits_first(alpha=torch.zeros_like(self.alpha[:1])).argmax(dim=0)[0]

    def hard_masks(self) -> torch.Tensor:
        """Argmax-pattern masks [n_masks, out, padded_in]; exactly n of every m entries are 1."""
        choice = F.one_hot(self.pattern_logits().argmax(dim=-1), len(self.patterns)).to(self.weight.dtype)
        return self._masks_from_choice(choice.movedim(-1, 0))

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
        unroll would take.

        ema_T = m^T ema_0 + (1 - m) sum_t m^(T-1-t) mean_t over those timesteps, in one call. Padded columns see
        zeros, like the padded input would.
        """
        means, kept = step_means(x, valid, step_sizes)
        m = self.ema_momentum
        later = kept.flip(0).cumsum(0).flip(0) - kept  # how many counted timesteps follow each one
        weights = (1.0 - m) * m**later * kept
        # float32 elementwise, not a matmul: under bf16 autocast a matmul would round the weights to bf16
        blended = (weights.unsqueeze(-1) * means).sum(dim=0)
        self.ema.mul_(m ** kept.sum()).add_(self._pad_inputs(blended))

    def sample_weights(self, draws: int) -> torch.Tensor:
        """``draws`` hard Gumbel-softmax samples [draws, n_masks, out, in]; straight-through when autograd is on."""
        choice = hard_gumbel_softmax(self._logits_first(), self.temperature, draws)  # [P, draws, ...]
        return self.weight * self._keep(self._masks_from_choice(choice)[..., : self.in_features])

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, n_masks={self.n_masks}, "
            f"n={self.n}, m={self.m}, padded_in={self.padded_in}"
        )


def hard_gumbel_softmax(logits: torch.Tensor, tau: torch.Tensor | float, draws: int) -> torch.Tensor:
    """``draws`` one-hot samples of pi = softmax(logits / tau) over the pattern axis, which comes first.

    logits [P, ...] -> [P, draws, ...]. The temperature scales the logits before the Gumbel noise is added, so it
    decides how often a drawn mask departs from the argmax: near uniform at tau = 5, near the argmax at 0.1.
    Noise on the unscaled logits (``F.gumbel_softmax(logits, tau, hard=True)``) draws from softmax(logits) at
    every temperature; with standardised logits the training masks then never settle on the argmax masks that
    acting uses. With autograd on, the gradient is that of the soft sample softmax(logits / tau + g)
    (straight-through). Cheap: noise is -log(-log(U)) (not ``exponential_``), the softmax runs over a leading
    axis, and without autograd no softmax is computed at all (the target network).
    """
    lead = logits.unsqueeze(1) / tau  # [P, 1, ...]
    noise = torch.rand((lead.shape[0], draws, *lead.shape[2:]), dtype=logits.dtype, device=logits.device)
    z = lead - noise.clamp_(min=torch.finfo(logits.dtype).tiny).log_().neg_().log_()
    hard = (z == z.amax(dim=0)).to(z.dtype)  # one-hot: ties have probability 0 under continuous noise
    # (amax over a leading axis is ~100x cheaper than argmax on CPU)
    if not (torch.is_grad_enabled() and logits.requires_grad):
        return hard
    soft = torch.softmax(z, dim=0)
    return hard - soft.detach() + soft


def step_means(
    x: torch.Tensor, valid: torch.Tensor | None = None, step_sizes: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean |x| per timestep and input feature over slots and valid rows: x [S, R, T, in] -> (means [T, in],
    kept [T]), kept 1.0 where the timestep has a valid row and 0.0 (with a mean of 0) where it has none. Both are
    float32 whatever x is: sums, counts and the EMA's decay stay exact under bf16 autocast.

    Padding never dilutes the statistics, and no host sync decides which timesteps count (on a GPU a sync stalls
    the launch queue). Packed layout (``step_sizes``): x [S, N, 1, in] holds ``step_sizes[t]`` consecutive rows of
    timestep t.
    """
    a = x.detach().abs().float()
    if step_sizes is not None:
        per_row = a.mean(dim=0)[:, 0]  # [N, in]
        step = torch.repeat_interleave(torch.arange(len(step_sizes), device=x.device), step_sizes.to(x.device))
        sums = per_row.new_zeros(len(step_sizes), per_row.shape[-1]).index_add_(0, step, per_row)
        return sums / step_sizes.to(sums)[:, None], torch.ones(len(step_sizes), device=x.device)
    if valid is None:
        return a.mean(dim=(0, 1)), torch.ones(x.shape[2], device=x.device)
    weight = valid.float()  # [R, T]
    sums = (a.sum(dim=0) * weight.unsqueeze(-1)).sum(dim=0)  # [T, in]
    counts = weight.sum(dim=0) * x.shape[0]
    return sums / counts.clamp(min=1.0).unsqueeze(-1), (counts > 0).float()
