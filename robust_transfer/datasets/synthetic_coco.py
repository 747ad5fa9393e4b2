"""A tiny deterministic COCO instance-segmentation data set in the real on-disk format.

Layout written by :func:`write_synthetic_coco` (the COCO layout, split names ``train``/``val``)::

    root/
      train/000000000001.jpg ...        JPEG images
      val/000000001001.jpg ...
      annotations/instances_train.json  COCO json: info, licenses, images, annotations, categories
      annotations/instances_val.json

Every image holds one to three coloured shapes on a smooth textured background, one per
quadrant (no overlaps). The category is carried by both colour and shape, so a small detector
learns it quickly: ``square`` (red), ``disc`` (green), ``triangle`` (blue) have polygon
segmentations; ``ring`` (yellow, a disc with a hole, which one polygon cannot describe) has a
compressed RLE segmentation, as COCO stores such masks. ``bbox``, ``area`` and ``iscrowd`` are
computed from the rasterised masks with pycocotools. The same arguments always give the same
files (numpy ``default_rng`` streams per image; PIL's JPEG encoder).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: (id, name, RGB colour, segmentation kind)
CATEGORIES: tuple[tuple[int, str, tuple[int, int, int], str], ...] = (
    (1, "square", (220, 40, 40), "polygon"),
    (2, "disc", (40, 190, 60), "polygon"),
    (3, "triangle", (50, 70, 225), "polygon"),
    (4, "ring", (235, 205, 40), "rle"),
)
CLASSES: tuple[str, ...] = tuple(c[1] for c in CATEGORIES)
SPLITS = ("train", "val")
_FIRST_ID = {"train": 1, "val": 1001}


@dataclass(frozen=True)
class SyntheticCoco:
    """Where a written synthetic set lives (all absolute paths)."""

    root: Path
    classes: tuple[str, ...]

    def ann_file(self, split: str) -> Path:
        return self.root / "annotations" / f"instances_{split}.json"

    def image_dir(self, split: str) -> Path:
        return self.root / split


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A smooth two-colour gradient plus mild noise (float RGB in [0, 255])."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    angle = rng.uniform(0, 2 * np.pi)
    t = (np.cos(angle) * xs / width + np.sin(angle) * ys / height)
    t = (t - t.min()) / max(np.ptp(t), 1e-9)
    a, b = rng.uniform(70, 180, size=3), rng.uniform(70, 180, size=3)
    image = a * (1 - t[..., None]) + b * t[..., None]
    return image + rng.normal(0, 6, size=image.shape)


def _polygon(kind: str, cx: float, cy: float, r: float, rot: float) -> list[float]:
    if kind == "square":
        angles = rot + np.pi / 4 + np.arange(4) * np.pi / 2
        radius = r
    elif kind == "triangle":
        angles = rot - np.pi / 2 + np.arange(3) * 2 * np.pi / 3
        radius = r * 1.1
    else:  # disc / ring outline
        angles = np.arange(24) * 2 * np.pi / 24
        radius = r
    xs, ys = cx + radius * np.cos(angles), cy + radius * np.sin(angles)
    return [round(float(v), 2) for pair in zip(xs, ys) for v in pair]


def _make_instance(kind: str, seg_kind: str, cx: float, cy: float, r: float, rot: float,
                   height: int, width: int):
    """(binary mask HxW uint8, COCO segmentation) of one object."""
    from pycocotools import mask as mask_utils

    outer = _polygon("disc" if kind == "ring" else kind, cx, cy, r, rot)
    rle = mask_utils.merge(mask_utils.frPyObjects([outer], height, width))
    mask = mask_utils.decode(rle).astype(np.uint8)
    if seg_kind == "polygon":
        return mask, [outer]
    inner = mask_utils.decode(mask_utils.merge(
        mask_utils.frPyObjects([_polygon("disc", cx, cy, r * 0.5, 0.0)], height, width)))
    mask = (mask & (1 - inner)).astype(np.uint8)
    encoded = mask_utils.encode(np.asfortranarray(mask))
    return mask, {"size": [height, width], "counts": encoded["counts"].decode("ascii")}


def _write_split(root: Path, split: str, count: int, height: int, width: int, seed: int,
                 quality: int) -> dict:
    from PIL import Image
    from pycocotools import mask as mask_utils

    image_dir = root / split
    image_dir.mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    ann_id = _FIRST_ID[split] * 10
    for index in range(count):
        image_id = _FIRST_ID[split] + index
        rng = np.random.default_rng([seed, _FIRST_ID[split], index])
        canvas = _background(rng, height, width)
        quadrants = [(qy, qx) for qy in range(2) for qx in range(2)]
        chosen = rng.permutation(4)[:int(rng.integers(1, 4))]
        for q in chosen:
            qy, qx = quadrants[q]
            cell_h, cell_w = height / 2, width / 2
            r = rng.uniform(0.30, 0.45) * min(cell_h, cell_w)
            cx = qx * cell_w + cell_w / 2 + rng.uniform(-0.1, 0.1) * cell_w
            cy = qy * cell_h + cell_h / 2 + rng.uniform(-0.1, 0.1) * cell_h
            cat_id, _, colour, seg_kind = CATEGORIES[int(rng.integers(len(CATEGORIES)))]
            kind = CLASSES[cat_id - 1]
            mask, segmentation = _make_instance(kind, seg_kind, cx, cy, r, rng.uniform(0, np.pi / 6),
                                                height, width)
            shade = np.asarray(colour, np.float64) + rng.normal(0, 8, size=(height, width, 3))
            canvas = np.where(mask[..., None].astype(bool), shade, canvas)
            rle = mask_utils.encode(np.asfortranarray(mask))
            x, y, w, h = (float(v) for v in mask_utils.toBbox(rle))
            annotations.append({
                "id": ann_id, "image_id": image_id, "category_id": cat_id,
                "segmentation": segmentation, "area": float(mask_utils.area(rle)),
                "bbox": [x, y, w, h], "iscrowd": 0})
            ann_id += 1
        file_name = f"{image_id:012d}.jpg"
        pixels = np.clip(np.rint(canvas), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(image_dir / file_name, quality=quality)
        images.append({"id": image_id, "file_name": file_name, "width": width, "height": height,
                       "license": 1, "date_captured": "2026-01-01 00:00:00", "coco_url": "",
                       "flickr_url": ""})
    return {
        "info": {"description": f"robust_transfer synthetic COCO ({split})", "version": "1.0",
                 "year": 2026, "contributor": "robust_transfer", "url": "",
                 "date_created": "2026-01-01"},
        "licenses": [{"id": 1, "name": "CC0 1.0", "url": "https://creativecommons.org/publicdomain/zero/1.0/"}],
        "images": images, "annotations": annotations,
        "categories": [{"id": cid, "name": name, "supercategory": "shape"}
                       for cid, name, _, _ in CATEGORIES],
    }


def write_synthetic_coco(root: str | Path, num_train: int = 16, num_val: int = 8,
                         image_size: tuple[int, int] = (96, 128), seed: int = 0,
                         quality: int = 95) -> SyntheticCoco:
    """Write the data set under ``root`` and return its paths.

    ``image_size`` is (height, width); both must be >= 32 (the corruptions' minimum).
    Deterministic in its arguments; rewriting over an existing folder gives the same bytes.
    """
    height, width = (int(v) for v in image_size)
    if min(height, width) < 32:
        raise ValueError(f"image_size {image_size}: height and width must be >= 32")
    if num_train < 0 or num_val < 0 or num_train + num_val == 0:
        raise ValueError("num_train and num_val must be >= 0, and not both 0")
    root = Path(root).resolve()
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    for split, count in (("train", num_train), ("val", num_val)):
        document = _write_split(root, split, count, height, width, seed, quality)
        (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(document))
    return SyntheticCoco(root=root, classes=CLASSES)


if __name__ == "__main__":  # python -m robust_transfer.datasets.synthetic_coco OUT_DIR
    import sys

    out = write_synthetic_coco(sys.argv[1] if len(sys.argv) > 1 else "data/synthetic_coco")
    print(f"wrote {out.root}")
