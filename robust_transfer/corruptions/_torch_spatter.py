"""The water drops' shading of spatter (severities 1-3) as batched tensor code on the images'
device (any device with float64: CPU, CUDA; not MPS).

:func:`water_spatter_masks` computes, for a batch of liquid layers (N, H, W), what the numpy
backend's :func:`_numpy.water_spatter_mask` computes with OpenCV one image at a time: Canny
edges, the 5x5 chamfer distance to them truncated at 20, a 3x3 box blur, histogram
equalisation, an emboss filter and another box blur. Every step re-implements OpenCV's own
arithmetic (integer, fixed-point or float32, and its rounding order), so the masks equal
OpenCV's bit for bit (tests/test_torch_spatter.py):

* Canny (8-bit input, aperture 3, L1 gradient): Sobel with BORDER_REPLICATE, OpenCV's
  non-maximum suppression (its tan(22.5 deg) fixed-point sector test, ``>`` towards one
  neighbour and ``>=`` towards the other, zero magnitude outside the image), the double
  threshold ``m > low`` / ``m > high``, and hysteresis as repeated 8-connected growth of the
  strong edges through the weak candidates until nothing changes (a fixed point: the same set
  as OpenCV's stack-based tracing, whatever the order);
* the distance transform (DIST_L2, mask 5; weights 1, 1.4, 2.1969): OpenCV's two raster
  passes, emulated by parallel relaxation of the same two move sets (:data:`CHAMFER_STEPS` steps
  each, see :func:`truncated_chamfer_distance`) in the arithmetic OpenCV uses: float32 sums
  when it calls Intel IPP, 16.16 fixed point otherwise;
* the box blur of the float distances as OpenCV computes it (exact sum, times 1/9 in float64,
  rounded to float32), then integer arithmetic on values OpenCV holds exactly (equalizeHist's
  float32 LUT formula, the saturating emboss, the uint8 box blur).

Batch invariance: every image's result is computed by elementwise and per-image operations only,
so image i of a batch equals the same image alone.
"""
from __future__ import annotations

import numpy as np
import torch

CANNY_LOW, CANNY_HIGH = 50, 150
DISTANCE_CAP = 20  # the reference truncates the distance map here (cv2.THRESH_TRUNC)

# OpenCV's fixed-point chamfer weights for DIST_L2 with a 5x5 mask: round(w * 2**16) of
# a = 1 (edge neighbours), b = 1.4 (corners), c = 2.1969 (knight's moves).
_FIXED_SHIFT = 16
CHAMFER_WEIGHTS = (65536, 91750, 143976)
CHAMFER_WEIGHTS_FLOAT32 = (1.0, float(np.float32(1.4)), float(np.float32(2.1969)))  # IPP
# OpenCV's forward pass takes, for each pixel, the mask's neighbours already visited in raster
# order: (row, col) offsets (-1, 0), (0, -1) with weight a, (-1, +-1) with b, (-2, +-1) and
# (-1, +-2) with c; the backward pass the opposite offsets (:func:`_relax_once`).

# Relaxation steps per pass (forward, backward). Within a pass a value below the cap of 20 comes
# from a chain of at most 19 moves: every move adds at least 1, and 20 moves add up to at least
# 20 (exactly 20 for unit moves, which float32 adds exactly; a 1.4 or 2.1969 adds 0.4 more than
# rounding can take away). 19 is also necessary: forward moves never go up, so a pixel 19 to the
# right of a lone edge pixel in its row is reached only by 19 unit moves along the row (18
# steps leave it at the cap); the backward pass mirrors this.
CHAMFER_STEPS = 19
_CHAMFER_STEPS_PER_CHECK = 4  # steps between two convergence checks of a pass

# OpenCV's Canny: tan(22.5 deg) in 15-bit fixed point.
_CANNY_SHIFT = 15
_TG22 = int(0.4142135623730950488016887242097 * (1 << _CANNY_SHIFT) + 0.5)
# Hysteresis growth steps between two convergence checks (each check is a host sync on a GPU).
_HYSTERESIS_STEPS_PER_CHECK = 8

# equalize_hist counts at most this many grey levels by comparisons instead of a bincount.
_LEVELS_COUNTED_BY_COMPARISON = 32

_EMBOSS = ((-2, -1, 0), (-1, 1, 1), (0, 1, 2))


# ----------------------------------------------------------------------------- borders


def _pad(x: torch.Tensor, mode: str) -> torch.Tensor:
    """(N, H, W) -> (N, H + 2, W + 2) with OpenCV's ``replicate`` (a|abc|c) or ``reflect101``
    (b|abc|b) border of one pixel (any dtype; a side of 1 replicates, as OpenCV does)."""
    for dim in (-2, -1):
        size = x.shape[dim]
        before, after = (0, size - 1) if mode == "replicate" or size == 1 else (1, size - 2)
        x = torch.cat([x.narrow(dim, before, 1), x, x.narrow(dim, after, 1)], dim=dim)
    return x


def _pad_constant(x: torch.Tensor, radius: int, value) -> torch.Tensor:
    out = x.new_full(x.shape[:-2] + (x.shape[-2] + 2 * radius, x.shape[-1] + 2 * radius), value)
    out[..., radius:-radius, radius:-radius] = x
    return out


def _shifted(padded: torch.Tensor, radius: int, dy: int, dx: int) -> torch.Tensor:
    """The view of a radius-padded map holding, at each pixel, its neighbour at (+dy, +dx)."""
    height = padded.shape[-2] - 2 * radius
    width = padded.shape[-1] - 2 * radius
    return padded[..., radius + dy:radius + dy + height, radius + dx:radius + dx + width]


def box_sum_3x3(x: torch.Tensor) -> torch.Tensor:
    """Sum over each pixel's 3x3 neighbourhood, BORDER_REFLECT_101 (cv2.blur's default),
    separable in x's dtype (exact for integers)."""
    padded = _pad(x, "reflect101")
    rows = padded[..., :-2, :] + padded[..., 1:-1, :] + padded[..., 2:, :]
    return rows[..., :-2] + rows[..., 1:-1] + rows[..., 2:]


# ----------------------------------------------------------------------------- Canny


def _sobel_3x3(image: torch.Tensor):
    """cv2.Sobel(CV_16S, ksize 3, BORDER_REPLICATE) in x and y, as int32 (N, H, W)."""
    padded = _pad(image.to(torch.int32), "replicate")
    smooth_rows = padded[..., :-2, :] + 2 * padded[..., 1:-1, :] + padded[..., 2:, :]
    dx = smooth_rows[..., 2:] - smooth_rows[..., :-2]
    smooth_cols = padded[..., :-2] + 2 * padded[..., 1:-1] + padded[..., 2:]
    dy = smooth_cols[..., 2:, :] - smooth_cols[..., :-2, :]
    return dx, dy


def _canny_candidates(image: torch.Tensor, low: int, high: int):
    """OpenCV's non-maximum suppression and double threshold: (candidate, strong) bool maps.

    A pixel's gradient falls in one of OpenCV's sectors by its integer test |dy| * 2**15 against
    |dx| * tan(22.5 deg) * 2**15 (and that plus 2 |dx| * 2**15 for 67.5 deg); it survives if its
    L1 magnitude beats the neighbour before it (``>``) and is not beaten by the one after it
    (``>=``) along that sector -- both ``>`` on the diagonals. Outside the image the magnitude
    is 0."""
    dx, dy = _sobel_3x3(image)
    magnitude = dx.abs() + dy.abs()
    padded = _pad_constant(magnitude, 1, 0)

    def neighbour(row: int, col: int) -> torch.Tensor:
        return _shifted(padded, 1, row, col)

    abs_x = dx.abs()
    scaled_y = dy.abs() << _CANNY_SHIFT
    tg22x = abs_x * _TG22
    horizontal = scaled_y < tg22x
    vertical = ~horizontal & (scaled_y > tg22x + (abs_x << (_CANNY_SHIFT + 1)))
    diagonal = ~horizontal & ~vertical
    same_sign = (dx ^ dy) >= 0
    keep_horizontal = (magnitude > neighbour(0, -1)) & (magnitude >= neighbour(0, 1))
    keep_vertical = (magnitude > neighbour(-1, 0)) & (magnitude >= neighbour(1, 0))
    keep_falling = (magnitude > neighbour(-1, -1)) & (magnitude > neighbour(1, 1))
    keep_rising = (magnitude > neighbour(-1, 1)) & (magnitude > neighbour(1, -1))
    keep_diagonal = torch.where(same_sign, keep_falling, keep_rising)
    maximum = ((horizontal & keep_horizontal) | (vertical & keep_vertical)
               | (diagonal & keep_diagonal))
    candidate = maximum & (magnitude > low)
    return candidate, candidate & (magnitude > high)


def _dilate_3x3(mask: torch.Tensor) -> torch.Tensor:
    """8-connected dilation of a bool (N, H, W) map (zero outside)."""
    padded = _pad_constant(mask, 1, False)
    rows = padded[..., :-2, :] | padded[..., 1:-1, :] | padded[..., 2:, :]
    return rows[..., :-2] | rows[..., 1:-1] | rows[..., 2:]


def hysteresis(candidate: torch.Tensor, strong: torch.Tensor) -> torch.Tensor:
    """The candidates 8-connected to a strong pixel through candidates: the strong set grown
    one ring per step inside the candidates until a fixed point. Convergence is checked every
    few steps (extra steps past the fixed point change nothing) to keep host syncs rare.
    (OpenCV's tracing leaves some strong pixels unpushed when their left or upper neighbour
    was pushed; they are reached from it, so its result is this set too.)"""
    edges = strong & candidate
    while True:
        previous = edges
        for _ in range(_HYSTERESIS_STEPS_PER_CHECK):
            edges = _dilate_3x3(edges) & candidate
        if torch.equal(edges, previous):
            return edges


def canny(image: torch.Tensor, low: int = CANNY_LOW, high: int = CANNY_HIGH) -> torch.Tensor:
    """cv2.Canny(image, low, high) (aperture 3, L1 gradient) for a uint8 batch (N, H, W):
    uint8 edges, 255 on an edge and 0 elsewhere, equal to OpenCV's. ``low``/``high`` are
    integers (OpenCV floors them)."""
    if image.dtype != torch.uint8 or image.dim() != 3:
        raise ValueError(f"canny expects uint8 (N, H, W), got {image.dtype} {tuple(image.shape)}")
    low, high = sorted((low, high))
    candidate, strong = _canny_candidates(image, low, high)
    return hysteresis(candidate, strong).to(torch.uint8) * 255


# ----------------------------------------------------------------------------- distance


def _relax_once(padded: torch.Tensor, out: torch.Tensor, weights, sign: int) -> None:
    """One parallel step of a pass: ``out`` (H, W) gets, for each pixel, the least of its value
    in ``padded`` (the map with a border of 2) and of its pass's 8 moves, weight added: from
    the pixels above and to the left for the forward pass (``sign`` 1), below and to the right
    for the backward pass (-1). The column pairs at +-1 and +-2 are reduced once for all rows
    (fewer full-map passes, which is what a step costs on a GPU)."""
    height, width = out.shape[-2:]
    unit_weight, corner_weight, knight_weight = weights
    near_columns = torch.minimum(padded[..., 1:width + 1], padded[..., 3:width + 3])
    far_columns = torch.minimum(padded[..., :width], padded[..., 4:width + 4])

    def rows_back(columns: torch.Tensor, distance: int) -> torch.Tensor:
        start = 2 - sign * distance
        return columns[..., start:start + height, :]

    centre = _shifted(padded, 2, 0, 0)
    best = torch.minimum(rows_back(padded[..., 2:width + 2], 1),
                         _shifted(padded, 2, 0, -sign)).add_(unit_weight)
    torch.minimum(best, rows_back(near_columns, 1) + corner_weight, out=best)
    knights = torch.minimum(rows_back(near_columns, 2), rows_back(far_columns, 1))
    torch.minimum(best, knights.add_(knight_weight), out=best)
    torch.minimum(centre, best, out=out)


def chamfer_arithmetic() -> str:
    """Which arithmetic cv2.distanceTransform(DIST_L2, 5) uses here: ``"float32"`` when OpenCV
    calls Intel IPP (the default of the x86 wheels), ``"fixed"`` (16.16 integers) otherwise.
    The two differ by up to ~1e-4 on some distances (IPP rounds each float32 addition)."""
    import cv2  # only to ask; the computation is torch

    return "float32" if cv2.ipp.useIPP() else "fixed"


def truncated_chamfer_distance(zero: torch.Tensor, arithmetic: str | None = None,
                               steps: int = CHAMFER_STEPS) -> torch.Tensor:
    """cv2.distanceTransform(DIST_L2, 5) to the True pixels of ``zero`` (N, H, W), truncated at
    20 (cv2.threshold TRUNC): float32 (N, H, W), equal to OpenCV's in the given
    :func:`chamfer_arithmetic` (default: the one OpenCV uses now).

    OpenCV makes a forward raster pass over the 8 mask moves from pixels before (above or to
    the left) and a backward pass over the 8 others, so a distance is the cheapest path made of
    forward moves followed by backward moves, each addition rounded in that order (float32
    sums depend on it). We relax the same two move sets, one after the other, in parallel:
    after k steps of a phase every pixel holds the cheapest path of at most k of that phase's
    moves (and the same rounded sums, added from the edge outwards); see :data:`CHAMFER_STEPS`
    for why 19 steps per phase are exact (a phase ends earlier once a step changes nothing).
    Paths stay inside the image as in OpenCV."""
    arithmetic = arithmetic or chamfer_arithmetic()
    if arithmetic == "fixed":
        weights, cap, dtype = CHAMFER_WEIGHTS, DISTANCE_CAP << _FIXED_SHIFT, torch.int32
    elif arithmetic == "float32":
        weights, cap, dtype = CHAMFER_WEIGHTS_FLOAT32, float(DISTANCE_CAP), torch.float32
    else:
        raise ValueError(f"arithmetic must be 'fixed' or 'float32', got {arithmetic!r}")
    # Two padded maps in turn: each step reads one and writes the other's interior, so the
    # border (the cap: no path leaves the image) is never copied again.
    maps = [_pad_constant(torch.full(zero.shape, cap, dtype=dtype, device=zero.device)
                          .masked_fill_(zero, 0), 2, cap)]
    maps.append(maps[0].clone())
    for sign in (1, -1):  # forward pass, then backward
        for step in range(1, steps + 1):
            _relax_once(maps[0], _shifted(maps[1], 2, 0, 0), weights, sign)
            maps.reverse()
            # A step that changed nothing is a fixed point: the pass is done (dense drops, as
            # at severity 3, converge after ~13 steps). Checked rarely: each is a host sync.
            if step % _CHAMFER_STEPS_PER_CHECK == 0 and torch.equal(maps[0], maps[1]):
                break
    distance = _shifted(maps[0], 2, 0, 0)
    if arithmetic == "fixed":
        return distance.to(torch.float32) / (1 << _FIXED_SHIFT)  # exact: a power of two
    return distance


# ----------------------------------------------------------------------------- histogram


def _histograms(image: torch.Tensor, levels: int) -> torch.Tensor:
    """(N, 256) int64 per-image counts of each grey level of a uint8 batch whose values are
    below ``levels``. Few levels are counted with one comparison pass each: a bincount would
    pile a whole batch's atomic additions onto a handful of bins on a GPU."""
    count = image.shape[0]
    if levels <= _LEVELS_COUNTED_BY_COMPARISON:
        hist = torch.zeros(count, 256, dtype=torch.int64, device=image.device)
        for level in range(levels):
            hist[:, level] = (image == level).sum(dim=(-2, -1))
        return hist
    offsets = torch.arange(count, device=image.device).view(count, 1, 1) * 256
    hist = torch.bincount((image.long() + offsets).flatten(), minlength=count * 256)
    return hist.view(count, 256)


def equalize_hist(image: torch.Tensor, levels: int = 256) -> torch.Tensor:
    """cv2.equalizeHist per image of a uint8 batch (N, H, W) whose values are below ``levels``:
    OpenCV's LUT, lut[v] = round(float32(count of v' in (first, v]) * float32(255 / (total -
    count of first))) above the first occupied level ``first`` (0 up to it), a constant image
    keeping its value. The per-image histograms are batched (:func:`_histograms`)."""
    count = image.shape[0]
    total = image.shape[-2] * image.shape[-1]
    hist = _histograms(image, levels)
    first = (hist > 0).to(torch.uint8).argmax(dim=1, keepdim=True)
    first_count = hist.gather(1, first)
    cumulative = hist.cumsum(dim=1)
    above_first = cumulative - cumulative.gather(1, first)
    spread = (total - first_count).clamp(min=1).to(torch.float32)
    scale = torch.full_like(spread, 255.0) / spread
    lut = torch.round(above_first.to(torch.float32) * scale).clamp_(0, 255)
    grey = torch.arange(256, device=image.device).view(1, 256)
    lut = torch.where(grey > first, lut, 0.0)
    constant = first_count == total
    lut = torch.where(constant, first.to(torch.float32), lut).to(torch.uint8)
    return lut.gather(1, image.long().view(count, -1)).view(image.shape)


# ----------------------------------------------------------------------------- the mask


def emboss(image: torch.Tensor) -> torch.Tensor:
    """cv2.filter2D(image, CV_8U, [[-2,-1,0],[-1,1,1],[0,1,2]]) (correlation, REFLECT_101,
    saturated to 0..255) for a uint8 batch (N, H, W)."""
    padded = _pad(image.to(torch.int32), "reflect101")
    total = torch.zeros_like(image, dtype=torch.int32)
    for row, weights in enumerate(_EMBOSS):
        for col, weight in enumerate(weights):
            if weight:
                total += weight * _shifted(padded, 1, row - 1, col - 1)
    return total.clamp_(0, 255).to(torch.uint8)


def water_shading(liquid_u8: torch.Tensor, arithmetic: str | None = None) -> torch.Tensor:
    """The embossed distance-to-edge map of uint8 liquid layers (N, H, W), as uint8: what
    water_spatter_mask multiplies the layer by (``arithmetic``: the distance transform's, see
    :func:`chamfer_arithmetic`).

    cv2.blur of float32 sums the 9 values exactly in float64, multiplies by 1/9 and rounds to
    float32 (measured: bit-equal); ``astype(uint8)`` then truncates. The uint8 box blur rounds
    sum / 9 to nearest (no ties: sum / 9 never ends in .5)."""
    edges = canny(liquid_u8)
    distance = truncated_chamfer_distance(edges > 0, arithmetic)
    blurred = (box_sum_3x3(distance.to(torch.float64)) * (1 / 9)).to(torch.float32)
    shading = equalize_hist(blurred.to(torch.uint8), levels=DISTANCE_CAP + 1)
    shading = emboss(shading)
    shading = torch.div(box_sum_3x3(shading.to(torch.int32)) + 4, 9, rounding_mode="floor")
    return shading.to(torch.uint8)


def liquid_to_uint8(liquid: torch.Tensor) -> torch.Tensor:
    """``(liquid * 255).astype(uint8)`` of the float64 layer the numpy code receives: the float32
    layer times 255 in float64 (exact) truncated. Layers are 0 or in [threshold, 1): a Gaussian
    blur of std <= 0.05 around 0.65 (measured maximum 0.93); from 256/255 up the conversion is
    undefined in numpy and here alike."""
    return (liquid.to(torch.float64) * 255).to(torch.uint8)


def water_spatter_masks(liquid: torch.Tensor, strength: float,
                        arithmetic: str | None = None) -> torch.Tensor:
    """Batched :func:`_numpy.water_spatter_mask`: float32 liquid layers (N, H, W) on any
    device with float64 -> float32 masks (N, H, W), equal to the numpy function's (which gets
    the layers as float64) bit for bit: uint8 layer times shading, over its per-image peak (0
    where the peak is 0), times ``strength``, all in float32 as numpy does."""
    layer = liquid_to_uint8(liquid)
    mask = layer.to(torch.float32) * water_shading(layer, arithmetic).to(torch.float32)
    peak = mask.amax(dim=(-2, -1), keepdim=True)
    mask = torch.where(peak > 0, mask / torch.where(peak > 0, peak, 1.0), 0.0)
    return mask * torch.tensor(strength, dtype=torch.float32, device=mask.device)
