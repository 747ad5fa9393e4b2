"""The torch backend's random numbers: every draw of a corruption goes through one of these.

Each is one draw call of the batch's Philox streams (``_philox``) and returns (N, ...) on the
streams' device. Corruptions call them through this module (``S.randn(...)``), so a test can
replace them here to replay the reference's RandomState draws (tests/test_corruptions_torch.py,
bench/fidelity_torch_backend.py).
"""
from __future__ import annotations

import torch

from ._philox import PhiloxStreams



def randn(rng: PhiloxStreams, shape) -> torch.Tensor:
    """Standard normal numbers, (N, *shape)."""
    return rng.normal(shape)


def rand(rng: PhiloxStreams, shape) -> torch.Tensor:
    """Uniform numbers in [0, 1), (N, *shape)."""
    return rng.uniform(shape)


def pixel_randn(rng: PhiloxStreams, shape) -> torch.Tensor:
    """Standard normal noise for images of ``shape`` (3, H, W)."""
    return rng.normal(shape)


def pixel_rand(rng: PhiloxStreams, shape) -> torch.Tensor:
    """Uniform [0, 1) noise for images of ``shape`` (3, H, W)."""
    return rng.uniform(shape)


def randint_array(rng: PhiloxStreams, low: int, high: int, shape) -> torch.Tensor:
    """Integers in [low, high), (N, *shape)."""
    return rng.integers(low, high, shape)


def uniform_scalar(rng: PhiloxStreams, low: float, high: float) -> list[float]:
    """One uniform number in [low, high) per image (float64), as Python floats."""
    return (low + (high - low) * rng.uniform((), dtype=torch.float64)).tolist()


def randint(rng: PhiloxStreams, high, low: int = 0) -> list[int]:
    """One integer in [low, high) per image; ``high`` may differ per image (a sequence)."""
    return rng.integers(low, high).tolist()


def poisson(rng: PhiloxStreams, levels: torch.Tensor, photons: float) -> torch.Tensor:
    """Poisson counts of rate ``levels / 255 * photons`` per value (exact in distribution)."""
    return rng.poisson_uint8_levels(levels, photons)
