"""The torch backend's digital corruptions: contrast, elastic transform, pixelate and (hold-out)
saturate; jpeg_compression has its own module (``_torch_jpeg``).

Torch registry contract (``_registry``): float32 (N, 3, H, W) in [0, 255] (uint8 for the
corruptions marked ``uint8_in_out``), one Philox stream per image (``_torch_samplers``), result
in [0, 255]. See ``_torch`` for the front doors.
"""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from . import _torch_geometry as G
from . import _torch_ops as T
from . import _torch_samplers as S
from . import _torch_threads as cpu
from ._params import (
    CONTRAST_FACTOR,
    ELASTIC_ALPHA,
    ELASTIC_MAX_SHIFT_FRACTION,
    ELASTIC_SIGMA_FRACTION,
    ELASTIC_TRUNCATE,
    PIXELATE_SCALE,
    SATURATE_PARAMS,
)
from ._registry import register_torch_corruption
from ._torch_pillow import pil_pixelate



@register_torch_corruption
def contrast(x, severity, rng):
    """Pull every channel towards its mean."""
    unit = x / 255
    means = unit.mean(dim=(2, 3), keepdim=True)
    return T.unit_to_255((unit - means) * CONTRAST_FACTOR[severity - 1] + means)


@register_torch_corruption
def elastic_transform(x, severity, rng):
    """Smooth random displacement field (uniform noise, Gaussian filter with scipy's 'reflect'
    border and 3 sigma) applied by bilinear resampling with scipy's 'reflect' border."""
    height, width = x.shape[-2:]
    sigma = (height * ELASTIC_SIGMA_FRACTION, width * ELASTIC_SIGMA_FRACTION)
    alpha = ELASTIC_ALPHA[severity - 1]
    max_shift = height * ELASTIC_MAX_SHIFT_FRACTION
    fields = S.rand(rng, (2, height, width))  # dx, then dy
    fields = fields.mul_(2 * max_shift).sub_(max_shift)
    fields = T.gaussian_filter(fields, sigma, mode="reflect", truncate=ELASTIC_TRUNCATE).mul_(alpha)
    warped = G.remap_bilinear_reflect(x / 255, fields[:, 1], fields[:, 0])
    return T.unit_to_255(warped)


@register_torch_corruption
@T.uint8_in_out
def pixelate(x, severity, rng):
    """Pillow's BOX downsample and NEAREST upsample: on the CPU Pillow itself, one image per
    task in the CPU threads (about 2x faster than the tensor form here); elsewhere the
    bit-exact torch re-implementation. The same bytes either way (tested)."""
    scale = PIXELATE_SCALE[severity - 1]
    height, width = x.shape[-2:]
    small_size = (int(width * scale), int(height * scale))
    if x.device.type != "cpu":
        return pil_pixelate(x, small_size)
    return cpu.pillow_per_image(x, lambda image: np.asarray(
        Image.fromarray(image).resize(small_size, Image.BOX).resize((width, height),
                                                                    Image.NEAREST)))


def _saturation_closed_form(unit: torch.Tensor, factor: float, offset: float) -> torch.Tensor:
    """hsv2rgb(h, clip(s * factor + offset, 0, 1), v) of rgb2hsv(unit), in closed form.

    With hue and value fixed, every channel is v - s * v * k(hue): so for coloured pixels
    rgb' = v - s' v (v - rgb) / (v - min). Grey pixels (v == min) have hue 0 in scikit-image,
    so they become (v, v (1 - s'), v (1 - s')).
    """
    value, spread = T.hsv_value(unit)
    saturation = torch.where(value > 0, spread / torch.where(value > 0, value, 1.0), 0.0)
    saturation = torch.where(spread > 0, saturation, 0.0)
    new_saturation = (saturation * factor + offset).clamp_(0, 1)
    safe_spread = torch.where(spread > 0, spread, 1.0)
    coloured = value - new_saturation * value * (value - unit) / safe_spread
    grey_rest = value * (1 - new_saturation)
    grey = torch.cat([value, grey_rest, grey_rest], dim=1)
    return torch.where(spread > 0, coloured, grey)


@register_torch_corruption
def saturate(x, severity, rng):
    """Scale (and offset) the HSV saturation (closed form, see ``_saturation_closed_form``)."""
    factor, offset = SATURATE_PARAMS[severity - 1]
    return T.unit_to_255(_saturation_closed_form(x / 255, factor, offset))
