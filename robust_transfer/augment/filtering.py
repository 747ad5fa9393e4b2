"""PRIME's random filter primitive: convolution with ``delta + w``, a random zero-mean kernel
part, so the filter changes the spectrum but keeps the DC component (see :mod:`.prime`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ._chunks import in_chunks
from ._sampling import uniform

def sample_filter_kernels(n: int, channels: int, generator: torch.Generator, *,
                          kernel_size: int = 3, sigma: float = 4.0, sigma_min: float = 0.0,
                          per_channel: bool = False) -> torch.Tensor:
    """Per image (and channel when ``per_channel``): ``delta + w`` with ``w`` zero-mean Gaussian
    of standard deviation ``s / k``, ``s ~ U[sigma_min, sigma]``. Shape ``(n, channels or 1, k, k)``,
    float64; every kernel's taps sum to 1."""
    k = int(kernel_size)
    strength = uniform(generator, n, sigma_min, sigma)
    noise = torch.randn((n, channels if per_channel else 1, k, k), generator=generator,
                        dtype=torch.float64)
    noise = noise * (strength / k).view(n, 1, 1, 1)
    noise = noise - noise.mean(dim=(-2, -1), keepdim=True)
    noise[..., k // 2, k // 2] += 1.0
    return noise


def apply_filters(x: torch.Tensor, kernels: torch.Tensor, padding: str = "reflect") -> torch.Tensor:
    """Convolve image ``i`` (each channel) with ``kernels[i]`` (``(n, 1 or C, k, k)``); output the
    size of the input (no clamping). ``padding``: reflect, replicate, circular or zeros."""
    n, c, h, w = x.shape
    k = kernels.shape[-1]
    weight = kernels.to(device=x.device, dtype=x.dtype).expand(n, c, k, k).reshape(n * c, 1, k, k)
    r = k // 2
    flat = x.reshape(1, n * c, h, w)
    if r:
        mode = padding
        if mode == "reflect" and r >= min(h, w):
            mode = "replicate"  # reflect needs the pad to be smaller than the image
        flat = F.pad(flat, (r, r, r, r), mode="constant" if mode == "zeros" else mode)
    return F.conv2d(flat, weight, groups=n * c).view(n, c, h, w)


def random_filter(x: torch.Tensor, generator: torch.Generator, *, kernel_size: int = 3,
                  sigma: float = 4.0, sigma_min: float = 0.0, padding: str = "reflect",
                  per_channel: bool = False) -> torch.Tensor:
    """The random filter primitive on a batch in [0, 1] (output clamped to [0, 1])."""
    kernels = sample_filter_kernels(x.shape[0], x.shape[1], generator, kernel_size=kernel_size,
                                    sigma=sigma, sigma_min=sigma_min, per_channel=per_channel)
    return in_chunks(x, lambda xs, ks: apply_filters(xs, ks, padding), kernels).clamp_(0.0, 1.0)
