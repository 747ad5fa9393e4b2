"""A labelled PNG grid of an image under corruptions and severities (for docs and eyeballing).

Layout: see :func:`make_preview_grid`; each tile is labelled with corruption and severity. Drawn with PIL only (no matplotlib needed), so it is fast and
looks the same on every machine.
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
        out_png = Path(out_png)
        out_png.parent.mkdir(parents=True, exist_ok=True)
        tmp = out_png.with_name(f".{out_png.name}.tmp")
        grid.save(tmp, format="PNG")
        os.replace(tmp, out_png)
    return grid
