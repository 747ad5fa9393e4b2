"""The torch backend's noise corruptions: gaussian, shot, impulse and (hold-out) speckle noise.

Torch registry contract (``_registry``): float32 (N, 3, H, W) in [0, 255], one Philox stream per
image (``_torch_samplers``), result in [0, 255]. See ``_torch`` for the front doors.
"""
from __future__ import annotations

import torch

from . import _torch_ops as T
from . import _torch_samplers as S
from ._params import GAUSSIAN_NOISE_STD, IMPULSE_NOISE_AMOUNT, SHOT_NOISE_PHOTONS, SPECKLE_NOISE_STD
from ._registry import register_torch_corruption



@register_torch_corruption
def gaussian_noise(x, severity, rng):
    """Additive Gaussian noise on [0, 1] intensities."""
    noise = S.pixel_randn(rng, x.shape[1:]) * GAUSSIAN_NOISE_STD[severity - 1]
    return T.unit_to_255(noise.add_(x / 255))


@register_torch_corruption
def shot_noise(x, severity, rng):
    """Poisson (photon) noise: counts of rate x / 255 * photons, exact inversion on the device
    (``PhiloxStreams.poisson_uint8_levels``)."""
    photons = SHOT_NOISE_PHOTONS[severity - 1]
    drawn = S.poisson(rng, x, photons).to(torch.float32)
    return T.unit_to_255(drawn.div_(photons))


@register_torch_corruption
def impulse_noise(x, severity, rng):
    """Salt and pepper: each value hit with probability ``amount``, then 1 or 0 with probability
    1/2 each (scikit-image 0.26's distribution, one uniform draw per value, as the numpy
    backend)."""
    amount = IMPULSE_NOISE_AMOUNT[severity - 1]
    uniform = S.pixel_rand(rng, x.shape[1:])
    # Hit values become pepper, then the salt half of them (uniform < amount / 2) salt: two
    # masked fills instead of two wheres and a range test over the whole batch.
    return x.masked_fill(uniform < amount, 0.0).masked_fill_(uniform < amount / 2, 255.0)


@register_torch_corruption
def speckle_noise(x, severity, rng):
    """Multiplicative Gaussian noise: x + x * N(0, c)."""
    unit = x / 255
    noise = S.pixel_randn(rng, x.shape[1:]) * SPECKLE_NOISE_STD[severity - 1]
    return T.unit_to_255(noise.mul_(unit).add_(unit))
