"""PRIME's random draws: every draw comes from an explicit CPU ``torch.Generator`` (float64),
so a seed gives the same parameters on the CPU and a GPU and no global random state is touched.
"""
from __future__ import annotations

import math

import torch


def make_generator(seed: int | None = None, generator: torch.Generator | None = None) -> torch.Generator:
    """``generator`` itself, or a new CPU generator seeded with ``seed`` (default 0)."""
    if generator is not None:
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        return generator
    return torch.Generator().manual_seed(int(seed or 0) % 2**63)


def uniform(generator: torch.Generator, n: int, low: float, high: float) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator, dtype=torch.float64)


def randint(generator: torch.Generator, low: int, high: int, shape) -> torch.Tensor:
    """Integers uniform in ``low..high`` (inclusive)."""
    return torch.randint(int(low), int(high) + 1, tuple(shape), generator=generator)


def gamma(generator: torch.Generator, alpha: float, shape) -> torch.Tensor:
    """Gamma(alpha, 1) samples from ``generator`` (Marsaglia & Tsang; alpha < 1 by boosting)."""
    shape = tuple(shape)
    boost = alpha < 1.0
    a = alpha + 1.0 if boost else alpha
    d = a - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    out = torch.empty(shape, dtype=torch.float64).view(-1)
    todo = torch.arange(out.numel())
    while todo.numel():
        z = torch.randn(todo.numel(), generator=generator, dtype=torch.float64)
        u = torch.rand(todo.numel(), generator=generator, dtype=torch.float64)
        v = (1.0 + c * z) ** 3
        ok = (v > 0) & (torch.log(u.clamp_min(1e-300)) < 0.5 * z * z + d - d * v
                        + d * torch.log(v.clamp_min(1e-300)))
        out[todo[ok]] = d * v[ok]
        todo = todo[~ok]
    if boost:
        u = torch.rand(out.numel(), generator=generator, dtype=torch.float64)
        out = out * u.clamp_min(1e-300) ** (1.0 / alpha)
    return out.view(shape)


def dirichlet(generator: torch.Generator, alpha: float, n: int, k: int) -> torch.Tensor:
    """``n`` draws of a symmetric Dirichlet(alpha) over ``k`` components, float64 (n, k)."""
    if alpha == 1.0:  # normalised exponentials
        g = -torch.log(torch.rand((n, k), generator=generator, dtype=torch.float64).clamp_min(1e-300))
    else:
        g = gamma(generator, alpha, (n, k))
    return g / g.sum(dim=1, keepdim=True).clamp_min(1e-300)


def beta(generator: torch.Generator, alpha: float, n: int) -> torch.Tensor:
    """``n`` draws of Beta(alpha, alpha), float64."""
    if alpha == 1.0:
        return torch.rand(n, generator=generator, dtype=torch.float64)
    return dirichlet(generator, alpha, n, 2)[:, 0]
