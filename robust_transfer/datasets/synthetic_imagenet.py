"""A tiny ImageNet validation folder in the real layout, for the tests and smoke runs of
``robust-transfer imagenet-c``.

The layout is the one torchvision's ``ImageFolder`` and every ImageNet evaluation script read:
one folder per class named by its WordNet id, JPEG files inside::

    val/n01440764/ILSVRC2012_val_00000293.JPEG
    val/n01443537/ILSVRC2012_val_00000236.JPEG
    ...

Class ``c`` gets the WordNet id of the ``c``-th ImageNet class in the usual (sorted) order, so
its label is ``c`` for a 1000-class model too, and its images are a class colour with a
gradient, noise and a bright square -- nothing a real network recognises, but images of
ImageNet-like, non-square sizes that the resize / crop / corruption pipeline must handle. Each
image comes from its own generator seeded by ``(seed, class, index)``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

#: WordNet ids of the first ImageNet classes in sorted order (tench, goldfish, great white shark,
#: tiger shark, hammerhead, electric ray, stingray, cock, hen, ostrich).
IMAGENET_FIRST_WNIDS = ("n01440764", "n01443537", "n01484850", "n01491361", "n01494475",
                        "n01496331", "n01498041", "n01514668", "n01514859", "n01518878")


def write_synthetic_imagenet_val(root: str | Path, *, num_classes: int = 3, per_class: int = 4,
                                 sizes: tuple[tuple[int, int], ...] = ((300, 400), (375, 500), (256, 256)),
                                 seed: int = 0) -> Path:
    """Write ``num_classes`` x ``per_class`` JPEGs in the ImageNet validation layout under
    ``root`` and return ``root``. Image sizes (height, width) cycle through ``sizes``."""
    from PIL import Image

    if not 1 <= num_classes <= len(IMAGENET_FIRST_WNIDS):
        raise ValueError(f"num_classes must be 1..{len(IMAGENET_FIRST_WNIDS)}, got {num_classes}")
    if per_class < 1:
        raise ValueError(f"per_class must be at least 1, got {per_class}")
    root = Path(root)
    number = 0
    for label, wnid in enumerate(IMAGENET_FIRST_WNIDS[:num_classes]):
        (root / wnid).mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            number += 1
            rng = np.random.default_rng([seed, label, index])
            height, width = sizes[number % len(sizes)]
            image = _synthetic_photo(label, height, width, rng)
            Image.fromarray(image).save(root / wnid / f"ILSVRC2012_val_{number:08d}.JPEG", quality=90)
    return root


def _synthetic_photo(label: int, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A (height, width, 3) uint8 image: class hue, a gradient, noise and one bright square."""
    hue = np.array([(label * 97) % 256, (label * 53 + 80) % 256, (label * 31 + 160) % 256], np.float64)
    ramp = np.linspace(0.6, 1.2, width)[None, :, None]
    image = hue[None, None, :] * ramp + rng.normal(0, 12, (height, width, 3))
    side = min(height, width) // 4
    top, left = rng.integers(0, height - side), rng.integers(0, width - side)
    image[top:top + side, left:left + side] = 240
    return np.clip(image, 0, 255).astype(np.uint8)
