"""Pillow's 8-bit resizes re-implemented on tensors, bit-exact: BOX + NEAREST (pixelate) and
BILINEAR (what torchvision's ``Resize`` does to a PIL image), on any device.

Integer fixed-point arithmetic term for term as Pillow's ImagingResample*_8bpc, so the same
bytes on the CPU and CUDA; the taps are computed once in numpy and cached per size and device.
"""
from __future__ import annotations

import functools

import numpy as np
import torch
from PIL import Image

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


def gather_axis(x: torch.Tensor, axis: int, index: torch.Tensor) -> torch.Tensor:
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
    first, stop, weight = _pil_box_taps(x.shape[axis], out_size, str(x.device))
    cumulative = torch.cumsum(x, dim=axis, dtype=torch.int32)
    total = gather_axis(cumulative, axis, stop - 1)
    before = gather_axis(cumulative, axis, (first - 1).clamp(min=0))
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
    rows = _pil_nearest_map(small_h, height, str(x.device))
    cols = _pil_nearest_map(small_w, width, str(x.device))
    return gather_axis(small.index_select(-2, rows), -1, cols)


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
    index, weight = _pil_bilinear_taps(x.shape[axis], out_size, str(x.device))
    total = None
    for k in range(index.shape[1]):
        w = weight[:, k] if axis == -1 else weight[:, k, None]
        term = gather_axis(x, axis, index[:, k]) * w
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
