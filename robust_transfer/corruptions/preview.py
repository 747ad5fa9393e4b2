"""Labelled PNG grids of an image under corruptions and severities (for docs and eyeballing).

* :func:`make_preview_grid` -- one backend, each tile labelled with corruption and severity;
* :func:`make_backend_comparison_grid` -- the numpy reference and the torch backend side by side.

Drawn with PIL only (no matplotlib needed), so it is fast and looks the same on every machine.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from . import SEVERITIES, corrupt, resolve_corruptions

LABEL_HEIGHT = 16  # pixels of caption above each tile
TILE_GAP = 4
BACKGROUND = (255, 255, 255)
TEXT_COLOUR = (0, 0, 0)


WRAP_COLUMNS = 5  # tiles per row when a single severity is shown


def _compose(tiles: list[tuple[str, np.ndarray]], columns: int) -> Image.Image:
    """Paste labelled tiles row by row, ``columns`` per row."""
    height, width = tiles[0][1].shape[:2]
    cell_w, cell_h = width + TILE_GAP, height + LABEL_HEIGHT + TILE_GAP
    rows = -(-len(tiles) // columns)
    grid = Image.new("RGB", (cell_w * columns, cell_h * rows), BACKGROUND)
    draw = ImageDraw.Draw(grid)
    font = ImageFont.load_default()
    for index, (label, tile) in enumerate(tiles):
        left, top = (index % columns) * cell_w, (index // columns) * cell_h
        draw.text((left + 2, top + 2), label, fill=TEXT_COLOUR, font=font)
        grid.paste(Image.fromarray(tile).convert("RGB"), (left, top + LABEL_HEIGHT))
    return grid


ROW_HEADER_WIDTH = 112  # pixels of corruption name left of each comparison row


def _save_png(grid: Image.Image, out_png) -> None:
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_png.with_name(f".{out_png.name}.tmp")
    grid.save(tmp, format="PNG", optimize=True)
    os.replace(tmp, out_png)


def make_preview_grid(image: np.ndarray, corruptions="all", severities: Iterable[int] = (3,),
                      out_png=None, seed: int = 0, backend: str = "numpy") -> Image.Image:
    """Render ``image`` clean and under each corruption x severity; save to ``out_png`` if given.

    With several severities: one row per corruption (clean image first, then one column per
    severity). With one severity: the clean image followed by every corruption, wrapped
    ``WRAP_COLUMNS`` per row. ``corruptions`` is anything :func:`resolve_corruptions` accepts.
    The image key of the random streams is ``"preview"``, so a preview is reproducible from
    (image, seed). Returns the grid as a PIL image.
    """
    names = resolve_corruptions(corruptions)
    severities = [int(s) for s in severities]
    if not names:
        raise ValueError("no corruptions to preview")
    if not severities or any(s not in SEVERITIES for s in severities):
        raise ValueError(f"severities must be in {list(SEVERITIES)}, got {severities}")
    image = np.asarray(image)

    def corrupted(name: str, severity: int) -> tuple[str, np.ndarray]:
        out = corrupt(image, name, severity, seed=seed, key="preview", backend=backend)
        return f"{name} s{severity}", out

    if len(severities) == 1:
        tiles = [("clean", image)] + [corrupted(name, severities[0]) for name in names]
        grid = _compose(tiles, min(WRAP_COLUMNS, len(tiles)))
    else:
        tiles = []
        for name in names:
            tiles.append(("clean", image))
            tiles.extend(corrupted(name, severity) for severity in severities)
        grid = _compose(tiles, 1 + len(severities))
    if out_png is not None:
        _save_png(grid, out_png)
    return grid


def make_backend_comparison_grid(image: np.ndarray, corruptions="all",
                                 severities: Iterable[int] = (1, 3, 5), out_png=None,
                                 seed: int = 0) -> Image.Image:
    """The numpy reference and the torch backend side by side: one row per corruption, for each
    severity a "numpy" tile then a "torch" tile, the corruption's name left of the row.

    Both use the key ``"preview"`` and ``seed``; their random draws differ (different
    generators), so random corruptions look alike in kind and strength, not pixel for pixel.
    Saved to ``out_png`` if given; returns the grid as a PIL image.
    """
    names = resolve_corruptions(corruptions)
    severities = [int(s) for s in severities]
    if not names:
        raise ValueError("no corruptions to compare")
    if not severities or any(s not in SEVERITIES for s in severities):
        raise ValueError(f"severities must be in {list(SEVERITIES)}, got {severities}")
    image = np.asarray(image)
    height, width = image.shape[:2]
    cell_w, cell_h = width + TILE_GAP, height + LABEL_HEIGHT + TILE_GAP
    columns = 2 * len(severities)
    grid = Image.new("RGB", (ROW_HEADER_WIDTH + cell_w * columns, cell_h * len(names)),
                     BACKGROUND)
    draw = ImageDraw.Draw(grid)
    font = ImageFont.load_default()
    for row, name in enumerate(names):
        top = row * cell_h
        draw.text((2, top + LABEL_HEIGHT + height // 2 - 6), name, fill=TEXT_COLOUR, font=font)
        for index, severity in enumerate(severities):
            for offset, backend in enumerate(("numpy", "torch")):
                tile = corrupt(image, name, severity, seed=seed, key="preview", backend=backend)
                left = ROW_HEADER_WIDTH + (2 * index + offset) * cell_w
                draw.text((left + 2, top + 2), f"s{severity} {backend}", fill=TEXT_COLOUR,
                          font=font)
                grid.paste(Image.fromarray(tile).convert("RGB"), (left, top + LABEL_HEIGHT))
    if out_png is not None:
        _save_png(grid, out_png)
    return grid
