"""The torch backend's weather corruptions: snow, frost, fog, brightness and (hold-out) spatter.

Torch registry contract (``_registry``): float32 (N, 3, H, W) in [0, 255], one Philox stream per
image (``_torch_samplers``), result in [0, 255]. See ``_torch`` for the front doors.
"""
from __future__ import annotations

import numpy as np
import torch

from . import _helpers as H
from . import _torch_geometry as G
from . import _torch_ops as T
from . import _torch_samplers as S
from . import _torch_threads as cpu
from ._numpy import water_spatter_mask
from ._params import (
    BRIGHTNESS_SHIFT,
    FOG_PARAMS,
    FROST_PARAMS,
    FROST_TEXTURES_DRAWN,
    SNOW_ANGLE_RANGE,
    SNOW_PARAMS,
    SPATTER_MUD_COLOUR,
    SPATTER_PARAMS,
    SPATTER_WATER_COLOUR,
)
from ._registry import register_torch_corruption
from ._torch_spatter import water_spatter_masks



@register_torch_corruption
def snow(x, severity, rng):
    """Snow flakes (thresholded, zoomed noise, motion-blurred) over a brightened image."""
    mean, std, zoom, threshold, radius, sigma, image_weight = SNOW_PARAMS[severity - 1]
    height, width = x.shape[-2:]
    flakes = S.randn(rng, (1, height, width)).mul_(std).add_(mean)
    angles = S.uniform_scalar(rng, *SNOW_ANGLE_RANGE)
    # As the reference: blur the whole zoomed layer (larger than the image), crop afterwards.
    flakes = G.clipped_zoom(flakes, zoom, crop_to_input=False)
    flakes = torch.where(flakes < threshold, 0.0, flakes).clamp_(0, 1)
    flakes = G.motion_blur(flakes, radius, sigma, angles)
    flakes = torch.round(flakes * 255) / 255  # the reference quantises the layer to 8 bits
    flakes = flakes[..., :height, :width]

    unit = x / 255
    grey = 0.299 * unit[:, 0:1] + 0.587 * unit[:, 1:2] + 0.114 * unit[:, 2:3]  # cv2 RGB2GRAY
    unit = image_weight * unit + (1 - image_weight) * torch.maximum(unit, grey * 1.5 + 0.5)
    return T.unit_to_255(unit + flakes + torch.flip(flakes, dims=(-2, -1)))


@register_torch_corruption
def frost(x, severity, rng):
    """Blend with a random crop of a photograph of frost on glass (the reference's textures,
    enlarged by the same cv2.resize, cached per image size and device)."""
    image_weight, frost_weight = FROST_PARAMS[severity - 1]
    height, width = x.shape[-2:]
    indices = S.randint(rng, [FROST_TEXTURES_DRAWN] * rng.count)
    sizes = [_frost_texture(index, height, width).shape[:2] for index in range(FROST_TEXTURES_DRAWN)]
    tops = S.randint(rng, [sizes[index][0] - height for index in indices])
    lefts = S.randint(rng, [sizes[index][1] - width for index in indices])
    out = _frost_crops(indices, tops, lefts, height, width, x.device).mul_(frost_weight)
    return out.add_(x, alpha=image_weight).clamp_(0, 255)


def _frost_crops(indices, tops, lefts, height: int, width: int, device,
                 gather=None) -> torch.Tensor:
    """(N, 3, height, width): texture indices[i] cropped at (tops[i], lefts[i]). On a GPU all
    images in one gather from the stacked textures (one kernel instead of one copy per image);
    on the CPU a copy of each crop is cheaper than building the gather's indices. ``gather``
    (True/False) overrides that choice."""
    stacked = _frost_stack(height, width, str(device))
    if not (torch.device(device).type != "cpu" if gather is None else gather):
        return torch.stack([stacked[index, :, top:top + height, left:left + width]
                            for index, top, left in zip(indices, tops, lefts)])
    count = len(indices)
    pick = torch.tensor(indices, device=device).view(count, 1, 1, 1)
    rows = (torch.tensor(tops, device=device).view(count, 1)
            + torch.arange(height, device=device)).view(count, 1, height, 1)
    cols = (torch.tensor(lefts, device=device).view(count, 1)
            + torch.arange(width, device=device)).view(count, 1, 1, width)
    channels = torch.arange(3, device=device).view(1, 3, 1, 1)
    return stacked[pick, channels, rows, cols]


def _frost_stack(height: int, width: int, device: str) -> torch.Tensor:
    """The drawable textures enlarged for height x width, zero-padded to a common size and
    stacked, float32 (FROST_TEXTURES_DRAWN, 3, h, w) on ``device`` (cached per size and device;
    crops stay inside each texture's own area, so the padding is never read)."""
    cache_key = (height, width, device)
    if cache_key not in _FROST_CACHE:
        if len(_FROST_CACHE) >= 4:
            _FROST_CACHE.clear()
        textures = [_frost_texture(index, height, width) for index in range(FROST_TEXTURES_DRAWN)]
        stacked = torch.zeros((len(textures), 3) + tuple(max(t.shape[d] for t in textures)
                                                         for d in (0, 1)), device=device)
        for index, texture in enumerate(textures):
            tensor = torch.from_numpy(np.ascontiguousarray(texture.transpose(2, 0, 1)))
            stacked[index, :, :texture.shape[0], :texture.shape[1]] = tensor.to(
                device=device, dtype=torch.float32)
        _FROST_CACHE[cache_key] = stacked
    return _FROST_CACHE[cache_key]


_FROST_CACHE: dict = {}


def _frost_texture(index: int, height: int, width: int) -> np.ndarray:
    """Frost texture ``index`` enlarged for height x width, RGB uint8 (h, w, 3) (cached in
    ``_helpers``; the package is checked on every call)."""
    return H.frost_texture_for_image(index, height, width)


@register_torch_corruption
def fog(x, severity, rng):
    """Add a plasma-fractal haze (batched diamond-square in torch) and rescale so the brightest
    value keeps its level."""
    strength, wibble_decay = FOG_PARAMS[severity - 1]
    height, width = x.shape[-2:]
    map_size = H.next_power_of_two(int(max(height, width, 3)))
    haze = plasma_fractal(map_size, wibble_decay,
                            lambda shape: S.rand(rng, shape))
    unit = x / 255
    max_val = unit.amax(dim=(1, 2, 3), keepdim=True)
    unit = unit + strength * haze[:, None, :height, :width]
    return T.unit_to_255(unit * max_val / (max_val + strength))


@register_torch_corruption
def brightness(x, severity, rng):
    """Raise the HSV value channel, in closed form: with hue and saturation fixed, RGB scales
    with the value, so rgb' = v' - (v - rgb) v' / v (black pixels become grey v'). Equals
    scikit-image's rgb2hsv -> hsv2rgb round trip up to float rounding."""
    unit = x / 255
    value, _ = T.hsv_value(unit)
    new_value = (value + BRIGHTNESS_SHIFT[severity - 1]).clamp_(0, 1)
    ratio = new_value / torch.where(value > 0, value, 1.0)
    out = torch.where(value > 0, new_value - (value - unit) * ratio, new_value)
    return T.unit_to_255(out)


@register_torch_corruption
def spatter(x, severity, rng):
    """Water drops (severities 1-3) or mud (4-5). The liquid layer and mud are torch. The water
    drops' shading (Canny edges, distance transform, histogram equalisation, emboss) is, on a
    GPU, the batched tensor code of ``_torch_spatter`` on the images' device; on the CPU (and
    MPS, which has no float64) the numpy backend's OpenCV code, the images in parallel threads:
    there it is ~10x faster (two 480x640 images on one thread: ~6 ms, the tensor code ~55 ms).
    Both give the same float32 mask bit for bit (tests/test_torch_spatter.py), so the bytes do
    not depend on the device."""
    mean, std, blur, threshold, strength, is_mud = SPATTER_PARAMS[severity - 1]
    height, width = x.shape[-2:]
    liquid = S.randn(rng, (1, height, width)).mul_(std).add_(mean)
    liquid = T.gaussian_filter(liquid, blur)
    liquid = torch.where(liquid < threshold, 0.0, liquid)
    unit = x / 255
    if is_mud:
        mask = T.gaussian_filter((liquid > threshold).float(), strength)
        mask = torch.where(mask < 0.8, 0.0, mask)
        mud = torch.tensor(SPATTER_MUD_COLOUR, device=x.device).view(1, 3, 1, 1)
        return T.unit_to_255(unit * (1 - mask) + mud * mask)
    if x.device.type not in ("cpu", "mps"):
        mask = water_spatter_masks(liquid[:, 0], strength)[:, None]
    else:
        layers = liquid[:, 0].cpu().numpy().astype(np.float64)
        masks = cpu.map_images(lambda i: water_spatter_mask(layers[i], strength), len(layers))
        mask = torch.from_numpy(np.stack(masks)).to(x.device)[:, None]
    water = torch.tensor(SPATTER_WATER_COLOUR, device=x.device).view(1, 3, 1, 1)
    return T.unit_to_255(unit + mask * water)



# ----------------------------------------------------------------------------- plasma fractal


def plasma_fractal(map_size: int, wibble_decay: float, uniform_draws) -> torch.Tensor:
    """Batched diamond-square height maps (N, map_size, map_size) scaled to [0, 1] per image:
    :func:`_helpers.plasma_fractal` in float32.

    ``uniform_draws(shape)`` returns uniform [0, 1) numbers of shape (N, *shape) on the target
    device (one stream per image); per level it is asked for (3, m, m): the squares step and
    the two diamonds steps.
    """
    if map_size & (map_size - 1):
        raise ValueError(f"plasma fractal size must be a power of two, got {map_size}")
    heights = None
    step, wibble = map_size, 100.0
    while step >= 2:
        half = step // 2
        cells = map_size // step
        noise = uniform_draws((3, cells, cells))
        if heights is None:
            heights = torch.zeros(noise.shape[0], map_size, map_size, device=noise.device)
        noise = (noise * (2 * wibble) - wibble) * wibble  # wibble * uniform(-wibble, wibble)
        # The corners with their wrap-around row and column appended, so that every neighbour
        # sum below is one add of two views (no rolled copies); same sums in the same order.
        corners = heights.new_empty(heights.shape[0], cells + 1, cells + 1)
        corners[:, :cells, :cells] = heights[:, 0::step, 0::step]
        corners[:, cells, :cells] = corners[:, 0, :cells]
        corners[:, :, cells] = corners[:, :, 0]
        below = corners[:, :cells, :] + corners[:, 1:, :]  # corner (i, j) + corner (i + 1, j)
        centres = torch.add(below[:, :, :cells], below[:, :, 1:]).div_(4).add_(noise[:, 0])
        heights[:, half::step, half::step] = centres

        above = torch.cat((centres[:, -1:], centres[:, :-1]), dim=1)  # centre (i - 1, j)
        top_sum = (centres + above).add_(corners[:, :cells, :cells] + corners[:, :cells, 1:])
        heights[:, 0::step, half::step] = top_sum.div_(4).add_(noise[:, 1])
        left = torch.cat((centres[:, :, -1:], centres[:, :, :-1]), dim=2)  # centre (i, j - 1)
        left_sum = (centres + left).add_(below[:, :, :cells])
        heights[:, half::step, 0::step] = left_sum.div_(4).add_(noise[:, 2])
        step //= 2
        wibble /= wibble_decay
    lowest = heights.amin(dim=(1, 2), keepdim=True)
    heights = heights - lowest
    return heights / heights.amax(dim=(1, 2), keepdim=True)
