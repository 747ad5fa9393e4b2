"""A tiny deterministic data set in the on-disk layout of ADE20K (``ADEChallengeData2016``).

Layout written (what mmseg's ``ADE20KDataset`` reads)::

    <root>/images/training/ADE_train_00000001.jpg ...       RGB JPEG
    <root>/images/validation/ADE_val_00000001.jpg ...
    <root>/annotations/training/ADE_train_00000001.png ...  8-bit class indices
    <root>/annotations/validation/ADE_val_00000001.png ...

Annotation values follow ADEChallengeData2016: ``0`` is "other / unlabelled" (ignored: mmseg's
``reduce_zero_label`` maps it to 255) and ``k`` in 1..150 is ADE20K class ``k`` (1 = wall,
2 = building, 3 = sky, ...). Only the first ``num_classes`` classes occur.

A scene is a Voronoi partition of the image into a handful of regions; each region gets one
class, painted with that class's colour (random brightness), a class-specific stripe texture and
pixel noise, so a small network learns the segmentation in a few dozen iterations and the
corruptions hurt it the way they hurt natural images (noise and blur wash out texture,
contrast and fog wash out colour). Pixels within about a pixel of a region boundary are labelled
0, like the unlabelled outlines of real ADE20K annotations.

Every image is drawn from its own generator seeded by ``(seed, split, index)``: the validation
images of a given ``seed`` do not depend on ``num_train``, and rewriting gives the same bytes.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

#: The first ADE20K classes (annotation value = position + 1).
ADE20K_FIRST_CLASSES = ("wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed",
                        "windowpane", "grass", "cabinet", "sidewalk")
#: One well-separated RGB colour per synthetic class (class k uses row k - 1).
_CLASS_COLOURS = np.array([
    [200, 60, 60], [60, 170, 70], [70, 110, 220], [230, 200, 40], [150, 60, 190],
    [60, 200, 200], [240, 130, 40], [120, 120, 120], [240, 90, 200], [140, 140, 20],
    [20, 40, 120], [170, 230, 140],
], dtype=np.float64)
MAX_CLASSES = len(ADE20K_FIRST_CLASSES)
SPLITS = {"training": ("ADE_train", 0), "validation": ("ADE_val", 1)}
MIN_SIDE = 32  # the corruption library refuses smaller images


def _check_args(num_classes: int, image_size: tuple[int, int], regions: int) -> None:
    if not 2 <= num_classes <= MAX_CLASSES:
        raise ValueError(f"num_classes must be in 2..{MAX_CLASSES}, got {num_classes}")
    if len(image_size) != 2 or min(image_size) < MIN_SIDE:
        raise ValueError(f"image_size must be (height, width) with both sides >= {MIN_SIDE}, "
                         f"got {image_size!r}")
    if regions < 1:
        raise ValueError(f"regions must be >= 1, got {regions}")


def synthetic_ade20k_sample(rng: np.random.Generator, *, num_classes: int = 6,
                            image_size: tuple[int, int] = (64, 80), regions: int = 5,
                            ) -> tuple[np.ndarray, np.ndarray]:
    """One scene: ``(image (H, W, 3) uint8 RGB, annotation (H, W) uint8 in 0..num_classes)``."""
    _check_args(num_classes, image_size, regions)
    height, width = image_size
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    seeds = rng.uniform([0, 0], [height, width], size=(regions, 2))
    distance = np.sqrt((yy[None] - seeds[:, 0, None, None]) ** 2
                       + (xx[None] - seeds[:, 1, None, None]) ** 2)  # (regions, H, W)
    order = np.argsort(distance, axis=0)
    nearest = order[0]
    classes = rng.integers(1, num_classes + 1, size=regions)
    annotation = classes[nearest].astype(np.uint8)
    if regions > 1:  # unlabelled outlines between regions of different classes
        d = np.take_along_axis(distance, order[:2], axis=0)
        second = classes[order[1]]
        annotation[(d[1] - d[0] < 1.0) & (second != annotation)] = 0

    image = np.empty((height, width, 3), dtype=np.float64)
    for region in range(regions):
        mask = nearest == region
        label = int(classes[region])
        colour = _CLASS_COLOURS[label - 1] * rng.uniform(0.8, 1.1)
        angle = np.pi * (label - 1) / num_classes
        period = 6.0 + 2.0 * (label % 3)
        wave = np.cos((xx * np.cos(angle) + yy * np.sin(angle)) * (2 * np.pi / period)
                      + rng.uniform(0, 2 * np.pi))
        image[mask] = colour + rng.uniform(20, 35) * wave[mask][:, None]
    image += rng.normal(0.0, 6.0, image.shape)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), annotation


def write_synthetic_ade20k(root: str | Path, num_train: int = 8, num_val: int = 4, *,
                           seed: int = 0, num_classes: int = 6,
                           image_size: tuple[int, int] = (64, 80), regions: int = 5,
                           jpeg_quality: int = 95) -> Path:
    """Write a synthetic ``ADEChallengeData2016`` folder at ``root`` and return ``root``.

    ``root`` plays the part of ``data/ade/ADEChallengeData2016`` (mmseg's ``data_root``).
    Existing files of the same names are overwritten with identical bytes.
    """
    from PIL import Image

    _check_args(num_classes, image_size, regions)
    if num_train < 0 or num_val < 0:
        raise ValueError("num_train and num_val must be >= 0")
    root = Path(root)
    for split, count in (("training", num_train), ("validation", num_val)):
        prefix, code = SPLITS[split]
        image_dir = root / "images" / split
        annotation_dir = root / "annotations" / split
        image_dir.mkdir(parents=True, exist_ok=True)
        annotation_dir.mkdir(parents=True, exist_ok=True)
        for index in range(count):
            rng = np.random.default_rng([seed, code, index])
            image, annotation = synthetic_ade20k_sample(
                rng, num_classes=num_classes, image_size=image_size, regions=regions)
            stem = f"{prefix}_{index + 1:08d}"
            Image.fromarray(image).save(image_dir / f"{stem}.jpg", quality=jpeg_quality)
            Image.fromarray(annotation).save(annotation_dir / f"{stem}.png")
    return root
