"""Building blocks of the torch backend: filters, zoom, motion blur, pixel shuffle, plasma, resize.

Every function works on batched float32 tensors (N, C, H, W) on any device, and re-implements the
arithmetic of the corresponding numpy reference helper (``_helpers``) or library call (scipy,
OpenCV, Pillow), with the differences stated in each docstring. Parameter-only work (filter
matrices, resampling taps, index maps) is done once in numpy and cached per size and device.

Batch invariance: image i of a batch gets the same bytes as the same image alone (tested on the
CPU). Filters are shifted sums or dense matrix products (each output sums its inputs in one
order whatever the batch size) and the FFT convolution runs one image at a time.
"""
from __future__ import annotations

import contextlib
import functools
import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from . import _banded as band
from . import _helpers as H

# ----------------------------------------------------------------------------- numerics


@contextlib.contextmanager
def full_float32_matmul(device: torch.device):
    """Run float32 matrix products in full float32 on CUDA (no TF32) for the block.

    TF32 keeps 10 mantissa bits: a blur computed with it would be off by a grey level here and
    there. The previous global setting is restored afterwards (not thread-safe, like the setting).
    """
    if device.type != "cuda":
        yield
        return
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(previous)


def _device_key(device) -> str:
    return str(torch.device(device))


# ----------------------------------------------------------------------------- boundary modes


def extend_index(index: np.ndarray, size: int, mode: str) -> np.ndarray:
    """Map (possibly out-of-range) integer indices into 0..size-1 by a boundary rule.

    ``nearest``: clamp (scipy 'nearest', OpenCV REPLICATE). ``reflect``: half-sample symmetric,
    ``cba|abc|cba`` (scipy 'reflect'). ``mirror``: whole-sample symmetric, ``dcb|abcd|cba``
    (OpenCV's default BORDER_REFLECT_101). Periodic, so any distance from the image works.
    """
    index = np.asarray(index)
    if mode == "nearest":
        return np.clip(index, 0, size - 1)
    if mode == "reflect":
        wrapped = np.mod(index, 2 * size)
        return np.where(wrapped >= size, 2 * size - 1 - wrapped, wrapped)
    if mode == "mirror":
        if size == 1:
            return np.zeros_like(index)
        period = 2 * size - 2
        wrapped = np.mod(index, period)
        return np.where(wrapped >= size, period - wrapped, wrapped)
    raise ValueError(f"unknown boundary mode {mode!r}")


# ----------------------------------------------------------------------------- gaussian filter


def scipy_gaussian_kernel1d(sigma: float, truncate: float) -> np.ndarray:
    """scipy.ndimage's 1-D Gaussian: radius int(truncate * sigma + 0.5), weights sum to 1."""
    radius = int(truncate * float(sigma) + 0.5)
    taps = np.arange(-radius, radius + 1)
    weights = np.exp(-0.5 / (float(sigma) ** 2) * taps.astype(np.float64) ** 2)
    return weights / weights.sum()


@functools.lru_cache(maxsize=16)  # (size x size) float32 each: a few MB per image size
def _filter_matrix(size: int, weights: tuple, mode: str, device: str) -> torch.Tensor:
    """(size, size) float32 matrix M with (M @ v)[i] = sum_j w[j] v[ext(i + j - r)]: a 1-D
    correlation with the boundary rule folded in (see :func:`extend_index`)."""
    weights = np.asarray(weights, dtype=np.float64)
    radius = len(weights) // 2
    rows = np.arange(size)[:, None]
    cols = extend_index(rows + np.arange(-radius, radius + 1)[None, :], size, mode)
    matrix = np.zeros((size, size), dtype=np.float64)
    np.add.at(matrix, (np.broadcast_to(rows, cols.shape), cols),
              np.broadcast_to(weights, cols.shape))
    return torch.from_numpy(matrix.astype(np.float32)).to(device)


def gaussian_matrix(size: int, sigma: float, mode: str, truncate: float, device) -> torch.Tensor:
    weights = tuple(scipy_gaussian_kernel1d(sigma, truncate).tolist())
    return _filter_matrix(size, weights, mode, _device_key(device))


@functools.lru_cache(maxsize=16)
def _gaussian_band_blocks(size: int, sigma: float, mode: str, truncate: float,
                          device: str) -> band.BandBlocks:
    return band.band_blocks(gaussian_matrix(size, sigma, mode, truncate, device))


# Up to this radius a Gaussian is applied as shifted sums (2r+1 multiply-adds per axis, cheap);
# wider ones as products with dense filter matrices (cost independent of the radius).
MAX_TAPS_RADIUS = 8


@functools.lru_cache(maxsize=128)
def _padding_index(size: int, radius: int, mode: str, device: str) -> torch.Tensor:
    return torch.from_numpy(extend_index(np.arange(-radius, size + radius), size, mode)).to(device)


def _correlate_axis(x: torch.Tensor, weights: np.ndarray, axis: int, mode: str) -> torch.Tensor:
    """1-D correlation along ``axis`` (-1 or -2) as a sum of shifted copies of the padded
    input, accumulated in tap order."""
    radius = len(weights) // 2
    size = x.shape[axis]
    pad_mode = {"nearest": "replicate", "mirror": "reflect"}.get(mode)
    if x.ndim == 4 and pad_mode and radius < size:  # torch's own padding: faster than a gather
        padded = F.pad(x, (radius, radius, 0, 0) if axis == -1 else (0, 0, radius, radius),
                       mode=pad_mode)
    else:
        padded = x.index_select(axis, _padding_index(size, radius, mode, _device_key(x.device)))
    out = padded.narrow(axis, 0, size) * float(weights[0])
    for tap in range(1, len(weights)):
        out.add_(padded.narrow(axis, tap, size), alpha=float(weights[tap]))
    return out


def gaussian_filter(x: torch.Tensor, sigma, mode: str = "nearest",
                    truncate: float = 4.0) -> torch.Tensor:
    """scipy.ndimage.gaussian_filter over the last two axes of ``x`` (..., H, W).

    ``sigma`` is a number or a (sigma_y, sigma_x) pair; ``mode`` a boundary rule of
    :func:`extend_index`. Narrow kernels (radius <= MAX_TAPS_RADIUS) are applied as shifted
    sums; wide ones as ``My @ x @ Mx^T`` with the filter and its boundary folded into dense
    matrices applied block by block over their bands (``_banded``). Both are exact up to
    float32 rounding and give each image the same bytes whatever the batch size.
    """
    sigma_y, sigma_x = (sigma, sigma) if np.isscalar(sigma) else sigma
    height, width = x.shape[-2:]
    weights_y = scipy_gaussian_kernel1d(sigma_y, truncate)
    weights_x = scipy_gaussian_kernel1d(sigma_x, truncate)
    if max(len(weights_y), len(weights_x)) // 2 <= MAX_TAPS_RADIUS:
        return _correlate_axis(_correlate_axis(x, weights_x, -1, mode), weights_y, -2, mode)
    # Banded products: the dense ones multiplied mostly zeros (see ``_banded``).
    device = _device_key(x.device)
    rows = _gaussian_band_blocks(height, float(sigma_y), mode, float(truncate), device)
    cols = _gaussian_band_blocks(width, float(sigma_x), mode, float(truncate), device)
    return band.filter_second_last_axis(band.filter_last_axis(x, cols), rows)


# ----------------------------------------------------------------------------- 2-D convolution


def _fast_length(n: int) -> int:
    """Smallest length >= n that is a multiple of 8 with no prime factor above 7 (fast for
    real FFTs; e.g. 660 -> 672, where 660 = 4*3*5*11 is several times slower)."""
    candidate = -(-n // 8) * 8
    while True:
        rest = candidate // 8
        for prime in (2, 3, 5, 7):
            while rest % prime == 0:
                rest //= prime
        if rest == 1:
            return candidate
        candidate += 8


def filter2d_reflect101(x: torch.Tensor, kernel: np.ndarray, per_image=None) -> torch.Tensor:
    """cv2.filter2D(x, -1, kernel) on every channel: correlation with an odd square kernel,
    centred, OpenCV's default border (BORDER_REFLECT_101).

    Computed by FFT on the reflect-padded image; float32 FFT rounding is ~1e-6 of the signal.
    On the CPU one image at a time, so the bytes do not depend on the batch size (a promise of
    the CPU path); on other devices the whole batch in one transform (one launch instead of
    one per image; CUDA is held to agreement within a grey level, not to batch invariance).
    ``per_image`` (True/False) overrides that choice.
    """
    size = kernel.shape[0]
    radius = size // 2
    height, width = x.shape[-2:]
    padded = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    fft_shape = (_fast_length(padded.shape[-2]), _fast_length(padded.shape[-1]))
    flipped = torch.from_numpy(np.ascontiguousarray(kernel[::-1, ::-1], dtype=np.float32))
    spectrum = torch.fft.rfft2(flipped.to(x.device), s=fft_shape)
    def convolve(images: torch.Tensor) -> torch.Tensor:
        full = torch.fft.irfft2(torch.fft.rfft2(images, s=fft_shape) * spectrum, s=fft_shape)
        return full[..., 2 * radius:2 * radius + height, 2 * radius:2 * radius + width]

    if not (x.device.type == "cpu" if per_image is None else per_image):
        return convolve(padded).contiguous()
    out = torch.empty_like(x)
    for index in range(x.shape[0]):
        out[index] = convolve(padded[index])
    return out


# ----------------------------------------------------------------------------- clipped zoom


@functools.lru_cache(maxsize=256)
def _beyond(length_in: int, length_out: int, keep: int) -> np.ndarray:
    """Indices of the first ``keep`` output samples of scipy's linear zoom whose float64
    coordinate k (in - 1) / (out - 1) lies past the last input sample (scipy gives them 0)."""
    scale = (length_in - 1) / (length_out - 1) if length_out > 1 else 1.0
    coords = np.arange(keep, dtype=np.float64) * scale
    return np.flatnonzero(coords > length_in - 1)


def clipped_zoom(x: torch.Tensor, zoom_factor: float, crop_to_input: bool) -> torch.Tensor:
    """Zoom into the centre of (N, C, H, W) by ``zoom_factor``: :func:`_helpers.clipped_zoom`.

    scipy's ``zoom(order=1)`` samples output k at input coordinate k (in - 1) / (out - 1), which
    is bilinear interpolation with ``align_corners=True``; torch computes that coordinate in
    float32 (differences of ~1e-5 px). Samples whose float64 coordinate lies past the last input
    sample are set to 0, as scipy's 'constant' mode does (a black last row/column at some zoom
    factors). ``crop_to_input`` keeps the first H x W samples; otherwise the whole zoomed layer.
    """
    height, width = x.shape[-2:]
    crop_h = int(np.ceil(height / float(zoom_factor)))
    crop_w = int(np.ceil(width / float(zoom_factor)))
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    crop = x[..., top:top + crop_h, left:left + crop_w]
    out_h, out_w = int(round(crop_h * zoom_factor)), int(round(crop_w * zoom_factor))
    zoomed = F.interpolate(crop, size=(out_h, out_w), mode="bilinear", align_corners=True)
    keep_h, keep_w = (min(out_h, height), min(out_w, width)) if crop_to_input else (out_h, out_w)
    zoomed = zoomed[..., :keep_h, :keep_w]
    rows, cols = _beyond(crop_h, out_h, keep_h), _beyond(crop_w, out_w, keep_w)
    if rows.size or cols.size:
        zoomed = zoomed.clone()
        if rows.size:
            zoomed[..., torch.from_numpy(rows).to(x.device), :] = 0
        if cols.size:
            zoomed[..., torch.from_numpy(cols).to(x.device)] = 0
    return zoomed


# ----------------------------------------------------------------------------- motion blur


def motion_blur_taps(radius: int, sigma: float, angle: float, height: int, width: int):
    """[(weight, dy, dx), ...]: the taps of :func:`_helpers.motion_blur` for one angle, with the
    same kernel, the same rounding of the shifts and the same early stop."""
    kernel_width = 2 * radius + 1
    kernel = H.motion_blur_kernel(kernel_width, sigma)
    point_y = kernel_width * np.sin(np.deg2rad(angle))
    point_x = kernel_width * np.cos(np.deg2rad(angle))
    hypot = math.hypot(point_y, point_x)
    taps = []
    for i in range(kernel_width):
        dy = -math.ceil(((i * point_y) / hypot) - 0.5)
        dx = -math.ceil(((i * point_x) / hypot) - 0.5)
        if abs(dy) >= height or abs(dx) >= width:
            break
        taps.append((float(kernel[i]), dy, dx))
    return taps


def motion_blur(x: torch.Tensor, radius: int, sigma: float, angles) -> torch.Tensor:
    """Blur each image of (N, C, H, W) along a line at its own angle (degrees): the weighted sum
    of edge-clamped shifted copies of :func:`_helpers.motion_blur`, accumulated in float32.

    Each image is padded once by edge replication; a shifted copy is then one contiguous run of
    the flattened padded image (rows carry 2 * pad spare columns, dropped at the end), so every
    tap is a single fused multiply-add over contiguous memory.
    """
    count, channels, height, width = x.shape
    pad = 2 * radius + 1
    padded = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    padded_width = width + 2 * pad
    flat = padded.reshape(count, channels, -1)
    span = (height - 1) * padded_width + width
    if x.device.type != "cpu":
        return _motion_blur_gathered(flat, radius, sigma, angles, x.shape, pad, span)
    out = torch.empty_like(x)
    for index, angle in enumerate(angles):
        accumulated = torch.zeros(channels, height * padded_width, dtype=x.dtype, device=x.device)
        run = accumulated[:, :span]
        for weight, dy, dx in motion_blur_taps(radius, sigma, angle, height, width):
            start = (pad - dy) * padded_width + (pad - dx)
            run.add_(flat[index, :, start:start + span], alpha=weight)
        out[index] = accumulated.view(channels, height, padded_width)[:, :, :width]
    return out


def _motion_blur_gathered(flat: torch.Tensor, radius: int, sigma: float, angles, shape,
                          pad: int, span: int) -> torch.Tensor:
    """:func:`motion_blur` for the whole batch at once (for GPUs, where the per-image loop costs
    a kernel launch per image and tap): tap i reads, for every image, the run starting at that
    image's own offset, gathered in one call; the same multiply-adds in the same tap order."""
    count, channels, height, width = shape
    padded_width = width + 2 * pad
    taps = [motion_blur_taps(radius, sigma, angle, height, width) for angle in angles]
    base = torch.arange(span, device=flat.device)
    accumulated = torch.zeros(count, channels, height * padded_width, dtype=flat.dtype,
                              device=flat.device)
    run = accumulated[:, :, :span]
    for tap in range(max(len(per_image) for per_image in taps)):
        present = [tap < len(per_image) for per_image in taps]
        starts = torch.tensor([(pad - t[tap][1]) * padded_width + (pad - t[tap][2]) if here else 0
                               for t, here in zip(taps, present)], device=flat.device)
        index = (starts[:, None] + base).unsqueeze(1).expand(-1, channels, -1)
        shifted = torch.gather(flat, 2, index)
        weight = next(t[tap][0] for t, here in zip(taps, present) if here)  # same for all images
        if all(present):
            run.add_(shifted, alpha=weight)
        else:  # only on tiny images: the motion left some images earlier (reference behaviour)
            mask = torch.tensor(present, dtype=flat.dtype, device=flat.device)[:, None, None]
            run.add_(shifted * mask, alpha=weight)
    return accumulated.view(count, channels, height, padded_width)[..., :width].contiguous()


# ----------------------------------------------------------------------------- glass blur shuffle


def glass_shuffle_sources(height: int, width: int, max_delta: int,
                          draws: torch.Tensor) -> torch.Tensor:
    """Which original pixel each position holds after ImageNet-C's sequential pixel shuffle.

    ``draws`` is an integer tensor (N, iterations, R, C, 2) of (dx, dy) in [-d, d), indexed by
    scanned row h = d+1+r and column w = d+1+c (both ascending). The reference visits the
    scanned pixels from the bottom-right corner, row by row, right to left, and in effect copies
    ``x[h, w] <- x[h + dy, w + dx]`` (its "swap" works on views). So a pixel whose source was
    visited earlier (a larger linear index, inside the scanned area) receives that source's
    *new* value, otherwise the source's value from before the iteration. Following these links
    gives, for every scanned pixel, the chain's last link, which reads an old value. We resolve
    all chains at once by pointer doubling (O(log chain length) parallel gathers): exact, not
    an approximation. Returns (N, H*W) int64 indices into the flattened original image.
    """
    count, iterations, n_rows, n_cols = draws.shape[:4]
    device = draws.device
    area = height * width
    sources = torch.arange(area, device=device).repeat(count, 1)
    if n_rows <= 0 or n_cols <= 0:
        return sources
    d = max_delta
    rows = torch.arange(d + 1, d + 1 + n_rows, device=device)
    cols = torch.arange(d + 1, d + 1 + n_cols, device=device)
    positions = (rows[:, None] * width + cols[None, :]).reshape(-1)  # scanned, ascending
    cells = n_rows * n_cols
    grid_row = torch.arange(n_rows, device=device).repeat_interleave(n_cols)  # of each cell
    grid_col = torch.arange(n_cols, device=device).repeat(n_rows)
    cell_offsets = (torch.arange(count, device=device) * cells)[:, None]
    self_links = torch.arange(count * cells, device=device)
    for step in range(iterations):
        dx = draws[:, step, ..., 0].reshape(count, cells).long()
        dy = draws[:, step, ..., 1].reshape(count, cells).long()
        read = positions + dy * width + dx  # (N, cells): the position each scanned pixel reads
        row_of_read, col_of_read = grid_row + dy, grid_col + dx  # in scanned-grid coordinates
        inside = ((row_of_read >= 0) & (row_of_read < n_rows)
                  & (col_of_read >= 0) & (col_of_read < n_cols))
        chained = inside & (read > positions)
        target = (row_of_read * n_cols + col_of_read + cell_offsets).reshape(-1)
        link = torch.where(chained.reshape(-1), target, self_links)
        while True:  # pointer doubling: every link ends on its chain's last cell
            jumped = link.index_select(0, link)
            if torch.equal(jumped, link):
                break
            link = jumped
        final_read = read.reshape(-1).index_select(0, link).view(count, cells)
        updated = torch.gather(sources, 1, final_read)
        sources[:, positions] = updated
    return sources


# ----------------------------------------------------------------------------- resampling


def remap_bilinear_reflect(x: torch.Tensor, shift_y: torch.Tensor,
                           shift_x: torch.Tensor) -> torch.Tensor:
    """Sample (N, C, H, W) at (row + shift_y, column + shift_x), shifts (N, H, W): scipy's
    ``map_coordinates(order=1, mode='reflect')``.

    scipy mirrors each bilinear tap half-sample symmetrically (``cba|abc``); ``grid_sample``
    with ``padding_mode='reflection'`` and ``align_corners=False`` mirrors the coordinate about
    the image border (-0.5 and W-0.5) and clamps it: the same interpolated values (checked
    against scipy to float32 precision).
    """
    height, width = x.shape[-2:]
    grid_y = torch.arange(height, device=x.device, dtype=torch.float32)[:, None]
    grid_x = torch.arange(width, device=x.device, dtype=torch.float32)[None, :]
    norm_x = (grid_x + shift_x).mul_(2).add_(1).div_(width).sub_(1)
    norm_y = (grid_y + shift_y).mul_(2).add_(1).div_(height).sub_(1)
    grid = torch.stack((norm_x, norm_y), dim=-1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


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
        corners = heights[:, 0::step, 0::step]
        square_sum = corners + torch.roll(corners, -1, dims=1)
        square_sum = square_sum + torch.roll(square_sum, -1, dims=2)
        heights[:, half::step, half::step] = square_sum / 4 + noise[:, 0]

        centres = heights[:, half::step, half::step]
        corners = heights[:, 0::step, 0::step]
        top_sum = ((centres + torch.roll(centres, 1, dims=1))
                   + (corners + torch.roll(corners, -1, dims=2)))
        heights[:, 0::step, half::step] = top_sum / 4 + noise[:, 1]
        left_sum = ((centres + torch.roll(centres, 1, dims=2))
                    + (corners + torch.roll(corners, -1, dims=1)))
        heights[:, half::step, 0::step] = left_sum / 4 + noise[:, 2]
        step //= 2
        wibble /= wibble_decay
    lowest = heights.amin(dim=(1, 2), keepdim=True)
    heights = heights - lowest
    return heights / heights.amax(dim=(1, 2), keepdim=True)


# ----------------------------------------------------------------------------- Pillow resizes

_PIL_PRECISION_BITS = 32 - 8 - 2  # Pillow's fixed-point resampling precision for 8-bit images


@functools.lru_cache(maxsize=64)
def _pil_box_taps(in_size: int, out_size: int, device: str):
    """Pillow's BOX taps on one axis (its precompute_coeffs + normalize_coeffs_8bpc).

    A box weight is 1 for the input pixels whose centres fall in the output pixel's box
    (a contiguous run) and 0 elsewhere, normalised, then turned into 22-bit fixed point: so
    every used pixel of one output gets the same integer weight. Returns, per output sample,
    the first and one-past-last input index of the run and that weight.
    """
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = 0.5 * filterscale
    first = np.zeros(out_size, dtype=np.int64)
    stop = np.zeros(out_size, dtype=np.int64)
    weight = np.zeros(out_size, dtype=np.int64)
    for out in range(out_size):
        centre = (out + 0.5) * scale
        xmin = max(int(centre - support + 0.5), 0)
        count = min(int(centre + support + 0.5), in_size) - xmin
        offsets = (np.arange(count) + xmin - centre + 0.5) / filterscale
        used = np.flatnonzero((offsets > -0.5) & (offsets <= 0.5))
        if used.size:
            first[out], stop[out] = xmin + used[0], xmin + used[-1] + 1
            weight[out] = int(0.5 + (1.0 / used.size) * (1 << _PIL_PRECISION_BITS))
    return (torch.from_numpy(first).to(device), torch.from_numpy(stop).to(device),
            torch.from_numpy(weight).to(device))


def _gather_axis(x: torch.Tensor, axis: int, index: torch.Tensor) -> torch.Tensor:
    """x.index_select(axis, index) for axis -1 or -2, via gather (much faster on the CPU)."""
    shape = list(x.shape)
    shape[axis] = index.numel()
    view = [1] * x.ndim
    view[axis] = index.numel()
    return torch.gather(x, axis, index.view(view).expand(shape))


def _pil_box_axis(x: torch.Tensor, axis: int, out_size: int) -> torch.Tensor:
    """One pass of Pillow's 8-bit BOX resize along ``axis`` (-1 or -2) of an integer tensor:
    run sums from a cumulative sum, times the fixed-point weight, rounded and clipped to
    8 bits exactly as Pillow's ImagingResample{Horizontal,Vertical}_8bpc. int32 suffices:
    a run sum times its weight is at most 255 * 2^22 plus rounding."""
    first, stop, weight = _pil_box_taps(x.shape[axis], out_size, _device_key(x.device))
    cumulative = torch.cumsum(x, dim=axis, dtype=torch.int32)
    total = _gather_axis(cumulative, axis, stop - 1)
    before = _gather_axis(cumulative, axis, (first - 1).clamp(min=0))
    starts_at_zero = (first == 0) if axis == -1 else (first == 0)[:, None]
    total -= torch.where(starts_at_zero, 0, before)
    weight = (weight if axis == -1 else weight[:, None]).to(torch.int32)
    total = (total * weight + (1 << (_PIL_PRECISION_BITS - 1))) >> _PIL_PRECISION_BITS
    return total.clamp_(0, 255)


@functools.lru_cache(maxsize=64)
def _pil_nearest_map(in_size: int, out_size: int, device: str) -> torch.Tensor:
    """Source index of each output sample of Pillow's NEAREST resize along one axis, read off
    Pillow itself (a 32-bit image holding its own column indices), so it is exact."""
    ramp = Image.fromarray(np.arange(in_size, dtype=np.int32)[None, :])
    mapped = np.asarray(ramp.resize((out_size, 1), Image.NEAREST))[0].astype(np.int64)
    return torch.from_numpy(mapped).to(device)


def pil_pixelate(x: torch.Tensor, small_size) -> torch.Tensor:
    """``Image.resize(small, BOX)`` then ``.resize(original, NEAREST)`` on a (N, C, H, W) uint8
    tensor, bit-exact with Pillow: the horizontal pass first, each pass rounded to 8 bits with
    Pillow's fixed-point weights, then Pillow's own nearest-neighbour index maps."""
    small_w, small_h = small_size
    height, width = x.shape[-2:]
    small = _pil_box_axis(_pil_box_axis(x, -1, small_w), -2, small_h).to(torch.uint8)
    rows = _pil_nearest_map(small_h, height, _device_key(x.device))
    cols = _pil_nearest_map(small_w, width, _device_key(x.device))
    return _gather_axis(small.index_select(-2, rows), -1, cols)


@functools.lru_cache(maxsize=64)
def _pil_bilinear_taps(in_size: int, out_size: int, device: str):
    """Pillow's BILINEAR taps on one axis (its precompute_coeffs + normalize_coeffs_8bpc), as a
    (out_size, ksize) index and 22-bit fixed-point weight table; unused taps have weight 0.

    The triangle filter has support 1, widened by the scale when reducing (Pillow's resize is
    antialiased); the float arithmetic is Pillow's, in double precision, term for term.
    """
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = 1.0 * filterscale
    rows = []
    for out in range(out_size):
        centre = (out + 0.5) * scale
        xmin = max(int(centre - support + 0.5), 0)
        count = min(int(centre + support + 0.5), in_size) - xmin
        taps = []
        for x in range(count):
            t = abs((x + xmin - centre + 0.5) * (1.0 / filterscale))
            taps.append(1.0 - t if t < 1.0 else 0.0)
        total = sum(taps)  # Pillow sums in the same order
        row = []
        for x, w in enumerate(taps):
            w = w / total if total != 0.0 else w
            fixed = int(-0.5 + w * (1 << _PIL_PRECISION_BITS)) if w < 0 else \
                int(0.5 + w * (1 << _PIL_PRECISION_BITS))
            if fixed:  # zero taps add nothing: left out (upscaling needs 2 taps, not 3)
                row.append((xmin + x, fixed))
        rows.append(row or [(xmin, 0)])
    ksize = max(len(row) for row in rows)
    index = np.zeros((out_size, ksize), dtype=np.int64)
    weight = np.zeros((out_size, ksize), dtype=np.int32)
    for out, row in enumerate(rows):
        index[out, :] = row[0][0]
        for k, (position, fixed) in enumerate(row):
            index[out, k], weight[out, k] = position, fixed
    return torch.from_numpy(index).to(device), torch.from_numpy(weight).to(device)


def _pil_bilinear_axis(x: torch.Tensor, axis: int, out_size: int) -> torch.Tensor:
    """One pass of Pillow's 8-bit BILINEAR resample along ``axis`` (-1 or -2) of an int32
    tensor: the fixed-point sum over the taps plus half, shifted and clipped to 8 bits exactly as
    ImagingResample{Horizontal,Vertical}_8bpc. Integer arithmetic, so the same bytes on any
    device; int32 suffices (255 times weights summing to about 2^22, plus 2^21, is below 2^31)."""
    index, weight = _pil_bilinear_taps(x.shape[axis], out_size, _device_key(x.device))
    total = None
    for k in range(index.shape[1]):
        w = weight[:, k] if axis == -1 else weight[:, k, None]
        term = _gather_axis(x, axis, index[:, k]) * w
        total = term if total is None else total.add_(term)
    total += 1 << (_PIL_PRECISION_BITS - 1)
    return (total >> _PIL_PRECISION_BITS).clamp_(0, 255)


def pil_resize_bilinear(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``Image.resize((width, height), Image.BILINEAR)`` on each image of a (N, C, H, W) uint8
    tensor, bit-exact with Pillow (8-bit fixed point, the horizontal pass first and rounded to
    8 bits, an axis whose size does not change is not resampled) -- what torchvision's
    ``Resize`` does to a PIL image, on any device. Returns uint8."""
    if x.dtype != torch.uint8 or x.ndim != 4:
        raise ValueError(f"pil_resize_bilinear expects a (N, C, H, W) uint8 tensor, got "
                         f"{x.dtype} {tuple(x.shape)}")
    out = x
    if width != x.shape[-1]:
        out = _pil_bilinear_axis(out.to(torch.int32), -1, int(width))
    if height != x.shape[-2]:
        out = _pil_bilinear_axis(out.to(torch.int32), -2, int(height))
    return out.to(torch.uint8) if out is not x else x.clone()
