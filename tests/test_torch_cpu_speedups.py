"""The torch backend's faster CPU building blocks give exactly what the plain formulations give.

Each test checks one helper written for speed (issue 14) against a direct, slow statement of
the same computation, bit for bit (no timings here: those are in bench/bench_torch_backend.py).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from robust_transfer.corruptions import _torch_geometry


def _sequential_glass_shuffle(height: int, width: int, max_delta: int,
                              draws: np.ndarray) -> np.ndarray:
    """The reference's per-pixel loop on an index image: x[h, w] <- x[h + dy, w + dx], pixels
    visited from the bottom-right corner, row by row, right to left; draws indexed by
    ascending scanned row and column as ``glass_shuffle_sources`` takes them."""
    d = max_delta
    source = np.arange(height * width).reshape(height, width)
    for step_draws in draws:
        for h in range(height - d, d, -1):
            for w in range(width - d, d, -1):
                dx, dy = step_draws[h - d - 1, w - d - 1]
                source[h, w] = source[h + dy, w + dx]
    return source.reshape(-1)


@pytest.mark.parametrize("int32_limit", [_torch_geometry.INT32_INDEX_LIMIT, 0])
def test_glass_shuffle_sources_equal_the_sequential_loop_for_every_image_of_a_batch(
        int32_limit, monkeypatch):
    # limit 0: the int64 indices that batches of over 2^31 pixels use
    monkeypatch.setattr(_torch_geometry, "INT32_INDEX_LIMIT", int32_limit)
    rng = np.random.default_rng(3)
    for height, width, max_delta, iterations in ((40, 33, 1, 2), (37, 45, 2, 3), (34, 50, 4, 2)):
        count = 3
        shape = (count, iterations, height - 2 * max_delta, width - 2 * max_delta, 2)
        draws = rng.integers(-max_delta, max_delta, size=shape)
        ours = _torch_geometry.glass_shuffle_sources(height, width, max_delta,
                                                     torch.from_numpy(draws))
        assert ours.shape == (count, height * width) and ours.dtype == torch.int64
        for image in range(count):
            expected = _sequential_glass_shuffle(height, width, max_delta, draws[image])
            np.testing.assert_array_equal(ours[image].numpy(), expected)


def test_glass_shuffle_sources_follow_long_chains():
    # Every scanned pixel reads its right neighbour: one chain per row, as long as the row.
    height, width, max_delta = 36, 40, 2
    draws = np.zeros((1, 1, height - 4, width - 4, 2), dtype=np.int64)
    draws[..., 0] = 1
    ours = _torch_geometry.glass_shuffle_sources(height, width, max_delta, torch.from_numpy(draws))
    expected = _sequential_glass_shuffle(height, width, max_delta, draws[0])
    np.testing.assert_array_equal(ours[0].numpy(), expected)


def test_clipped_zoom_by_one_is_the_image_itself():
    # zoom_blur adds the image instead of resizing it by 1: the same values, bit for bit.
    generator = torch.Generator().manual_seed(0)
    for height, width in ((480, 640), (33, 250), (97, 131)):
        unit = torch.rand(2, 3, height, width, generator=generator)
        for layout in (torch.contiguous_format, torch.channels_last):
            image = unit.contiguous(memory_format=layout)
            assert torch.equal(_torch_geometry.clipped_zoom(image, 1.0, crop_to_input=True), image)
