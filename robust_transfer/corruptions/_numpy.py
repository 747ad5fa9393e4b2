"""The 19 ImageNet-C corruptions in numpy: the reference backend.

Same algorithms and per-severity parameters as imagecorruptions 1.1.2 (and so as ImageNet-C),
re-implemented for current numpy / scipy / scikit-image and for any image from 32x32 up. Each
function follows the registry contract in ``_registry``: uint8 RGB (H, W, 3) in, values in
[0, 255] out, random numbers drawn from the given ``RandomState`` in the reference's order.

The per-severity parameter tables (indexed by ``severity - 1``) live in ``_params``, shared with
the torch backend, and are re-exported here.
"""
from __future__ import annotations

from io import BytesIO

import cv2
import numpy as np
from PIL import Image
from scipy import ndimage
from skimage import color

from . import _helpers as H
from ._registry import register_corruption
from ._params import (  # noqa: F401  (re-exported: the tables used to live here)
    GAUSSIAN_NOISE_STD,
    SHOT_NOISE_PHOTONS,
    IMPULSE_NOISE_AMOUNT,
    SPECKLE_NOISE_STD,
    GAUSSIAN_BLUR_SIGMA,
    GLASS_BLUR_PARAMS,
    DEFOCUS_BLUR_PARAMS,
    MOTION_BLUR_PARAMS,
    MOTION_BLUR_ANGLE_RANGE,
    ZOOM_BLUR_FACTORS,
    FOG_PARAMS,
    FROST_PARAMS,
    FROST_TEXTURES_DRAWN,
    SNOW_PARAMS,
    SNOW_ANGLE_RANGE,
    SPATTER_PARAMS,
    SPATTER_WATER_COLOUR,
    SPATTER_MUD_COLOUR,
    CONTRAST_FACTOR,
    BRIGHTNESS_SHIFT,
    SATURATE_PARAMS,
    JPEG_QUALITY,
    PIXELATE_SCALE,
    ELASTIC_ALPHA,
    ELASTIC_SIGMA_FRACTION,
    ELASTIC_MAX_SHIFT_FRACTION,
    ELASTIC_TRUNCATE,
)

# ----------------------------------------------------------------------------- noise


def _to_unit(image: np.ndarray) -> np.ndarray:
    return image / 255.0


def _unit_to_255(x: np.ndarray) -> np.ndarray:
    """clip(x, 0, 1) * 255, in place (x must be a temporary we own): fewer allocations."""
    np.clip(x, 0, 1, out=x)
    x *= 255
    return x


@register_corruption
def gaussian_noise(image, severity, rng):
    """Additive Gaussian noise on [0, 1] intensities."""
    noise = rng.normal(size=image.shape, scale=GAUSSIAN_NOISE_STD[severity - 1])
    noise += _to_unit(image)  # x + noise, added in the reference's order (same float result)
    return _unit_to_255(noise)


@register_corruption
def shot_noise(image, severity, rng):
    """Poisson (photon) noise: fewer photons per unit intensity at higher severity."""
    photons = SHOT_NOISE_PHOTONS[severity - 1]
    x = _to_unit(image)
    x *= photons
    counts = rng.poisson(x) / float(photons)
    return _unit_to_255(counts)


@register_corruption
def impulse_noise(image, severity, rng):
    """Salt-and-pepper noise with scikit-image 0.26's distribution: each value is hit with
    probability ``amount``, then set to 1 or 0 with equal probability. One uniform draw per value
    decides both (u < amount/2: salt, amount/2 <= u < amount: pepper) -- the same distribution
    as scikit-image's two Bernoulli draws, at half the cost. Reproduced in distribution only:
    the reference draws from scikit-image's own unseeded generator."""
    amount = IMPULSE_NOISE_AMOUNT[severity - 1]
    uniform = rng.random_sample(image.shape)
    out = _to_unit(image)
    out[uniform < amount / 2] = 1
    out[(uniform >= amount / 2) & (uniform < amount)] = 0
    out *= 255
    return out


@register_corruption
def speckle_noise(image, severity, rng):
    """Multiplicative Gaussian noise: x + x * N(0, c)."""
    x = _to_unit(image)
    noise = rng.normal(size=x.shape, scale=SPECKLE_NOISE_STD[severity - 1])
    noise *= x
    noise += x
    return _unit_to_255(noise)


# ----------------------------------------------------------------------------- blur


@register_corruption
def gaussian_blur(image, severity, rng):
    """Gaussian blur of each channel."""
    blurred = H.gaussian_filter_rgb(_to_unit(image), GAUSSIAN_BLUR_SIGMA[severity - 1])
    return _unit_to_255(blurred)


@register_corruption
def glass_blur(image, severity, rng):
    """Blur, shuffle pixels locally, blur again (frosted glass)."""
    sigma, max_delta, iterations = GLASS_BLUR_PARAMS[severity - 1]
    blurred = np.uint8(H.gaussian_filter_rgb(_to_unit(image), sigma) * 255)
    shuffled = H.glass_shuffle(blurred, max_delta, iterations, rng)
    return _unit_to_255(H.gaussian_filter_rgb(shuffled / 255.0, sigma))


@register_corruption
def defocus_blur(image, severity, rng):
    """Convolution with an anti-aliased disk (out-of-focus lens)."""
    radius, alias_blur = DEFOCUS_BLUR_PARAMS[severity - 1]
    kernel = H.disk_kernel(radius, alias_blur)
    # cv2.filter2D filters every channel with the same kernel, like the reference's loop.
    return _unit_to_255(cv2.filter2D(_to_unit(image), -1, kernel))


@register_corruption
def motion_blur(image, severity, rng):
    """Linear motion blur at a random angle in [-45, 45) degrees."""
    radius, sigma = MOTION_BLUR_PARAMS[severity - 1]
    angle = rng.uniform(*MOTION_BLUR_ANGLE_RANGE)
    return np.clip(H.motion_blur(image, radius, sigma, angle), 0, 255)


@register_corruption
def zoom_blur(image, severity, rng):
    """Average of the image and centre zooms of it (radial blur)."""
    factors = ZOOM_BLUR_FACTORS[severity - 1]
    x = _to_unit(image).astype(np.float32)
    accumulated = np.zeros_like(x)
    for factor in factors:
        accumulated += H.clipped_zoom(x, factor, crop_to_input=True)
    return _unit_to_255((x + accumulated) / (len(factors) + 1))


# ----------------------------------------------------------------------------- weather


@register_corruption
def snow(image, severity, rng):
    """Snow flakes (thresholded, zoomed noise, motion-blurred) over a brightened image."""
    mean, std, zoom, threshold, radius, sigma, image_weight = SNOW_PARAMS[severity - 1]
    x = np.asarray(image, dtype=np.float32) / 255.0
    height, width = x.shape[:2]
    flakes = rng.normal(size=(height, width), loc=mean, scale=std)
    # The reference blurs the whole zoomed layer (larger than the image) and crops afterwards.
    flakes = H.clipped_zoom(flakes[..., np.newaxis], zoom, crop_to_input=False)[..., 0]
    flakes[flakes < threshold] = 0
    flakes = np.clip(flakes, 0, 1)
    flakes = H.motion_blur(flakes, radius, sigma, rng.uniform(*SNOW_ANGLE_RANGE))
    flakes = np.round(flakes * 255).astype(np.uint8) / 255.0  # the reference quantises the layer
    flakes = flakes[:height, :width, np.newaxis]

    grey = cv2.cvtColor(x, cv2.COLOR_RGB2GRAY).reshape(height, width, 1)
    x = image_weight * x + (1 - image_weight) * np.maximum(x, grey * 1.5 + 0.5)
    return _unit_to_255(x + flakes + np.rot90(flakes, k=2))


def _frost_crop(image_shape, rng: np.random.RandomState) -> np.ndarray:
    """Pick a frost photograph and a random crop of it the size of the image (RGB)."""
    texture = H.frost_texture_for_image(rng.randint(FROST_TEXTURES_DRAWN), *image_shape[:2])
    top = rng.randint(0, texture.shape[0] - image_shape[0])
    left = rng.randint(0, texture.shape[1] - image_shape[1])
    return texture[top:top + image_shape[0], left:left + image_shape[1]]


@register_corruption
def frost(image, severity, rng):
    """Blend with a random crop of a photograph of frost on glass."""
    image_weight, frost_weight = FROST_PARAMS[severity - 1]
    crop = _frost_crop(image.shape, rng)
    return np.clip(image_weight * np.asarray(image) + frost_weight * crop, 0, 255)


@register_corruption
def fog(image, severity, rng):
    """Add a plasma-fractal haze and rescale so the brightest value keeps its level."""
    strength, wibble_decay = FOG_PARAMS[severity - 1]
    height, width = image.shape[:2]
    # Large enough for any image: a square power of two covering the longer side.
    map_size = H.next_power_of_two(int(max(image.shape)))
    x = _to_unit(image)
    max_val = x.max()
    haze = H.plasma_fractal(map_size, wibble_decay, rng)[:height, :width]
    x += strength * haze[..., np.newaxis]
    x *= max_val
    x /= max_val + strength  # (x * max_val) / (max_val + strength), as the reference
    return _unit_to_255(x)


@register_corruption
def brightness(image, severity, rng):
    """Raise the HSV value channel."""
    hsv = color.rgb2hsv(_to_unit(image))
    hsv[:, :, 2] = np.clip(hsv[:, :, 2] + BRIGHTNESS_SHIFT[severity - 1], 0, 1)
    return _unit_to_255(color.hsv2rgb(hsv))


@register_corruption
def spatter(image, severity, rng):
    """Water drops (severities 1-3) or mud splashes (4-5)."""
    mean, std, blur, threshold, strength, is_mud = SPATTER_PARAMS[severity - 1]
    x = np.asarray(image, dtype=np.float32) / 255.0
    liquid = rng.normal(size=x.shape[:2], loc=mean, scale=std)
    liquid = H.gaussian_filter_2d(liquid, blur)
    liquid[liquid < threshold] = 0
    if is_mud:
        return _mud_spatter(x, liquid, threshold, strength)
    return _water_spatter(x, liquid, strength)


def water_spatter_mask(liquid: np.ndarray, strength: float) -> np.ndarray:
    """Shiny water drops: the thresholded liquid layer modulated by an embossed distance-to-edge
    map, scaled to peak ``strength`` -- an (H, W) float32 mask. (Also the torch backend's on the
    CPU; on GPUs it uses the bit-equal batched tensor form in ``_torch_spatter``.)"""
    liquid = (liquid * 255).astype(np.uint8)
    dist = 255 - cv2.Canny(liquid, 50, 150)
    dist = cv2.distanceTransform(dist, cv2.DIST_L2, 5)
    _, dist = cv2.threshold(dist, 20, 20, cv2.THRESH_TRUNC)
    dist = cv2.blur(dist, (3, 3)).astype(np.uint8)
    dist = cv2.equalizeHist(dist)
    emboss = np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]])
    dist = cv2.filter2D(dist, cv2.CV_8U, emboss)
    dist = cv2.blur(dist, (3, 3)).astype(np.float32)

    mask = liquid * dist  # float32
    peak = np.max(mask)
    # The reference divides by the peak unguarded; an all-dry layer would give NaN there.
    mask = mask / peak if peak > 0 else np.zeros_like(mask)
    mask *= strength
    return mask


def _water_spatter(x: np.ndarray, liquid: np.ndarray, strength: float) -> np.ndarray:
    """Water drops tinted with the reference's water colour."""
    mask = water_spatter_mask(liquid, strength)
    water = np.asarray(SPATTER_WATER_COLOUR, dtype=np.float32)
    return _unit_to_255(x + mask[..., np.newaxis] * water)


def _mud_spatter(x: np.ndarray, liquid: np.ndarray, threshold: float, blur: float) -> np.ndarray:
    """Opaque mud: a blurred, thresholded mask replaces the image with mud brown."""
    mask = np.where(liquid > threshold, 1, 0).astype(np.float32)
    mask = H.gaussian_filter_2d(mask, blur)
    mask[mask < 0.8] = 0
    mud = np.asarray(SPATTER_MUD_COLOUR, dtype=np.float64) * mask[..., np.newaxis]
    x *= 1 - mask[..., np.newaxis]
    return _unit_to_255(x + mud)


# ----------------------------------------------------------------------------- digital


@register_corruption
def contrast(image, severity, rng):
    """Pull every channel towards its mean."""
    x = _to_unit(image)
    means = np.mean(x, axis=(0, 1), keepdims=True)
    x -= means
    x *= CONTRAST_FACTOR[severity - 1]
    x += means
    return _unit_to_255(x)


@register_corruption
def elastic_transform(image, severity, rng):
    """Smooth random displacement field applied with bilinear resampling."""
    x = np.asarray(image, dtype=np.float32) / 255.0
    height, width = x.shape[:2]
    sigma = np.array((height, width)) * ELASTIC_SIGMA_FRACTION
    alpha = ELASTIC_ALPHA[severity - 1]
    max_shift = height * ELASTIC_MAX_SHIFT_FRACTION

    def displacement() -> np.ndarray:
        field = rng.uniform(-max_shift, max_shift, size=(height, width))
        smooth = H.gaussian_filter_2d(field, sigma, mode="reflect", truncate=ELASTIC_TRUNCATE)
        return (smooth * alpha).astype(np.float32)

    dx = displacement()
    dy = displacement()
    grid_y, grid_x = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    coords = np.stack((grid_y + dy, grid_x + dx))
    # The reference maps all channels in one 3-D call with integer channel coordinates; per
    # channel 2-D calls give the same values.
    warped = np.stack(
        [ndimage.map_coordinates(x[..., ch], coords, order=1, mode="reflect")
         for ch in range(x.shape[2])],
        axis=-1,
    )
    return _unit_to_255(warped)


@register_corruption
def pixelate(image, severity, rng):
    """Box-downsample, then nearest-neighbour upsample (PIL, as the reference)."""
    scale = PIXELATE_SCALE[severity - 1]
    height, width = image.shape[:2]
    small = Image.fromarray(image).resize((int(width * scale), int(height * scale)), Image.BOX)
    return np.array(small.resize((width, height), Image.NEAREST))  # writable copy


@register_corruption
def jpeg_compression(image, severity, rng):
    """Encode and decode as JPEG at a low quality (PIL, as the reference)."""
    buffer = BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=JPEG_QUALITY[severity - 1])
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return np.array(decoded.convert("RGB"))  # writable copy


@register_corruption
def saturate(image, severity, rng):
    """Scale (and offset) the HSV saturation channel."""
    factor, offset = SATURATE_PARAMS[severity - 1]
    hsv = color.rgb2hsv(_to_unit(image))
    hsv[:, :, 1] = np.clip(hsv[:, :, 1] * factor + offset, 0, 1)
    return _unit_to_255(color.hsv2rgb(hsv))
