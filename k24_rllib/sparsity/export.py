"""From trained masks to deployable weights: N:M checks, a compact (values + indices) form, PyTorch 2:4 tensors."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from k24_rllib.sparsity.masked_base import MaskedLinearBase

SEMI_STRUCTURED_DTYPES = (torch.float16, torch.bfloat16, torch.int8)


def _groups(weight: torch.Tensor, m: int) -> torch.Tensor:
    """[out, in] -> [out, groups, m], zero-padding the input dimension to a multiple of m."""
    if weight.dim() != 2:
        raise ValueError(f"expected a 2-D weight [out, in], got shape {tuple(weight.shape)}")
    pad = -weight.shape[1] % m
    return F.pad(weight, (0, pad)).reshape(weight.shape[0], -1, m)


def check_nm_sparse(weight: torch.Tensor, n: int = 2, m: int = 4) -> None:
    """Raise ValueError naming the first row/group with more than n non-zeros among m consecutive inputs."""
    counts = (_groups(weight, m) != 0).sum(dim=-1)
    bad = (counts > n).nonzero()
    if len(bad):
        row, group = (int(v) for v in bad[0])
        raise ValueError(
            f"weight {tuple(weight.shape)} is not {n}:{m} sparse: row {row}, group {group} "
            f"(columns {group * m}..{group * m + m - 1}) has {int(counts[row, group])} non-zeros, at most {n} "
            f"allowed ({len(bad)} violating groups in total)"
        )


def is_nm_sparse(weight: torch.Tensor, n: int = 2, m: int = 4) -> bool:
    """True when every group of m consecutive inputs holds at most n non-zeros (padding counts as zero)."""
    return bool(((_groups(weight, m) != 0).sum(dim=-1) <= n).all())


@dataclass(frozen=True)
class NMCompressed:
    """Kept values [out, groups*n] and their in-group positions [out, groups*n] (uint8) of an N:M weight."""

    values: torch.Tensor
    indices: torch.Tensor
    shape: tuple[int, int]
    n: int
    m: int


def compress_nm(weight: torch.Tensor, n: int = 2, m: int = 4) -> NMCompressed:
    """Keep n entries per group (the non-zeros, topped up with zeros by position); rejects non-N:M weights."""
    check_nm_sparse(weight, n, m)
    groups = _groups(weight, m)
    nonzero_first = torch.argsort((groups == 0).to(torch.int8), dim=-1, stable=True)[..., :n]
    indices = nonzero_first.sort(dim=-1).values
    values = groups.gather(-1, indices)
    out = weight.shape[0]
    return NMCompressed(
        values=values.reshape(out, -1),
        indices=indices.reshape(out, -1).to(torch.uint8),
        shape=(out, weight.shape[1]),
        n=n,
        m=m,
    )


def decompress_nm(c: NMCompressed) -> torch.Tensor:
    """Exact inverse of ``compress_nm``."""
    out, in_features = c.shape
    values = c.values.reshape(out, -1, c.n)
    groups = torch.zeros(out, values.shape[1], c.m, dtype=values.dtype, device=values.device)
    groups.scatter_(-1, c.indices.reshape(out, -1, c.n).long(), values)
    return groups.reshape(out, -1)[:, :in_features]


def compressed_nbytes(c: NMCompressed) -> int:
    """Bytes held by the compressed form (values plus one byte per index)."""
    return c.values.numel() * c.values.element_size() + c.indices.numel() * c.indices.element_size()


def to_semi_structured(weight: torch.Tensor) -> torch.Tensor:
    """``torch.sparse.to_sparse_semi_structured`` for a 2:4 weight, or a RuntimeError saying what is missing.

    PyTorch's 2:4 kernels need a CUDA tensor on compute capability 8.0+ in fp16/bf16/int8; CPU has none.
    """
    missing = []
    if not torch.cuda.is_available():
        missing.append("a CUDA device (torch.cuda.is_available() is False)")
    elif not weight.is_cuda:
        missing.append(f"the weight on CUDA (it is on {weight.device})")
    elif torch.cuda.get_device_capability(weight.device) < (8, 0):
        missing.append(f"compute capability >= 8.0 (got {torch.cuda.get_device_capability(weight.device)})")
    if weight.dtype not in SEMI_STRUCTURED_DTYPES:
        missing.append(f"dtype float16, bfloat16 or int8 (got {weight.dtype})")
    if missing:
        raise RuntimeError("cannot build a semi-structured 2:4 tensor: needs " + "; ".join(missing))
    check_nm_sparse(weight, 2, 4)
    return torch.sparse.to_sparse_semi_structured(weight)


def export_masked_weights(module: nn.Module) -> dict[str, torch.Tensor]:
    """Deterministic per-mask pruned dense weights [n_masks, out, in] of every masked layer, keyed by module name."""
    return {
        name: layer.masked_weights().detach()
        for name, layer in module.named_modules()
        if isinstance(layer, MaskedLinearBase)
    }
