"""The tensor maths behind a K-2:4 layer's pattern choice, pattern axis first, in as few passes as it takes.

A training update runs these on every group of every masked layer, for the online and the target network and the
diversity loss; at hidden 256 that is a few hundred thousand logits per layer, and on CPU each extra pass or
autograd node shows in the update time. So the training draw is one autograd Function from the score's two
factors to the masks (and the pattern probabilities the diversity loss reads), with its backward written out, and
the activation EMA takes one matrix-vector product. ``tests/sparsity/test_pattern_ops.py`` checks each against the
plain autograd expression it replaces.
"""

from __future__ import annotations

import weakref

import torch


def standardise_first(logits: torch.Tensor, scale: torch.Tensor | float = 1.0) -> torch.Tensor:
    """scale * (l - mean) / sqrt(var + 1e-12) over the leading axis.

    Standardised, the logits mean the same at every weight scale; ``scale`` (1 / temperature) is folded in here
    so that tempering costs no pass of its own. The epsilon sits under the root: six equal logits (zero weights,
    an input whose EMA reached 0) would otherwise meet sqrt's infinite slope at 0 and make the gradient NaN.
    """
    if torch.is_grad_enabled() and logits.requires_grad:
        return _StandardiseFirst.apply(logits, torch.as_tensor(scale, dtype=logits.dtype, device=logits.device))
    return _standardise(logits, scale)[0]


def _standardise(
    logits: torch.Tensor, scale: torch.Tensor | float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(y = k r (l - mean), k r, r / k) over the leading axis, r = 1 / sqrt(var + eps), k = ``scale``."""
    centred = logits - logits.mean(dim=0)
    root = torch.rsqrt((centred * centred).mean(dim=0) + 1e-12)
    scaled_root = root * scale
    return centred.mul_(scaled_root), scaled_root, root / scale


def _standardise_backward(
    grad: torch.Tensor, out: torch.Tensor, scaled_root: torch.Tensor, root_over_scale: torch.Tensor
) -> torch.Tensor:
    """The input gradient of ``_standardise``: k r (g - mean(g)) - (r / k) y mean(g y)."""
    along = (grad * out).mean(dim=0)
    return (grad - grad.mean(dim=0)).mul_(scaled_root).addcmul_(out, root_over_scale * along, value=-1.0)


def _softmax_backward(probs: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """The input gradient of a softmax over the leading axis: p g - p sum(p g)."""
    weighted = probs * grad
    return weighted.addcmul_(probs, weighted.sum(dim=0, keepdim=True), value=-1.0)


class _StandardiseFirst(torch.autograd.Function):
    """``standardise_first`` as one autograd node: autograd's own graph of the six-op forward (a squaring, two
    means, a reciprocal root) cost as much as four forwards."""

    @staticmethod
    def forward(ctx, logits: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        out, scaled_root, root_over_scale = _standardise(logits, scale)
        ctx.save_for_backward(out, scaled_root, root_over_scale)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return _standardise_backward(grad, *ctx.saved_tensors), None


def gumbel_one_hot(tempered: torch.Tensor, draws: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``draws`` one-hot samples of softmax(tempered) over the leading (pattern) axis, and the perturbed logits z
    they are the argmax of: [P, ...] -> ([P, draws, ...], z). Cheap: noise is -log(-log(U)) (not
    ``exponential_``), and amax over a leading axis is ~100x cheaper than argmax on CPU."""
    noise = torch.rand((tempered.shape[0], draws, *tempered.shape[1:]), dtype=tempered.dtype, device=tempered.device)
    z = tempered.unsqueeze(1) - noise.clamp_(min=torch.finfo(tempered.dtype).tiny).log_().neg_().log_()
    return (z == z.amax(dim=0)).to(z.dtype), z  # one-hot: ties have probability 0 under continuous noise


class Draw:
    """What a training draw leaves for the diversity loss: its pattern probabilities, whose autograd graph lives
    until a backward pass runs through the draw (``spent``); after that they must be computed afresh. The draw's
    autograd node holds only a weak reference to it: a strong one would close a cycle (probs -> node -> draw ->
    probs) that keeps the whole graph alive until Python's cycle collector runs."""

    __slots__ = ("probs", "spent", "__weakref__")

    def __init__(self) -> None:
        self.probs: torch.Tensor | None = None
        self.spent = False


def sample_patterns(
    shared: torch.Tensor, own: torch.Tensor, patterns: torch.Tensor, scale: torch.Tensor, draws: int
) -> tuple[torch.Tensor, Draw]:
    """A training draw of every mask's pattern per group, straight-through: (masks [draws, *own.shape], the
    draw with its probabilities).

    The score of a weight is ``shared * own`` (|W| * EMA, one per weight, times sigmoid(alpha), one per mask and
    weight: shared [out, in], own [n_masks, out, in], in a multiple of m); a group's pattern logits are the sums of
    its kept scores, standardised and times ``scale`` (1 / temperature). The masks are one Gumbel-max draw per
    group and draw, with the gradient of the soft sample softmax(logits + g). The temperature scales the logits
    before the noise: noise on unscaled logits (``F.gumbel_softmax``'s semantics) draws from softmax(logits) at
    every temperature, and the training masks would never settle on the argmax masks that acting uses.
    ``probs`` = softmax(logits) [P, n_masks, out, groups] for the diversity loss: its gradient reaches ``own``
    only, as Kaleidoscope's and K-2:4's diversity terms see W detached.
    """
    draw = Draw()
    masks, draw.probs = _SampledPatterns.apply(shared, own, patterns, scale, draws, weakref.ref(draw))
    return masks, draw


def masks_from_choice(choice: torch.Tensor, patterns: torch.Tensor) -> torch.Tensor:
    """One-hot (or straight-through) pattern choice, pattern axis first, [P, ..., groups] -> 0/1 masks
    [..., groups * m], as one matmul."""
    masks = choice.reshape(len(patterns), -1).T @ patterns  # [... * groups, m]
    return masks.reshape(*choice.shape[1:-1], -1)


class _SampledPatterns(torch.autograd.Function):
    """``sample_patterns`` with autograd: one node in place of the dozen (score, logits, standardisation,
    tempering, noise, softmax, straight-through sum, masks) its forward would otherwise record, and the score's
    factors computed once for the draw and the diversity loss's probabilities."""

    @staticmethod
    def forward(ctx, shared, own, patterns, scale, draws, draw):  # type: ignore[override]
        ctx.set_materialize_grads(False)  # an output no loss used (probs without a diversity loss) costs nothing
        ctx.draw = draw  # a weak reference
        groups = (own * shared).reshape(-1, patterns.shape[1])  # [K, m]
        tempered, scaled_root, root_over_scale = _standardise(patterns @ groups.T, scale)  # [P, K]
        hard, z = gumbel_one_hot(tempered, draws)  # [P, draws, K]
        soft = torch.softmax(z, dim=0)
        probs = torch.softmax(tempered, dim=0)
        ctx.save_for_backward(shared, own, patterns, tempered, scaled_root, root_over_scale, soft, probs)
        masks = masks_from_choice(hard, patterns).reshape(draws, *own.shape)
        return masks, probs.reshape(len(patterns), *own.shape[:-1], -1)

    @staticmethod
    def backward(ctx, grad_masks, grad_probs):  # type: ignore[override]
        shared, own, patterns, tempered, scaled_root, root_over_scale, soft, probs = ctx.saved_tensors
        if (draw := ctx.draw()) is not None:
            draw.spent = True
        # gradients are taken in the patterns' dtype: under autocast the forward's matmuls and softmaxes ran in
        # bf16, while backward runs outside autocast
        n_patterns, m = patterns.shape

        def to_score(grad_tempered: torch.Tensor) -> torch.Tensor:  # [P, K] -> [*own.shape]
            grad_logits = _standardise_backward(grad_tempered, tempered, scaled_root, root_over_scale)
            return (grad_logits.T @ patterns).reshape(own.shape)

        grad_score = grad_shared = grad_own = None  # the masks' share reaches both factors, the probs' own only
        if grad_masks is not None:
            grad_choice = (patterns @ grad_masks.to(patterns.dtype).reshape(-1, m).T).reshape(soft.shape)
            grad_soft = _softmax_backward(soft, grad_choice)
            grad_score = to_score(grad_soft[:, 0] if soft.shape[1] == 1 else grad_soft.sum(dim=1))
            grad_shared = (grad_score * own).sum(dim=0) if ctx.needs_input_grad[0] else None
        if grad_probs is not None:
            grad_probs = grad_probs.to(patterns.dtype).reshape(n_patterns, -1)
            from_probs = to_score(_softmax_backward(probs, grad_probs))
            grad_score = from_probs if grad_score is None else grad_score.add_(from_probs)
        if grad_score is not None and ctx.needs_input_grad[1]:
            grad_own = grad_score * shared
        return grad_shared, grad_own, None, None, None, None


@torch.no_grad()
def ema_update(
    x: torch.Tensor, momentum: float, valid: torch.Tensor | None = None, step_sizes: torch.Tensor | None = None
) -> tuple[torch.Tensor | float, torch.Tensor]:
    """(decay, increment), so that ``ema * decay + increment`` is the EMA of mean |x| per input feature after one
    step per timestep that has a valid row, as a step-by-step unroll would take, over x [S, R, T, in].

    With K counted timesteps, ema_K = m^K ema_0 + (1 - m) sum_k m^(K-1-k) mean_k: the increment is a weighted sum
    of |x| over rows (each row weighs (1 - m) m^(K-1-k) / (its timestep's rows x S)), one matrix-vector product
    in float32 whatever x is, so sums, counts and the decay stay exact under bf16 autocast. Padding never dilutes
    the statistics, and no host sync decides which timesteps count (on a GPU a sync stalls the launch queue).
    ``valid`` [R, T] marks real rows; packed layout (``step_sizes``): x [S, N, 1, in] holds ``step_sizes[t]``
    consecutive rows of timestep t.
    """
    m = momentum
    if step_sizes is not None:
        sizes = step_sizes.to(x.device)
        later = torch.arange(len(sizes) - 1, -1, -1, device=x.device, dtype=torch.float32)
        row_weight = ((1.0 - m) * m**later / sizes).repeat_interleave(sizes)
        decay: torch.Tensor | float = m ** len(sizes)
    else:
        valid = torch.ones(x.shape[1:3], device=x.device) if valid is None else valid.float()  # [R, T]
        counts = valid.sum(dim=0)
        kept = (counts > 0).float()
        later = kept.flip(0).cumsum(0).flip(0) - kept  # how many counted timesteps follow each one
        row_weight = (valid * ((1.0 - m) * m**later * kept / counts.clamp(min=1.0))).reshape(-1)
        decay = m ** kept.sum()
    rows = x.detach().abs().float().reshape(-1, x.shape[-1])  # [S * rows, in]
    with torch.autocast(x.device.type, enabled=False):  # a bf16 matmul would round the weights
        increment = row_weight.repeat(x.shape[0]).div_(x.shape[0]) @ rows
    return decay, increment
