"""The 19 ImageNet-C corruptions, seeded and faithful to the imagecorruptions reference.

Front door::

    from robust_transfer.corruptions import corrupt, get_corruption_names
    out = corrupt(image, "fog", severity=3, seed=0, key="val/0001.JPEG")

* ``corrupt`` -- one image, one corruption, one severity. The random stream is derived from
  ``(seed, key, corruption, severity)`` by SHA-256, so the same arguments give the same bytes in
  any process, worker, rank or machine; numpy's global random state is neither read nor changed.
* ``corrupt_with_rng`` -- the same with an explicit ``np.random.RandomState`` ("exact mode"):
  it draws the numbers imagecorruptions 1.1.2 draws from the global state, in the same order, so
  ``corrupt_with_rng(img, name, s, np.random.RandomState(k))`` reproduces
  ``np.random.seed(k); imagecorruptions.corrupt(img, s, name)`` (see docs/corruptions.md).
* ``corrupt_batch`` -- the torch backend's batched form: an (N, C, H, W) tensor on any device,
  one corruption at one severity, one random stream per image from ``(seed, keys[i], corruption,
  severity)``. ``corrupt(..., backend="torch")`` is the same code on one numpy image.
* ``get_corruption_names``, ``resolve_corruptions``, ``CORRUPTION_GROUPS``, ``SEVERITIES``.

Input handling (documented in docs/corruptions.md):

* dtype must be uint8 (a ValueError says how to convert other dtypes);
* (H, W) and (H, W, 1) grey images are replicated to RGB, corrupted, and the first channel is
  returned in the input's shape (for corruptions that treat channels alike this is exactly the
  grey result; noise keeps its per-pixel strength);
* (H, W, 4) RGBA: the colour channels are corrupted, alpha is passed through unchanged;
* (H, W, 2) or more than 4 channels, or a side shorter than 32 px: ValueError.
"""
from __future__ import annotations

import numbers

import numpy as np

from . import _numpy  # noqa: F401  (registers the numpy corruptions)
from ._groups import (
    ALL,
    CORRUPTION_GROUPS,
    SEVERITIES,
    get_corruption_names,
    resolve_corruptions,
)
from ._registry import get_numpy_corruption, registered_corruptions
from ._seeding import NUMPY_SEED_SCHEME, TORCH_SEED_SCHEME, seed_scheme
from ._seeding import stream_digest as _stream_digest

__all__ = [
    "BACKENDS",
    "CORRUPTION_GROUPS",
    "MIN_IMAGE_SIDE",
    "NUMPY_SEED_SCHEME",
    "SEVERITIES",
    "TORCH_SEED_SCHEME",
    "corrupt",
    "corrupt_batch",
    "corrupt_with_rng",
    "corruption_rng",
    "get_corruption_names",
    "resolve_corruptions",
    "seed_scheme",
]

BACKENDS = ("numpy", "torch")
MIN_IMAGE_SIDE = 32

if set(registered_corruptions()) != set(ALL):  # a missing or misnamed corruption function
    raise ImportError(f"registered corruptions {registered_corruptions()} differ from {ALL}")


# ----------------------------------------------------------------------------- validation


def _check_name(corruption_name) -> str:
    if corruption_name not in ALL:
        raise ValueError(
            f"unknown corruption {corruption_name!r}; allowed: {', '.join(ALL)}"
        )
    return corruption_name


def _check_severity(severity) -> int:
    if (isinstance(severity, bool) or not isinstance(severity, numbers.Integral)
            or int(severity) not in SEVERITIES):
        raise ValueError(
            f"severity must be an integer in {SEVERITIES[0]}..{SEVERITIES[-1]}, got {severity!r}"
        )
    return int(severity)


def _check_image(image) -> np.ndarray:
    """Validate an image and return it as an ndarray (PIL images are accepted too)."""
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise ValueError(
            f"image dtype must be uint8, got {array.dtype}; convert first, e.g. "
            "np.clip(np.rint(img), 0, 255).astype(np.uint8) for values in [0, 255] "
            "(multiply [0, 1] floats by 255 before)"
        )
    if array.ndim not in (2, 3):
        raise ValueError(
            f"image must have shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4); got {array.shape}"
        )
    if array.ndim == 3 and array.shape[2] not in (1, 3, 4):
        raise ValueError(
            f"image must have 1 (grey), 3 (RGB) or 4 (RGBA) channels, got {array.shape[2]} "
            f"(shape {array.shape})"
        )
    if min(array.shape[:2]) < MIN_IMAGE_SIDE:
        raise ValueError(
            f"image must be at least {MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE} pixels, got "
            f"{array.shape[0]}x{array.shape[1]}"
        )
    return array


def _check_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; allowed: {', '.join(BACKENDS)}")
    return backend


# ----------------------------------------------------------------------------- channel layout


def _as_rgb(image: np.ndarray) -> np.ndarray:
    """Grey -> replicated RGB; RGBA -> its RGB part; RGB unchanged (C-contiguous uint8)."""
    if image.ndim == 2:
        image = image[..., np.newaxis]
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    return np.ascontiguousarray(image[..., :3])


def _restore_layout(corrupted_rgb: np.ndarray, original: np.ndarray) -> np.ndarray:
    """Bring an RGB result back to the input's layout (see the module docstring)."""
    if original.ndim == 2:
        return corrupted_rgb[..., 0].copy()
    if original.shape[2] == 1:
        return corrupted_rgb[..., :1].copy()
    if original.shape[2] == 4:
        return np.concatenate([corrupted_rgb, original[..., 3:]], axis=2)
    return corrupted_rgb


def _to_uint8(values: np.ndarray) -> np.ndarray:
    """Float results in [0, 255] to uint8 by truncation, as imagecorruptions' np.uint8(...).

    Every corruption clips to [0, 255] itself (registry contract), so no second clip here.
    """
    if values.dtype == np.uint8:
        return values
    return values.astype(np.uint8)


# ----------------------------------------------------------------------------- public API


def corruption_rng(seed: int, key, corruption_name: str, severity: int) -> np.random.RandomState:
    """The private random stream for one (seed, image key, corruption, severity).

    SHA-256 of a canonical JSON string seeds a legacy ``RandomState`` (whose streams numpy keeps
    stable across versions). ``key`` may be None, a str or an int; ``"1"`` and ``1`` differ.
    The torch backend keys its Philox streams with the same digest (``_philox``).
    """
    digest = _stream_digest(seed, key, corruption_name, severity)
    return np.random.RandomState(np.frombuffer(digest, dtype="<u4").astype(np.uint32))


def corrupt_with_rng(image, corruption_name: str, severity: int,
                     rng: np.random.RandomState) -> np.ndarray:
    """Corrupt ``image`` drawing every random number from ``rng`` (exact mode, numpy backend).

    With ``rng = np.random.RandomState(s)`` the result equals imagecorruptions 1.1.2's
    ``corrupt(image, severity, corruption_name)`` after ``np.random.seed(s)`` (to within one grey
    level; impulse_noise only in distribution). Input rules and output as for :func:`corrupt`.
    """
    name = _check_name(corruption_name)
    severity = _check_severity(severity)
    original = _check_image(image)
    if not isinstance(rng, np.random.RandomState):
        raise ValueError(f"rng must be a numpy.random.RandomState, got {type(rng).__name__}")
    corrupted = get_numpy_corruption(name)(_as_rgb(original), severity, rng)
    return _restore_layout(_to_uint8(np.asarray(corrupted)), original)


def corrupt(image, corruption_name: str, severity: int = 1, *, seed: int = 0, key=None,
            backend: str = "numpy") -> np.ndarray:
    """Apply one ImageNet-C corruption to one image; deterministic in its arguments.

    Args:
        image: uint8 array (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), H and W >= 32.
        corruption_name: one of ``get_corruption_names("all")``.
        severity: 1..5.
        seed: global seed of the run.
        key: identifies the image within the run (file name or id), so different images get
            different noise; None, str or int.
        backend: ``"numpy"`` (the reference) or ``"torch"`` (the fast backend, on the CPU here;
            the same as ``corrupt_batch`` on a batch of one with ``keys=[key]``). The two draw
            different random numbers for the same arguments.

    Returns:
        uint8 array of the input's shape.
    """
    name = _check_name(corruption_name)
    severity = _check_severity(severity)
    if _check_backend(backend) == "torch":
        from . import _torch

        original = _check_image(image)
        corrupted = _torch.corrupt_rgb_array(_as_rgb(original), name, severity, seed=seed, key=key)
        return _restore_layout(corrupted, original)
    return corrupt_with_rng(image, name, severity, corruption_rng(seed, key, name, severity))


def corrupt_batch(images, corruption_name: str, severity: int = 1, *, seed: int = 0, keys=None,
                  value_range=None, rng_device=None):
    """Corrupt a batch of images with the torch backend: one corruption, one severity, one call.

    Args:
        images: ``torch.Tensor`` (N, C, H, W) on any device, C = 1 (grey), 3 (RGB) or 4 (RGBA),
            H and W >= 32. uint8 (values 0..255), or floating point with ``value_range`` given.
        corruption_name, severity: as for :func:`corrupt`.
        seed: global seed of the run.
        keys: one key per image (None, str or int each) naming its random stream; default
            ``range(N)`` (the batch index). Use dataset-wide ids for results that do not
            depend on how images were batched.
        value_range: for floating-point images, the value of white: ``1.0`` for [0, 1] tensors,
            ``255.0`` for [0, 255] tensors (required -- the range is never guessed). Must be
            None (or 255) for uint8.
        rng_device: removed in seed scheme ``philox4x32-10/v2``; any value but None raises a
            ValueError (every draw is now made on the images' device by a counter-based Philox
            generator and is the same on the CPU and on CUDA, so there is nothing to choose).

    Returns:
        A new tensor of the input's shape, dtype and device. uint8 in: uint8 out, truncated like
        the reference's ``np.uint8(...)``. Float in: float out in the same range, clipped but not
        quantised. Grey and RGBA follow :func:`corrupt`'s rules (grey corrupted as replicated
        RGB, first channel returned; alpha passed through). Image i equals
        ``corrupt_batch(images[i:i+1], ..., keys=[keys[i]])`` byte for byte on the CPU.
    """
    if rng_device is not None:
        raise ValueError(f"rng_device={rng_device!r} was removed with seed scheme "
                         f"{TORCH_SEED_SCHEME}: draws are made on the images' device and are the "
                         "same on CPU and CUDA; drop the argument")
    name = _check_name(corruption_name)
    severity = _check_severity(severity)
    from . import _torch

    return _torch.corrupt_tensor(images, name, severity, seed=seed, keys=keys,
                                 value_range=value_range)
