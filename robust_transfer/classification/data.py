"""Transforms, in-memory image data sets (optionally corrupted on the fly) and seeded loaders.

The transforms are robust-models-transfer's for CIFAR: 32x32 images are upsampled with
``RandomResizedCrop(224)`` + horizontal flip for training and ``Resize(256)`` +
``CenterCrop(224)`` for testing, then ``ToTensor()`` (values in [0, 1]; the model normalises).
``input_size`` scales both (resize side = round(input_size * 256 / 224)); it exists so that
tests and smoke runs can use 32-64 px inputs, and is 224 for every real run.
"""
from __future__ import annotations

import random
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

DEFAULT_INPUT_SIZE = 224


def train_transform(input_size: int = DEFAULT_INPUT_SIZE) -> Callable:
    """RandomResizedCrop(input_size) + RandomHorizontalFlip + ToTensor."""
    return T.Compose([T.RandomResizedCrop(input_size), T.RandomHorizontalFlip(), T.ToTensor()])


def test_transform(input_size: int = DEFAULT_INPUT_SIZE) -> Callable:
    """Resize(256 * input_size / 224) + CenterCrop(input_size) + ToTensor."""
    return T.Compose([T.Resize(round(input_size * 256 / 224)), T.CenterCrop(input_size),
                      T.ToTensor()])


class ArrayImageDataset(Dataset):
    """Images held as an (N, H, W, 3) uint8 array, each optionally corrupted then transformed.

    ``keys`` identify the images for the corruption seeding (default: their position); a subset
    keeps the keys of the full test set, so image ``i`` gets the same corruption whether or not
    it is evaluated alone. ``corruption`` is ``(name, severity, seed, backend)`` or None.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform: Callable | None = None,
                 *, keys: Sequence[int] | None = None,
                 corruption: tuple[str, int, int, str] | None = None):
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images = images
        self.labels = np.asarray(labels, dtype=np.int64)
        self.transform = transform
        self.keys = list(range(len(images))) if keys is None else [int(k) for k in keys]
        self.corruption = corruption

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        image = np.asarray(self.images[index])
        if self.corruption is not None:
            from ..corruptions import corrupt

            name, severity, seed, backend = self.corruption
            image = corrupt(image, name, severity, seed=seed, key=self.keys[index], backend=backend)
        picture = Image.fromarray(image)
        sample = self.transform(picture) if self.transform is not None else picture
        return sample, int(self.labels[index])


def select_subset(num_images: int, subset: int | None, seed: int) -> np.ndarray:
    """Indices of a seeded random ``subset`` of the training images (sorted), or all of them.

    As robust-models-transfer's ``--subset``: a random choice without replacement.
    """
    if subset is None or subset <= 0:
        return np.arange(num_images)
    if subset > num_images:
        raise ValueError(f"--subset {subset} is larger than the training set ({num_images} images)")
    return np.sort(np.random.default_rng(seed).choice(num_images, size=subset, replace=False))


def _seed_worker(worker_id: int) -> None:
    # torch seeds each worker from the loader's generator; derive numpy's and random's from it
    # so any library code that draws from them is reproducible too.
    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)
    random.seed(worker_seed)


def make_loader(dataset: Dataset, *, batch_size: int, shuffle: bool, workers: int,
                generator: torch.Generator | None = None, device: str = "cpu") -> DataLoader:
    """A DataLoader whose order and worker seeds come from ``generator`` (re-seed it before each
    epoch for an order that depends only on (seed, epoch), which makes resuming exact)."""
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=workers,
                      generator=generator, worker_init_fn=_seed_worker,
                      pin_memory=device.startswith("cuda"), drop_last=False,
                      persistent_workers=False)
