"""PRIME's random diffeomorphism primitive: a smooth displacement field, zero on the border,
with Petrini et al.'s natural temperatures (see :mod:`.prime`).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ._sampling import randint

def diffeo_temperature_range(size: float, cut: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Petrini et al.'s natural temperatures for an image of side ``size`` and cut-off ``cut``:
    ``T_min = 1 / (pi size^2 log c)`` (displacements of about a pixel), ``T_max = 4 / (pi^3 c^2
    log c)`` (the largest without folding). ``T_min`` is capped at ``T_max``."""
    cut = cut.to(torch.float64)
    log = torch.log(cut)
    t_max = 4.0 / (math.pi ** 3 * cut ** 2 * log)
    t_min = torch.minimum(1.0 / (math.pi * float(size) ** 2 * log), t_max)
    return t_min, t_max


def sample_displacement(n: int, height: int, width: int, generator: torch.Generator, *,
                        cut: int = 500, cut_min: int = 2, temperature: float | None = None,
                        max_displacement: float = 0.125, device: torch.device | str = "cpu",
                        dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Displacement fields ``(n, 2, height, width)``: channel 0 along x as a fraction of the
    width, channel 1 along y as a fraction of the height. Zero on the border; its largest
    absolute value never exceeds ``max_displacement``. The coefficients are drawn on the CPU;
    the field is summed on ``device`` in ``dtype``."""
    cuts = randint(generator, cut_min, cut, (n,))
    if temperature is None:
        t_min, t_max = diffeo_temperature_range(math.sqrt(height * width), cuts)
        temps = t_min + (t_max - t_min) * torch.rand(n, generator=generator, dtype=torch.float64)
    else:
        temps = torch.full((n,), float(temperature), dtype=torch.float64)
    k = int(cuts.max())
    i = torch.arange(1, k + 1, dtype=torch.float64)
    radius2 = i[:, None] ** 2 + i[None, :] ** 2
    inside = radius2[None] <= (cuts.to(torch.float64) ** 2).view(n, 1, 1)
    scale = torch.sqrt(temps).view(n, 1, 1) / torch.sqrt(radius2)[None] * inside
    coeffs = torch.randn((n, 2, k, k), generator=generator, dtype=torch.float64) * scale[:, None]
    coeffs = coeffs.to(device=device, dtype=dtype)
    freqs = math.pi * torch.arange(1, k + 1, device=device, dtype=dtype)
    sin_y = torch.sin(freqs[:, None] * torch.linspace(0.0, 1.0, height, device=device, dtype=dtype))
    sin_x = torch.sin(freqs[:, None] * torch.linspace(0.0, 1.0, width, device=device, dtype=dtype))
    # field[n, a, y, x] = sum_ij coeffs[n, a, i, j] sin(i pi y) sin(j pi x): two matrix products
    field = sin_y.t() @ (coeffs @ sin_x)
    peak = field.abs().amax(dim=(1, 2, 3)).clamp_min(1e-30)
    field = field * torch.clamp(max_displacement / peak, max=1.0).view(n, 1, 1, 1)
    return field.clamp_(-max_displacement, max_displacement)  # rounding cannot overshoot


def apply_displacement(x: torch.Tensor, field: torch.Tensor) -> torch.Tensor:
    """``out(p) = x(p + field(p))`` with bilinear interpolation (border values outside)."""
    n, _, h, w = x.shape
    field = field.to(device=x.device, dtype=x.dtype)
    ys = torch.linspace(-1.0, 1.0, h, device=x.device, dtype=x.dtype)
    xs = torch.linspace(-1.0, 1.0, w, device=x.device, dtype=x.dtype)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    # a fraction f of the side is 2f in grid_sample's [-1, 1] coordinates (align_corners=True)
    grid = torch.stack((grid_x + 2 * field[:, 0], grid_y + 2 * field[:, 1]), dim=-1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=True)


def random_diffeomorphism(x: torch.Tensor, generator: torch.Generator, *, cut: int = 500,
                          cut_min: int = 2, temperature: float | None = None,
                          max_displacement: float = 0.125) -> torch.Tensor:
    """The random diffeomorphism primitive on a batch in [0, 1] (output clamped to [0, 1])."""
    field = sample_displacement(x.shape[0], x.shape[2], x.shape[3], generator, cut=cut,
                                cut_min=cut_min, temperature=temperature,
                                max_displacement=max_displacement, device=x.device, dtype=x.dtype)
    return apply_displacement(x, field).clamp_(0.0, 1.0)
