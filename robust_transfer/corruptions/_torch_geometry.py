"""Geometric building blocks of the torch backend: clipped zoom, motion blur, the glass blur's
pixel shuffle and bilinear remapping.

Batched float32 tensors (N, C, H, W) on any device; each re-implements the arithmetic of the
numpy reference helper (``_helpers``) or scipy call it names, with the differences stated in its
docstring. Image i of a batch gets the same bytes as the same image alone on the CPU.
"""
from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F

from . import _helpers as H

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


# Largest flattened pixel count of a batch whose shuffle indices are computed in int32.
INT32_INDEX_LIMIT = 2 ** 31 - 1


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

    Worked over the whole batch's flattened pixels (index image * H*W + pixel), unscanned
    pixels reading themselves: a pixel reading a later *unscanned* pixel may then link to it,
    as that one's chain ends there on its own old value, so no scanned-area test is needed.
    """
    count, iterations, n_rows, n_cols = draws.shape[:4]
    device = draws.device
    area = height * width
    if n_rows <= 0 or n_cols <= 0 or iterations == 0:
        return torch.arange(area, device=device).repeat(count, 1)
    # Index arithmetic in int32 where the batch's pixels fit (halves the memory traffic);
    # index_select takes int32 indices on the CPU and CUDA alike.
    index_dtype = torch.int32 if count * area <= INT32_INDEX_LIMIT else torch.int64
    identity = torch.arange(count * area, device=device, dtype=index_dtype)
    # With d = 1 every draw is -1 or 0: nothing reads a later pixel, so there are no chains.
    chains_possible = max_delta >= 2
    sources = None
    for step in range(iterations):
        reads = _glass_read_offsets(draws[:, step], height, width, max_delta,
                                    index_dtype).add_(identity)
        if chains_possible:
            links = torch.maximum(reads, identity)  # a later pixel, or the pixel itself
            final_reads = reads.index_select(0, _follow_to_chain_ends(links))
        else:
            final_reads = reads
        sources = final_reads if sources is None else sources.index_select(0, final_reads)
    image_starts = torch.arange(0, count * area, area, device=device, dtype=index_dtype)
    return sources.view(count, area).sub_(image_starts[:, None]).long()


def _glass_read_offsets(step_draws: torch.Tensor, height: int, width: int, max_delta: int,
                        dtype: torch.dtype) -> torch.Tensor:
    """Flattened (N*H*W,) offset dy * W + dx of the pixel each pixel reads in one iteration of
    the shuffle; 0 outside the scanned area (those pixels are not written)."""
    count, n_rows, n_cols = step_draws.shape[:3]
    offsets = torch.zeros(count, height, width, dtype=dtype, device=step_draws.device)
    first = max_delta + 1
    scanned = offsets[:, first:first + n_rows, first:first + n_cols]
    step_draws = step_draws.to(dtype)  # one conversion: mixed-dtype ops each made a copy
    torch.mul(step_draws[..., 1], width, out=scanned)
    scanned.add_(step_draws[..., 0])
    return offsets.view(-1)


def _follow_to_chain_ends(links: torch.Tensor) -> torch.Tensor:
    """Pointer doubling on a forest of forward links (a chain's end links to itself): every
    entry ends up pointing to the end of its chain, in O(log longest chain) gathers."""
    while True:
        jumped = links.index_select(0, links)
        if torch.equal(jumped, links):
            return links
        links = jumped


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
    # Two slice copies instead of torch.stack, whose interleaving copy is slow on the CPU:
    # the grid of 2 x 480x640 in 0.8 ms instead of 1.9 ms (one thread).
    grid = norm_x.new_empty(*norm_x.shape, 2)
    grid[..., 0] = norm_x
    grid[..., 1] = norm_y
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
