"""The seeded ``Corrupt`` data transform shared by the mmdet and mmseg plugins.

One implementation (an mmcv :class:`~mmcv.transforms.BaseTransform`) registered into each
framework's ``TRANSFORMS`` registry by :func:`register_corrupt`. Its arguments are those of
mmdet's own ``Corrupt`` (``corruption``, ``severity=1``) plus ``seed`` and ``backend``, so configs
written for mmdet's transform keep working when our plugin is imported.

Differences from mmdet's ``Corrupt`` (which calls ``imagecorruptions.corrupt`` directly):

* it calls :func:`robust_transfer.corruptions.corrupt`, whose random stream is derived from
  ``(seed, image key, corruption, severity)``: the same image is corrupted identically in every
  dataloader worker, rank, rerun and machine, and numpy's global random state is untouched;
* images in mmcv pipelines are BGR (``mmcv.imread`` / ``LoadImageFromFile``); the corruption
  library, like imagecorruptions, expects RGB. We convert to RGB and back. mmdet's transform
  hands the BGR image over as if it were RGB; for the corruptions that treat colour channels
  alike (noise, blur, brightness, contrast, pixelate...) that makes no difference, for the
  colour-space ones (``jpeg_compression``'s YCbCr, ``frost``'s and ``snow``'s overlays,
  ``spatter``, ``saturate``) it does. ``legacy_bgr_as_rgb=True`` reproduces mmdet's behaviour
  for checking numbers against mmdet's tool; never use it for new results.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

try:  # mmcv is a dependency of the frameworks; the module stays importable without it.
    from mmcv.transforms import BaseTransform
except ImportError:  # pragma: no cover - exercised only without mmcv
    class BaseTransform:  # type: ignore[no-redef]
        """Minimal stand-in so the module imports without mmcv (registration needs mmcv)."""

        def __call__(self, results: dict) -> dict | None:
            return self.transform(results)

from ..corruptions import ALL, BACKENDS, SEVERITIES

#: The keys tried, in order, for the per-image key of the random stream.
IMAGE_KEY_FIELDS = ("img_path", "img_id", "sample_idx")


def image_key(results: dict) -> str | int:
    """The key that identifies an image within a run: the basename of ``results['img_path']``.

    Falls back to an explicit ``img_id`` then ``sample_idx`` (images not loaded from files).
    Raises ``KeyError`` naming the fields tried when none is there.
    """
    path = results.get("img_path")
    if path:
        return os.path.basename(str(path))
    for field in IMAGE_KEY_FIELDS[1:]:
        value = results.get(field)
        if value is not None:
            return int(value) if isinstance(value, (int, np.integer)) else str(value)
    raise KeyError("Corrupt needs an image key to seed the corruption: none of "
                   f"{', '.join(IMAGE_KEY_FIELDS)} is in the results dict (keys: {sorted(results)})")


def check_corruption(corruption: str, severity: Any, *, prefix: str = "",
                     clean_hint: str = "") -> tuple[str, int]:
    """``(corruption, int severity)``, or a ``ValueError`` (starting with ``prefix``) naming the
    allowed corruptions or severities; ``clean_hint`` tells how to ask for the clean images."""
    if corruption not in ALL:
        raise ValueError(f"{prefix}unknown corruption {corruption!r}; allowed: {', '.join(ALL)}")
    if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)) \
            or int(severity) not in SEVERITIES:
        raise ValueError(f"{prefix}severity must be an integer in 1..5, got {severity!r} ({clean_hint})")
    return corruption, int(severity)


class Corrupt(BaseTransform):
    """Apply one ImageNet-C corruption, seeded per image, with the robust_transfer library.

    Required Keys:

    - img (np.uint8, H x W x 3 BGR as loaded by mmcv; H x W grey and H x W x 4 BGRA accepted)
    - img_path (str) -- its basename keys the random stream; if absent, ``img_id`` or
      ``sample_idx`` is used instead

    Modified Keys:

    - img (np.uint8, same shape; corrupted)

    Added Keys:

    - corruption (dict: ``name``, ``severity``, ``seed``, ``backend``, ``key``)

    Args:
        corruption (str): one of the 19 corruption names (e.g. ``'fog'``).
        severity (int): 1..5. Defaults to 1.
        seed (int): global seed of the run; together with the image key, corruption and
            severity it determines every random draw. Defaults to 0.
        backend (str): ``'numpy'`` (the reference) or ``'torch'``. Defaults to ``'numpy'``.
        legacy_bgr_as_rgb (bool): pass the BGR image to the library as if it were RGB, as
            mmdet's own ``Corrupt`` does; only to reproduce its numbers. Defaults to False.
    """

    def __init__(self, corruption: str, severity: int = 1, seed: int = 0,
                 backend: str = "numpy", legacy_bgr_as_rgb: bool = False) -> None:
        corruption, severity = check_corruption(
            corruption, severity, prefix="Corrupt: ",
            clean_hint="severity 0, the clean image, means: do not insert the transform")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise ValueError(f"Corrupt: seed must be an integer, got {seed!r}")
        if backend not in BACKENDS:
            raise ValueError(f"Corrupt: unknown backend {backend!r}; allowed: {', '.join(BACKENDS)}")
        self.corruption = corruption
        self.severity = int(severity)
        self.seed = int(seed)
        self.backend = backend
        self.legacy_bgr_as_rgb = bool(legacy_bgr_as_rgb)

    def transform(self, results: dict) -> dict:
        from ..corruptions import corrupt

        if "img" not in results:
            raise KeyError("Corrupt needs results['img']: put it after the image-loading step "
                           "(e.g. LoadImageFromFile)")
        image = results["img"]
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
            raise ValueError("Corrupt expects results['img'] as a uint8 numpy array, got "
                             f"{type(image).__name__} {getattr(image, 'dtype', '')}; load images "
                             "with to_float32=False")
        key = image_key(results)
        # BGR <-> RGB (BGRA <-> RGBA: alpha stays last); grey images need no swap.
        colour = image.ndim == 3 and image.shape[2] in (3, 4) and not self.legacy_bgr_as_rgb
        order = [2, 1, 0, 3][:image.shape[2]] if colour else None
        rgb = image[..., order] if colour else image
        out = corrupt(np.ascontiguousarray(rgb), self.corruption, self.severity,
                      seed=self.seed, key=key, backend=self.backend)
        results["img"] = np.ascontiguousarray(out[..., order]) if colour else out
        results["corruption"] = dict(name=self.corruption, severity=self.severity,
                                     seed=self.seed, backend=self.backend, key=key)
        return results

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(corruption={self.corruption!r}, "
                f"severity={self.severity}, seed={self.seed}, backend={self.backend!r}"
                + (", legacy_bgr_as_rgb=True)" if self.legacy_bgr_as_rgb else ")"))


def register_corrupt(registry: Any, name: str = "Corrupt") -> type:
    """Register :class:`Corrupt` in an mmengine ``TRANSFORMS`` registry under ``name``.

    ``force=True``: it replaces a transform of that name already there (mmdet's own
    ``Corrupt``), so configs that say ``type='Corrupt'`` get ours. Import the framework's
    transforms module first, or its later registration of the same name would fail.
    Idempotent. Returns the class.
    """
    registry.register_module(name=name, module=Corrupt, force=True)
    return Corrupt
