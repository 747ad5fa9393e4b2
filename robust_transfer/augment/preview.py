"""A labelled PNG grid of PRIME samples of one image (for docs and eyeballing the settings)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from .prime import PRIME, apply_prime_0_255

LABEL_HEIGHT = 16
TILE_GAP = 4


def prime_samples(image: np.ndarray, prime: PRIME, samples: int, seed: int = 0) -> np.ndarray:
    """``samples`` PRIME draws of an ``(H, W, 3)`` or ``(H, W)`` uint8 image, as one batch
    (each sample its own draws) from a generator seeded with ``seed``: ``(samples, H, W[, 3])``."""
    image = np.asarray(image)
    channels_ok = image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (1, 3))
    if image.dtype != np.uint8 or not channels_ok:
        raise ValueError(f"expected an (H, W, 3) or (H, W) uint8 image, got {image.dtype} {image.shape}")
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    chw = torch.from_numpy(np.array(image.reshape(*image.shape[:2], -1))).permute(2, 0, 1)
    batch = chw.unsqueeze(0).expand(samples, -1, -1, -1).contiguous()
    out = apply_prime_0_255(prime, batch, torch.Generator().manual_seed(int(seed)))
    return out.permute(0, 2, 3, 1).numpy().reshape(samples, *image.shape)


def make_prime_grid(image: np.ndarray, prime: PRIME, samples: int = 8, out_png=None, *,
                    seed: int = 0, columns: int = 3) -> Image.Image:
    """The clean image then ``samples`` PRIME samples, ``columns`` tiles per row, each labelled;
    saved atomically to ``out_png`` when given. Returns the PIL image."""
    if columns < 1:
        raise ValueError(f"columns must be >= 1, got {columns}")
    drawn = prime_samples(image, prime, samples, seed)
    tiles = [("clean", np.asarray(image))] + [(f"PRIME #{i + 1}", t) for i, t in enumerate(drawn)]
    height, width = tiles[0][1].shape[:2]
    columns = min(columns, len(tiles))
    cell_w, cell_h = width + TILE_GAP, height + LABEL_HEIGHT + TILE_GAP
    rows = -(-len(tiles) // columns)
    grid = Image.new("RGB", (cell_w * columns, cell_h * rows), (255, 255, 255))
    draw = ImageDraw.Draw(grid)
    font = ImageFont.load_default()
    for index, (label, tile) in enumerate(tiles):
        left, top = (index % columns) * cell_w, (index // columns) * cell_h
        draw.text((left + 2, top + 2), label, fill=(0, 0, 0), font=font)
        grid.paste(Image.fromarray(tile).convert("RGB"), (left, top + LABEL_HEIGHT))
    if out_png is not None:
        out_png = Path(out_png)
        out_png.parent.mkdir(parents=True, exist_ok=True)
        tmp = out_png.with_name(f".{out_png.name}.tmp")
        grid.save(tmp, format="PNG")
        os.replace(tmp, out_png)
    return grid
