"""Building blocks shared by the numpy corruptions.

Each helper re-implements the algorithm imagecorruptions 1.1.2 uses, with the same parameters and
the same order of random draws, but computed faster and for any image size from 32x32 up.
Where the arithmetic is reorganised for speed (zoom, motion blur, glass blur), the docstring says
why the result is unchanged.
"""
from __future__ import annotations

import functools
import importlib.util
import math
import os
from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage

# ----------------------------------------------------------------------------- gaussian filter


def gaussian_filter_rgb(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of each channel of an (H, W, C) float image.

    Same filter as ``skimage.filters.gaussian(image, sigma, channel_axis=-1)`` (which is what
    imagecorruptions' ``multichannel=True`` meant): scipy's gaussian filter, mode 'nearest',
    truncated at 4 sigma, sigma 0 along the channel axis.
    """
    return ndimage.gaussian_filter(image, sigma=(sigma, sigma, 0), mode="nearest", truncate=4.0)


def gaussian_filter_2d(image: np.ndarray, sigma, mode: str = "nearest", truncate: float = 4.0):
    """skimage.filters.gaussian on a 2-D float image (its defaults: mode 'nearest', 4 sigma)."""
    return ndimage.gaussian_filter(image, sigma=sigma, mode=mode, truncate=truncate)


# ----------------------------------------------------------------------------- defocus disk


def disk_kernel(radius: float, alias_blur: float) -> np.ndarray:
    """The anti-aliased disk kernel of ImageNet-C's defocus blur (float32, sums to ~1).

    Radii up to 8 use a fixed 17x17 support and a 3x3 anti-aliasing blur; larger radii a
    (2r+1)-wide support and a 5x5 blur -- as in the reference.
    """
    if radius <= 8:
        support, blur_size = np.arange(-8, 8 + 1), (3, 3)
    else:
        support, blur_size = np.arange(-radius, radius + 1), (5, 5)
    xx, yy = np.meshgrid(support, support)
    aliased = np.array(xx**2 + yy**2 <= radius**2, dtype=np.float32)
    aliased /= np.sum(aliased)
    return cv2.GaussianBlur(aliased, ksize=blur_size, sigmaX=alias_blur)


# ----------------------------------------------------------------------------- plasma fractal


def plasma_fractal(map_size: int, wibble_decay: float, rng: np.random.RandomState) -> np.ndarray:
    """Diamond-square height map of side ``map_size`` (a power of two), scaled to [0, 1].

    Draws, per level, one uniform array for the squares step and two for the diamonds step, in
    the reference's order; additions are grouped as in the reference so the floats agree.
    """
    if map_size & (map_size - 1):
        raise ValueError(f"plasma fractal size must be a power of two, got {map_size}")
    heights = np.empty((map_size, map_size), dtype=np.float64)
    heights[0, 0] = 0
    step, wibble = map_size, 100.0

    def noisy_mean(total: np.ndarray) -> np.ndarray:
        return total / 4 + wibble * rng.uniform(-wibble, wibble, total.shape)

    while step >= 2:
        half = step // 2
        corners = heights[0:map_size:step, 0:map_size:step]
        square_sum = corners + np.roll(corners, shift=-1, axis=0)
        square_sum += np.roll(square_sum, shift=-1, axis=1)
        heights[half:map_size:step, half:map_size:step] = noisy_mean(square_sum)

        centres = heights[half:map_size:step, half:map_size:step]
        corners = heights[0:map_size:step, 0:map_size:step]
        top_sum = (centres + np.roll(centres, 1, axis=0)) + (corners + np.roll(corners, -1, axis=1))
        heights[0:map_size:step, half:map_size:step] = noisy_mean(top_sum)
        left_sum = (centres + np.roll(centres, 1, axis=1)) + (corners + np.roll(corners, -1, axis=0))
        heights[half:map_size:step, 0:map_size:step] = noisy_mean(left_sum)

        step //= 2
        wibble /= wibble_decay
    heights -= heights.min()
    return heights / heights.max()


def next_power_of_two(n: int) -> int:
    """Smallest power of two >= n (1 for n == 0)."""
    return 1 if n == 0 else 2 ** (n - 1).bit_length()


# ----------------------------------------------------------------------------- clipped zoom


def _linear_zoom_taps(length_in: int, length_out: int, keep: int):
    """Source indices and weights of scipy.ndimage.zoom(order=1, grid_mode=False) on one axis.

    Output sample k sits at input coordinate k * (length_in - 1) / (length_out - 1); only the
    first ``keep`` output samples are computed. scipy's default mode 'constant' gives the fill
    value 0 to a sample whose coordinate lands beyond the last input sample -- which happens when
    the product rounds up by one ulp (e.g. 159 * 125/159 = 125.00000000000001) and leaves a
    black last row/column in the reference; we reproduce that by zeroing both weights.
    """
    scale = (length_in - 1) / (length_out - 1) if length_out > 1 else 1.0
    coords = np.arange(keep, dtype=np.float64) * scale
    lower = np.minimum(np.floor(coords).astype(np.intp), length_in - 1)
    upper = np.minimum(lower + 1, length_in - 1)
    upper_weight = coords - lower
    lower_weight = 1.0 - upper_weight
    beyond_edge = coords > length_in - 1
    upper_weight[beyond_edge] = 0.0
    lower_weight[beyond_edge] = 0.0
    return lower, upper, lower_weight, upper_weight


def clipped_zoom(image: np.ndarray, zoom_factor: float, crop_to_input: bool) -> np.ndarray:
    """Zoom into the centre of an (H, W, C) float image by ``zoom_factor``, bilinearly.

    Equivalent to the reference's ``scipy.ndimage.zoom(centre_crop, (z, z, 1), order=1)``:
    linear interpolation is separable, so we interpolate columns, then rows, with two-tap gathers
    on the (rows, columns * channels) view, and compute only the output rows/columns that are
    kept (``crop_to_input`` keeps the first H x W, as zoom_blur does; snow keeps the whole zoomed
    layer). Arithmetic is done in the input's float dtype (scipy uses float64 and rounds the
    result to the input dtype): for float32 input this halves the memory traffic and moves
    values by at most a few float32 ulps.
    """
    height, width, channels = image.shape
    crop_h = int(np.ceil(height / float(zoom_factor)))
    crop_w = int(np.ceil(width / float(zoom_factor)))
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    crop = image[top:top + crop_h, left:left + crop_w].reshape(crop_h, crop_w * channels)
    # scipy rounds the output shape with Python's round().
    out_h, out_w = int(round(crop_h * zoom_factor)), int(round(crop_w * zoom_factor))
    keep_h, keep_w = (min(out_h, height), min(out_w, width)) if crop_to_input else (out_h, out_w)
    dtype = image.dtype

    c0, c1, c0_weight, c1_weight = _linear_zoom_taps(crop_w, out_w, keep_w)
    per_channel = np.arange(channels)
    c0 = (c0[:, None] * channels + per_channel).ravel()
    c1 = (c1[:, None] * channels + per_channel).ravel()
    columns = np.take(crop, c0, axis=1)
    columns *= np.repeat(c0_weight, channels).astype(dtype)
    upper = np.take(crop, c1, axis=1)
    upper *= np.repeat(c1_weight, channels).astype(dtype)
    columns += upper

    r0, r1, r0_weight, r1_weight = _linear_zoom_taps(crop_h, out_h, keep_h)
    zoomed = np.take(columns, r0, axis=0)
    zoomed *= r0_weight.astype(dtype)[:, None]
    upper = np.take(columns, r1, axis=0)
    upper *= r1_weight.astype(dtype)[:, None]
    zoomed += upper
    return zoomed.reshape(keep_h, keep_w, channels)


# ----------------------------------------------------------------------------- motion blur


def motion_blur_kernel(width: int, sigma: float) -> np.ndarray:
    """One-sided Gaussian weights exp(-i^2 / 2 sigma^2), i = 0..width-1, normalised to sum 1."""
    taps = np.arange(width)
    weights = np.exp(-(taps**2) / (2 * sigma**2)) / (np.sqrt(2 * np.pi) * sigma)
    return weights / np.sum(weights)


def motion_blur(image: np.ndarray, radius: int, sigma: float, angle: float) -> np.ndarray:
    """Blur along a line at ``angle`` degrees: a weighted sum of edge-clamped shifted copies.

    The reference builds each shifted copy with np.roll and then overwrites the wrapped border
    with the edge row/column, i.e. copy[r, c] = image[clip(r - dy), clip(c - dx)]. We pad the
    image once with its edge values and take slices, which gives the same copies without the
    per-tap rolls. Like the reference, taps stop once a shift reaches the image size (only
    possible on tiny images). Works on (H, W) and (H, W, C) arrays; returns float64.
    """
    width = 2 * radius + 1
    kernel = motion_blur_kernel(width, sigma)
    point_y, point_x = width * np.sin(np.deg2rad(angle)), width * np.cos(np.deg2rad(angle))
    hypot = math.hypot(point_y, point_x)
    height, img_width = image.shape[:2]

    pad = width
    pad_spec = [(pad, pad), (pad, pad)] + [(0, 0)] * (image.ndim - 2)
    padded = np.pad(image, pad_spec, mode="edge")
    blurred = np.zeros(image.shape, dtype=np.float64)
    for i in range(width):
        dy = -math.ceil(((i * point_y) / hypot) - 0.5)
        dx = -math.ceil(((i * point_x) / hypot) - 0.5)
        if abs(dy) >= height or abs(dx) >= img_width:
            break  # the simulated motion left the image (reference behaviour)
        shifted = padded[pad - dy:pad - dy + height, pad - dx:pad - dx + img_width]
        blurred += kernel[i] * shifted
    return blurred


# ----------------------------------------------------------------------------- glass blur


def _resolve_row_chains(row_values: np.ndarray, chain_from: np.ndarray, chain_to: np.ndarray):
    """Give each chained cell the (final) value of the cell it copies from, by pointer doubling.

    ``chain_from[k]`` copies from ``chain_to[k] > chain_from[k]``: a cell further right in the
    same row, which the right-to-left scan has already finalised. Following links until a cell
    that is not chained gives the value the sequential scan would have produced.
    """
    link = np.arange(row_values.shape[0])
    link[chain_from] = chain_to
    while True:
        followed = link[link]
        if np.array_equal(followed, link):
            break
        link = followed
    return row_values[link]


def glass_shuffle(image: np.ndarray, max_delta: int, iterations: int,
                  rng: np.random.RandomState) -> np.ndarray:
    """ImageNet-C's local pixel shuffle, exactly, without a per-pixel Python loop.

    The reference scans h = H-d .. d+1 and w = W-d .. d+1 (both descending), draws
    ``dx, dy = randint(-d, d, size=2)`` per pixel and runs
    ``x[h, w], x[h', w'] = x[h', w'], x[h, w]`` on an (H, W, 3) array. Because ``x[h, w]`` is a
    *view*, that statement copies x[h', w'] into x[h, w] and then writes the (already updated)
    x[h, w] back into x[h', w'], so in effect it is the sequential copy x[h, w] <- x[h', w'].

    We track, per pixel, the index of the source pixel it holds, and process one row at a time:
    reads from other rows or from columns to the left see the state before the row (rows below
    are finished, rows above and cells to the left are untouched), reads from the right in the
    same row see cells already updated in this row and are resolved by pointer doubling. The
    random draws are made in one call per iteration, which consumes the legacy RandomState stream
    exactly like one ``randint(size=2)`` call per pixel.
    """
    height, width = image.shape[:2]
    d = max_delta
    rows_scanned = np.arange(height - d, d, -1)
    cols = np.arange(d + 1, width - d + 1)  # ascending; the scan runs right to left
    source = np.arange(height * width).reshape(height, width)
    if rows_scanned.size == 0 or cols.size == 0:
        return image.copy()
    for _ in range(iterations):
        draws = rng.randint(-d, d, size=(rows_scanned.size, cols.size, 2))
        draws = draws[:, ::-1]  # per row: reference order is right to left
        for row_draws, h in zip(draws, rows_scanned):
            dx, dy = row_draws[:, 0], row_draws[:, 1]
            row = source[h].copy()
            row[cols] = source[h + dy, cols + dx]
            chained = (dy == 0) & (dx > 0)
            if chained.any():
                row = _resolve_row_chains(row, cols[chained], cols[chained] + dx[chained])
            source[h] = row
    return image.reshape(height * width, -1)[source].reshape(image.shape)


# ----------------------------------------------------------------------------- frost textures

FROST_TEXTURE_FILES = ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg",
                       "frost6.jpg")
_TEXTURE_PACKAGE = "imagecorruptions"


FROST_DIRECTORY_VARIABLE = "RT_FROST_TEXTURES"


def _frost_directory() -> Path:
    """Folder of the frost photographs inside the installed imagecorruptions package, or the
    folder named by the environment variable RT_FROST_TEXTURES (a copy of that package's
    ``frost/`` folder, for machines where the package cannot be installed).

    Located with importlib's package spec rather than importlib.resources.files(), because the
    latter imports the package, and imagecorruptions' __init__ imports pkg_resources (gone in
    recent setuptools); the spec finds the files without executing any of its code.
    """
    override = os.environ.get(FROST_DIRECTORY_VARIABLE)
    if override:
        return Path(override)
    spec = importlib.util.find_spec(_TEXTURE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            f"the frost corruption needs the frost texture photographs shipped with the "
            f"'{_TEXTURE_PACKAGE}' package, which is not installed: pip install imagecorruptions==1.1.2"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "frost"


@functools.lru_cache(maxsize=len(FROST_TEXTURE_FILES))
def load_frost_texture(index: int) -> np.ndarray:
    """Frost photograph ``index`` (0-based) as a BGR uint8 array, as cv2.imread returns it."""
    path = _frost_directory() / FROST_TEXTURE_FILES[index]
    texture = cv2.imread(str(path)) if path.is_file() else None
    if texture is None:
        raise RuntimeError(
            f"frost texture {path} is missing or unreadable; it ships with the "
            f"'{_TEXTURE_PACKAGE}' package: reinstall it (pip install imagecorruptions==1.1.2)"
        )
    texture.setflags(write=False)  # cached and shared: nobody may modify it
    return texture


def frost_scale_factor(texture_shape, image_shape) -> float:
    """How much the reference enlarges a frost texture before cropping: enough to cover the
    image on both sides, times 1.1 (so also 1.1 when the texture is already large enough)."""
    scale_h = image_shape[0] / texture_shape[0]
    scale_w = image_shape[1] / texture_shape[1]
    needs_h, needs_w = scale_h > 1, scale_w > 1
    if needs_h and needs_w:
        factor = max(scale_h, scale_w)
    elif needs_h:
        factor = scale_h
    elif needs_w:
        factor = scale_w
    else:
        factor = 1
    return factor * 1.1


def frost_texture_for_image(index: int, height: int, width: int) -> np.ndarray:
    """Frost photograph ``index`` enlarged as the reference does for an image of this size
    (bicubic, :func:`frost_scale_factor`), as read-only RGB uint8; crop it at a random offset.

    The enlarged textures are cached per image size, so a folder or batch of same-sized images
    resizes each texture once; the arithmetic is the reference's cv2.resize, so the pixels are
    unchanged. The photograph is looked up on every call, so a missing package still raises.
    """
    load_frost_texture(index)
    return _enlarged_frost_texture(index, height, width)


@functools.lru_cache(maxsize=4 * len(FROST_TEXTURE_FILES))
def _enlarged_frost_texture(index: int, height: int, width: int) -> np.ndarray:
    texture = load_frost_texture(index)
    scale = frost_scale_factor(texture.shape, (height, width))
    size = (int(np.ceil(texture.shape[1] * scale)), int(np.ceil(texture.shape[0] * scale)))
    resized = cv2.resize(texture, dsize=size, interpolation=cv2.INTER_CUBIC)[..., ::-1]  # BGR->RGB
    resized = np.ascontiguousarray(resized)
    resized.setflags(write=False)
    return resized
