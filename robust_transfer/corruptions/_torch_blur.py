"""The torch backend's blur corruptions: defocus, glass, motion, zoom and (hold-out) gaussian blur.

Torch registry contract (``_registry``): float32 (N, 3, H, W) in [0, 255], one Philox stream per
image (``_torch_samplers``), result in [0, 255]. See ``_torch`` for the front doors.
"""
from __future__ import annotations

import torch

from . import _helpers as H
from . import _torch_geometry as G
from . import _torch_ops as T
from . import _torch_samplers as S
from ._params import (
    DEFOCUS_BLUR_PARAMS,
    GAUSSIAN_BLUR_SIGMA,
    GLASS_BLUR_PARAMS,
    MOTION_BLUR_ANGLE_RANGE,
    MOTION_BLUR_PARAMS,
    ZOOM_BLUR_FACTORS,
)
from ._registry import register_torch_corruption



@register_torch_corruption
def gaussian_blur(x, severity, rng):
    """Gaussian blur of each channel (scipy's filter, mode 'nearest', 4 sigma)."""
    return T.unit_to_255(T.gaussian_filter(x / 255, GAUSSIAN_BLUR_SIGMA[severity - 1]))


@register_torch_corruption
def glass_blur(x, severity, rng):
    """Blur, quantise to 8 bits, shuffle pixels locally (the reference's sequential shuffle,
    resolved exactly in parallel by ``glass_shuffle_sources``), blur again."""
    sigma, max_delta, iterations = GLASS_BLUR_PARAMS[severity - 1]
    count, channels, height, width = x.shape
    blurred = T.gaussian_filter(x / 255, sigma).mul_(255).trunc_().clamp_(0, 255)
    shape = (iterations, max(0, height - 2 * max_delta), max(0, width - 2 * max_delta), 2)
    draws = S.randint_array(rng, -max_delta, max_delta, shape)
    sources = G.glass_shuffle_sources(height, width, max_delta, draws)
    shuffled = torch.gather(blurred.reshape(count, channels, -1), 2,
                            sources[:, None, :].expand(-1, channels, -1)).reshape(x.shape)
    return T.unit_to_255(T.gaussian_filter(shuffled.div_(255), sigma))


@register_torch_corruption
def defocus_blur(x, severity, rng):
    """Convolution with the reference's anti-aliased disk (OpenCV border REFLECT_101)."""
    radius, alias_blur = DEFOCUS_BLUR_PARAMS[severity - 1]
    return T.unit_to_255(T.filter2d_reflect101(x / 255, H.disk_kernel(radius, alias_blur)))


@register_torch_corruption
def motion_blur(x, severity, rng):
    """Linear motion blur, each image at its own random angle in [-45, 45) degrees."""
    radius, sigma = MOTION_BLUR_PARAMS[severity - 1]
    angles = S.uniform_scalar(rng, *MOTION_BLUR_ANGLE_RANGE)
    return G.motion_blur(x, radius, sigma, angles).clamp_(0, 255)


@register_torch_corruption
def zoom_blur(x, severity, rng):
    """Average of the image and centre zooms of it (radial blur)."""
    factors = ZOOM_BLUR_FACTORS[severity - 1]
    # Channels-last: torch's bilinear resize of a cropped view is ~3x faster in this layout.
    unit = torch.div(x, 255, out=torch.empty_like(x, memory_format=torch.channels_last))
    accumulated = torch.zeros_like(unit)
    for factor in factors:
        if factor == 1:  # the resize by 1 samples every pixel with weight 1: the image itself
            accumulated += unit
        else:
            accumulated += G.clipped_zoom(unit, factor, crop_to_input=True)
    # unit + accumulated, in place (the same sum: IEEE addition commutes exactly).
    mean = accumulated.add_(unit).div_(len(factors) + 1)
    return T.unit_to_255(mean).contiguous()
