"""Products with banded filter matrices: wide Gaussian filters at a fraction of a dense product.

A 1-D filter of radius r with a mirroring or clamping border is a (size x size) matrix whose
row i is non-zero only in columns [i - r, i + r] (clipped to the image). ``_torch_ops`` applies
wide Gaussians as dense products ``rows @ x @ cols.T``; most of those multiply-adds are with
zeros (elastic_transform's fields at 480x640: bands of 29 and 39 of 480 and 640 columns). Here
the output is cut into blocks of ``BAND_BLOCK`` rows, and each block multiplies only the input
columns its rows touch. The sums are the dense product's without the zero terms, so the result
moves by float32 rounding only, and (as the dense product) does not depend on the batch size.
"""
from __future__ import annotations

import torch

# Output rows per block: small enough that the zeros multiplied stay few (block + 2r columns of
# input per block), large enough that each product is an efficient matrix multiplication.
BAND_BLOCK = 64


BandBlocks = tuple[tuple[int, int, torch.Tensor], ...]


def band_blocks(matrix: torch.Tensor) -> BandBlocks:
    """(first column, end column, block) for every block of ``BAND_BLOCK`` rows of ``matrix``,
    in row order: the block is matrix[start:stop, first:end], the columns holding the rows'
    non-zeros (worth caching: the callers keep them per size and filter)."""
    size = matrix.shape[0]
    nonzero = matrix != 0
    blocks = []
    for start in range(0, size, BAND_BLOCK):
        stop = min(size, start + BAND_BLOCK)
        columns = nonzero[start:stop].any(dim=0).nonzero().flatten()
        first, end = (int(columns[0]), int(columns[-1]) + 1) if columns.numel() else (0, 1)
        blocks.append((first, end, matrix[start:stop, first:end].contiguous()))
    return tuple(blocks)


def filter_last_axis(x: torch.Tensor, blocks: BandBlocks) -> torch.Tensor:
    """``x @ matrix.T`` (filter along the last axis) for a banded matrix given as its
    :func:`band_blocks`."""
    parts = [torch.matmul(x[..., first:end], block.T) for first, end, block in blocks]
    return torch.cat(parts, dim=-1)


def filter_second_last_axis(x: torch.Tensor, blocks: BandBlocks) -> torch.Tensor:
    """``matrix @ x`` (filter along the second-last axis) for a banded matrix given as its
    :func:`band_blocks`."""
    parts = [torch.matmul(block, x[..., first:end, :]) for first, end, block in blocks]
    return torch.cat(parts, dim=-2)
