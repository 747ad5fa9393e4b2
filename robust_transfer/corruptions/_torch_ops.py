"""Shared building blocks of the torch backend: numerics, boundary rules, Gaussian and 2-D filters,
and the small pixel helpers every corruption module uses.

Every function works on batched float32 tensors (N, C, H, W) on any device, and re-implements the
arithmetic of the corresponding numpy reference helper (``_helpers``) or library call (scipy,
OpenCV), with the differences stated in each docstring. Parameter-only work (filter matrices,
index maps) is done once in numpy and cached per size and device. Geometry (zoom, motion blur,
shuffles, remapping) is in ``_torch_geometry``, Pillow's resizes in ``_torch_pillow``.

Batch invariance: image i of a batch gets the same bytes as the same image alone (tested on the
CPU). Filters are shifted sums or dense matrix products (each output sums its inputs in one
order whatever the batch size) and the FFT convolution runs one image at a time.
"""
from __future__ import annotations

import contextlib
import functools

import numpy as np
import torch
import torch.nn.functional as F

from . import _banded as band

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


def device_key(device) -> str:
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


def _filter_matrix(size: int, weights: tuple, mode: str, device: str) -> torch.Tensor:
    """(size, size) float32 matrix M with (M @ v)[i] = sum_j w[j] v[ext(i + j - r)]: a 1-D
    correlation with the boundary rule folded in (see :func:`extend_index`). Not cached: only
    its band blocks are kept (``_gaussian_band_blocks``), not the dense matrix as well."""
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
    return _filter_matrix(size, weights, mode, device_key(device))


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
        padded = x.index_select(axis, _padding_index(size, radius, mode, device_key(x.device)))
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
    device = device_key(x.device)
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


# ----------------------------------------------------------------------------- pixel helpers


def unit_to_255(x: torch.Tensor) -> torch.Tensor:
    """Clip [0, 1] intensities in place and scale them to [0, 255]."""
    return x.clamp_(0, 1).mul_(255)


def hsv_value(unit: torch.Tensor):
    """HSV value (max) and max - min over the channels, (N, 1, H, W) each."""
    value = unit.amax(dim=1, keepdim=True)
    return value, value - unit.amin(dim=1, keepdim=True)


def uint8_in_out(fn):
    """Mark a corruption that works on 8-bit images: it receives and returns uint8 (N, 3, H, W)
    tensors (float inputs are rounded to 8 bits before, as the reference's input is uint8)."""
    fn.uint8_in_out = True
    return fn
