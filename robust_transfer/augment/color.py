"""PRIME's smooth random colour primitive: each channel through a random smooth curve
``x + sum_k b_k sin(k pi x)`` over a band of consecutive frequencies (see :mod:`.prime`).
"""
from __future__ import annotations

import math

import torch

from ._chunks import in_chunks
from ._sampling import randint, uniform

def sample_color_params(n: int, channels: int, generator: torch.Generator, *, cut: int = 500,
                        temperature: float = 0.05, temperature_min: float = 0.0,
                        bandwidth: int | None = 20) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image: the lowest frequency of its band, ``(n,)`` int64, and the Fourier coefficients,
    ``(n, channels, B)`` float64 (zero beyond the image's band), ``B = bandwidth or cut``."""
    band = cut if bandwidth is None else min(int(bandwidth), int(cut))
    top = randint(generator, 1, cut, (n,))
    low = (top - band + 1).clamp_min(1)
    count = top - low + 1
    strength = uniform(generator, n, temperature_min, temperature)
    coeffs = torch.randn((n, channels, band), generator=generator, dtype=torch.float64)
    active = torch.arange(band)[None, :] < count[:, None]
    coeffs = coeffs * strength[:, None, None] * active[:, None, :]
    return low, coeffs


#: Sample points of the colour curves' lookup table minus one: a multiple of 255, so that
#: every 8-bit level k/255 is a sample point (exact), and 32 samples per level in between.
COLOR_LUT_INTERVALS = 255 * 32


def _band_sines(values: torch.Tensor, low: torch.Tensor, band: int) -> torch.Tensor:
    """``sin((low[n] + b) pi v)`` for b < ``band``: ``(n, band, *values.shape[1:])`` from
    ``values`` of shape ``(n or 1, ...)``, float64. Two sine evaluations per value, the rest by
    the recurrence ``sin((k+1)t) = 2 cos(t) sin(kt) - sin((k-1)t)`` (stable for real t)."""
    t = math.pi * values.to(torch.float64)
    k0 = low.to(device=values.device, dtype=torch.float64).view(-1, *([1] * (values.ndim - 1)))
    previous, current = torch.sin((k0 - 1) * t), torch.sin(k0 * t)
    two_cos = 2 * torch.cos(t)
    rows = []
    for _ in range(band):
        rows.append(current)
        previous, current = current, two_cos * current - previous
    return torch.stack(rows, dim=1)


def color_curves(points: torch.Tensor, low: torch.Tensor, coeffs: torch.Tensor) -> torch.Tensor:
    """The curves ``v + sum_b coeffs[n, c, b] sin((low[n] + b) pi v)`` at ``points`` (P,):
    ``(n, C, P)`` float64."""
    points = points.to(torch.float64)
    sines = _band_sines(points.view(1, -1), low, coeffs.shape[2])  # (n, B, P)
    return points + torch.bmm(coeffs.to(torch.float64), sines)


def apply_color_curves(x: torch.Tensor, low: torch.Tensor, coeffs: torch.Tensor, *,
                       lut_intervals: int | None = COLOR_LUT_INTERVALS) -> torch.Tensor:
    """Channel ``c`` of image ``n`` through its curve (no clamping).

    The curve is tabulated at ``lut_intervals + 1`` equally spaced intensities (float64) and
    interpolated linearly: exact at the sample points (all 8-bit levels by default, and 0 and 1),
    within about 1e-3 elsewhere for the default band, and its cost does not grow with the band.
    ``lut_intervals=None`` evaluates the curves at every pixel instead (float64; exact, slower).
    """
    n, c, h, w = x.shape
    if lut_intervals is None:
        values = x.reshape(n, c * h * w)
        sines = _band_sines(values, low, coeffs.shape[2]).view(n, -1, c, h * w)  # (n, B, C, HW)
        weights = coeffs.to(device=x.device, dtype=torch.float64)
        out = values.to(torch.float64).view(n, c, h * w) + torch.einsum("ncb,nbcp->ncp", weights, sines)
        return out.to(x.dtype).view(n, c, h, w)
    points = torch.linspace(0.0, 1.0, lut_intervals + 1, dtype=torch.float64)
    curves = color_curves(points, low, coeffs.to(torch.float64)).reshape(n * c, lut_intervals + 1)
    table = curves.to(device=x.device, dtype=x.dtype)
    slope = (curves[:, 1:] - curves[:, :-1]).to(device=x.device, dtype=x.dtype)
    position = x.reshape(n * c, h * w).clamp(0.0, 1.0).mul_(lut_intervals)
    index = position.long().clamp_(max=lut_intervals - 1)  # truncation = floor (position >= 0)
    frac = position.sub_(index)
    out = torch.gather(table, 1, index).addcmul_(torch.gather(slope, 1, index), frac)
    return out.view(n, c, h, w)


def random_smooth_color(x: torch.Tensor, generator: torch.Generator, *, cut: int = 500,
                        temperature: float = 0.05, temperature_min: float = 0.0,
                        bandwidth: int | None = 20) -> torch.Tensor:
    """The smooth random colour primitive on a batch in [0, 1] (output clamped to [0, 1])."""
    low, coeffs = sample_color_params(x.shape[0], x.shape[1], generator, cut=cut,
                                      temperature=temperature, temperature_min=temperature_min,
                                      bandwidth=bandwidth)
    return in_chunks(x, apply_color_curves, low, coeffs).clamp_(0.0, 1.0)
