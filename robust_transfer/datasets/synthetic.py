"""Tiny deterministic data sets in the real on-disk formats, for the demo and the tests.

No data set can be downloaded here, so the tests and smoke runs read synthetic files through
the very readers that read the real ones. Each function below is independent: it writes one
data set in one format and returns the folder to pass to the tool that reads it.

CIFAR-style images: class ``c`` is a colour (one of 10 well-separated hues, ``c % 10``) overlaid
with stripes of a class-dependent orientation, with random brightness, stripe phase, contrast
and pixel noise -- learnable by a small network in an epoch, and hurt by noise, blur and
contrast corruptions the way natural images are. Every image is drawn from its own generator
seeded by ``(seed, split, index)``, so the test images of a given ``seed`` are the same whatever
``num_train`` is, and :func:`write_synthetic_cifar10c` re-creates the exact test set of
:func:`write_synthetic_cifar10` with the same ``num_test`` and ``seed``.
"""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Iterable

import numpy as np

from .cifar import LAYOUTS

CIFAR10_CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                       "ship", "truck")

# Ten well-separated RGB colours; class c uses _PALETTE[c % 10].
_PALETTE = np.array([
    [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48],
    [145, 30, 180], [70, 240, 240], [240, 50, 230], [128, 128, 0], [0, 0, 128],
], dtype=np.float64)
_SPLIT_CODES = {"train": 0, "test": 1}


def _synthetic_image(label: int, rng: np.random.Generator, size: int = 32) -> np.ndarray:
    """One (size, size, 3) uint8 image of class ``label`` (see the module docstring)."""
    colour = _PALETTE[label % 10] * rng.uniform(0.75, 1.1)
    # Orientation index: unique (colour, orientation) pair for each of up to 100 classes.
    angle = np.pi * ((label + label // 10) % 10) / 10.0
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    wave = np.cos((xx * np.cos(angle) + yy * np.sin(angle)) * (2 * np.pi / 8.0)
                  + rng.uniform(0, 2 * np.pi))
    contrast = rng.uniform(35, 60)
    image = colour[None, None, :] + contrast * wave[..., None] + rng.normal(0, 8, (size, size, 3))
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def synthetic_cifar_split(num_images: int, *, split: str = "train", seed: int = 0,
                          num_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 32, 32, 3) uint8 and labels (N,) int64 of one synthetic split.

    Classes are balanced (``num_images // num_classes`` each, the rest spread) and shuffled.
    """
    if split not in _SPLIT_CODES:
        raise ValueError(f"split must be one of {', '.join(_SPLIT_CODES)}, got {split!r}")
    code = _SPLIT_CODES[split]
    labels = np.random.default_rng([seed, code]).permutation(np.arange(num_images) % num_classes)
    images = np.empty((num_images, 32, 32, 3), dtype=np.uint8)
    for index, label in enumerate(labels):
        images[index] = _synthetic_image(int(label), np.random.default_rng([seed, code, index]))
    return images, labels.astype(np.int64)


def _dump(path: Path, document: dict) -> None:
    # Protocol 2 and str keys: readable by our reader and by torchvision's CIFAR10 class.
    with open(path, "wb") as handle:
        pickle.dump(document, handle, protocol=2)


def _planes(images: np.ndarray) -> np.ndarray:
    """(N, 32, 32, 3) -> the release's (N, 3072) rows of R, G, B planes."""
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2).reshape(len(images), -1))


def write_synthetic_cifar10(root: str | Path, num_train: int = 500, num_test: int = 100,
                            seed: int = 0) -> Path:
    """Write a synthetic CIFAR-10 in the python-pickle release layout under ``root``.

    Creates ``root/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}`` (the train
    images split over the five batches) and returns ``root`` -- the value for ``--data``.
    """
    layout = LAYOUTS["cifar10"]
    folder = Path(root) / layout.folder
    folder.mkdir(parents=True, exist_ok=True)
    train_x, train_y = synthetic_cifar_split(num_train, split="train", seed=seed)
    test_x, test_y = synthetic_cifar_split(num_test, split="test", seed=seed)
    chunks = np.array_split(np.arange(num_train), len(layout.train_files))
    for number, (name, idx) in enumerate(zip(layout.train_files, chunks), 1):
        _dump(folder / name, {"batch_label": f"training batch {number} of 5 (synthetic)",
                              "labels": train_y[idx].tolist(), "data": _planes(train_x[idx]),
                              "filenames": [f"synthetic_train_{i:05d}.png" for i in idx]})
    _dump(folder / "test_batch", {"batch_label": "testing batch 1 of 1 (synthetic)",
                                  "labels": test_y.tolist(), "data": _planes(test_x),
                                  "filenames": [f"synthetic_test_{i:05d}.png" for i in range(num_test)]})
    _dump(folder / layout.meta_file, {"num_cases_per_batch": len(chunks[0]),
                                      "label_names": list(CIFAR10_CLASS_NAMES), "num_vis": 3072})
    return Path(root)


def write_synthetic_cifar100(root: str | Path, num_train: int = 500, num_test: int = 100,
                             seed: int = 0) -> Path:
    """Write a synthetic CIFAR-100 (``root/cifar-100-python/{train,test,meta}``); returns ``root``.

    Coarse labels are ``fine // 5`` (20 super-classes), as a stand-in for the real grouping.
    """
    layout = LAYOUTS["cifar100"]
    folder = Path(root) / layout.folder
    folder.mkdir(parents=True, exist_ok=True)
    for split, count, name in (("train", num_train, "train"), ("test", num_test, "test")):
        images, labels = synthetic_cifar_split(count, split=split, seed=seed, num_classes=100)
        _dump(folder / name, {"batch_label": f"{split} (synthetic)", "data": _planes(images),
                              "fine_labels": labels.tolist(),
                              "coarse_labels": (labels // 5).tolist(),
                              "filenames": [f"synthetic_{split}_{i:05d}.png" for i in range(count)]})
    _dump(folder / layout.meta_file, {"fine_label_names": [f"class_{i:02d}" for i in range(100)],
                                      "coarse_label_names": [f"group_{i:02d}" for i in range(20)]})
    return Path(root)


def write_synthetic_cifar10c(root: str | Path, corruptions: str | Iterable[str] = ("gaussian_noise",),
                             num_test: int = 100, seed: int = 0, *,
                             corruption_seed: int | None = None, backend: str = "numpy") -> Path:
    """Write a synthetic CIFAR-10-C folder: ``root/<corruption>.npy`` + ``root/labels.npy``.

    The images are the synthetic CIFAR-10 test set of ``(num_test, seed)`` corrupted by *our*
    corruption library at severities 1..5 (stacked in that order, 5 x num_test x 32 x 32 x 3
    uint8; labels uint8 repeated five times, as in the release). Note: the real CIFAR-10-C
    uses its own, CIFAR-sized corruption parameters; these files use the library's ImageNet-C
    parameters. Image ``i`` is corrupted with ``key=i`` and ``seed=corruption_seed`` (default
    ``seed``) -- exactly what the classification CLI's on-the-fly mode does for test image
    ``i``, so both evaluation modes must agree on these files.
    """
    from ..corruptions import corrupt, resolve_corruptions

    names = resolve_corruptions(corruptions)
    if not names:
        raise ValueError("write_synthetic_cifar10c needs at least one corruption")
    corruption_seed = seed if corruption_seed is None else corruption_seed
    folder = Path(root)
    folder.mkdir(parents=True, exist_ok=True)
    images, labels = synthetic_cifar_split(num_test, split="test", seed=seed)
    for name in names:
        stacked = np.empty((5 * num_test, 32, 32, 3), dtype=np.uint8)
        for severity in range(1, 6):
            for index, image in enumerate(images):
                stacked[(severity - 1) * num_test + index] = corrupt(
                    image, name, severity, seed=corruption_seed, key=index, backend=backend)
        np.save(folder / f"{name}.npy", stacked)
    np.save(folder / "labels.npy", np.tile(labels, 5).astype(np.uint8))
    return folder
